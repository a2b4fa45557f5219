"""The deploy gate: card.json (the machine-readable scorecard), the card store, and the check
`ponder serve` makes before it serves a model.

The store is one JSON file per (model identity, policy) under ~/.cache/ponder/cards/ (or
$PONDER_CARD_DIR). The identity is the one the eval response cache uses: for a local model
('default', a checkpoint directory, hf:DIR, gguf:FILE) a sha256 over the bytes of its weights,
config and tokenizer files, so a retrained or edited checkpoint at the same path does NOT
inherit the old card; for a remote or hub spec (openai:..., vllm:...) the spec string itself.
`ponder eval` and `ponder card` may take file hashes from the memo (cache.py: keyed by inode,
size, mtime and ctime); serve hashes every byte again, then checks after loading that the files
it hashed are the files it loaded (`GateResult.changed`).

Cards are keyed by policy as well as identity, so a card built under a lenient policy is
stored beside a failing one for the same weights, never over it; serve reads the card built
under the policy it checks against (the shipped policy.toml, or $PONDER_GATE_POLICY) and no
other. A new card under the same policy replaces the old one, with a note when the old one
failed. The policy's file must keep the four required categories (preparedness.py).

The serve policy, `--gate warn` (the default):
- a card under the serving policy passes -> serve;
- it fails, or a card under another policy fails, or a stored card cannot be read -> refuse,
  unless --allow-undeployable (then a warning line): a model known to fail is stopped;
- no card under the serving policy -> serve, with a warning line. A freshly trained
  checkpoint has no card yet, and refusing it would make every local experiment run
  `ponder card` first.
`--gate strict`: serve only a model with a passing card for exactly these bytes under the
serving policy; anything else is refused unless --allow-undeployable.

Left out: signing cards (the store is a local record, not an attestation).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

from ponder.errors import UserError
from ponder.evals.preparedness import (Policy, Scorecard, load_policy, missing_categories, policy_digest,
                                       policy_rules, scorecard_json)

CARD_SCHEMA_VERSION = 2  # 2: the card records its policy's rules and digest, and is stored per policy
GATE_MODES = ("warn", "strict")
POLICY_ENV = "PONDER_GATE_POLICY"


def card_dir() -> Path:
    return Path(os.environ.get("PONDER_CARD_DIR") or Path.home() / ".cache" / "ponder" / "cards").expanduser()


def model_identity_of(spec: str) -> str:
    """The key a model's card is stored under (see the module docstring); file hashes may come
    from the store's memo."""
    from ponder.evals.cache import ResponseCache, identity_files, model_identity

    if identity_files(spec) is None:
        return spec
    directory = card_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with ResponseCache(directory / "file_hashes.sqlite") as memo:
        return model_identity(spec, memo)


def served_identity(spec: str) -> tuple[str, tuple[tuple[str, tuple[int, int, int, int]], ...]]:
    """(identity from every byte, read now; the stat key of each file hashed). No memo: the
    gate answers for the bytes about to be served, not for what a file looked like before."""
    from ponder.evals.cache import identity_files, model_identity, stat_key

    found = identity_files(spec)
    if found is None:
        return spec, ()
    before = tuple((str(f), stat_key(f)) for f in found[1])
    identity = model_identity(spec, None)
    if tuple((path, stat_key(Path(path))) for path, _ in before) != before:
        raise UserError(f"the files of model {spec!r} changed while they were being hashed; start again once "
                        "nothing is writing to them")
    return identity, before


def serving_policy() -> Policy:
    """The policy serve checks cards against: $PONDER_GATE_POLICY, else the shipped one. A
    policy that drops a required category is refused here (there is no partial serving policy)."""
    path = os.environ.get(POLICY_ENV)
    return load_policy(Path(path).expanduser() if path else None)


def _store_path(identity: str, policy_sha: str) -> Path:
    return card_dir() / f"{hashlib.sha256(identity.encode()).hexdigest()[:40]}-{policy_sha[:16]}.json"


def card_json(card: Scorecard, identity: str | None, sources: Sequence[str],
              compared: Mapping[str, Scorecard] | None = None) -> dict[str, Any]:
    """card.json: who was assessed, under which policy (all of its rules, and their digest),
    every category's levels, the verdict."""
    policy = card.policy
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "model": card.model,
        "identity": identity,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "efforts": list(card.efforts),
        "policy": {"source": policy.source, "sha256": policy_digest(policy),
                   "missing_categories": missing_categories(policy), "deploy_max": policy.deploy_max,
                   "develop_max": policy.develop_max, "not_measured_passes": policy.not_measured_passes,
                   "min_n": policy.min_n, "estimate": policy.estimate, "rules": policy_rules(policy)},
        "scorecard": scorecard_json(card),
        "deployable": card.deployable,
        "developable": card.developable,
        "failures": card.failures(),
        "results": list(sources),
        "compared": {m: {"deployable": c.deployable,
                         "levels": {x.key: {"pre": x.pre.level, "post": x.post.level} for x in c.categories}}
                     for m, c in (compared or {}).items()},
    }


def _policy_sha(card: Mapping[str, Any]) -> str | None:
    policy = card.get("policy")
    sha = policy.get("sha256") if isinstance(policy, dict) else None
    return sha if isinstance(sha, str) else None


def _policy_name(card: Mapping[str, Any]) -> str:
    sha = _policy_sha(card)
    if sha is None:
        return "an unrecorded policy (a card from before policies were recorded)"
    return f"policy {card['policy'].get('source', '?')} (sha256 {sha[:12]})"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def store_card(data: Mapping[str, Any], warn: Callable[[str], None] = _stderr) -> Path:
    """Record a card.json in the store under its identity and policy (atomically: serve may be
    reading). Replacing a failing card of the same weights and policy says so on `warn`."""
    identity, sha = data["identity"], _policy_sha(data)
    if not identity:
        raise ValueError("a card without a model identity cannot be stored")
    if not sha:
        raise ValueError("a card without its policy's sha256 cannot be stored")
    path = _store_path(identity, sha)
    try:
        previous = _read_card(path, identity) if path.exists() else None
    except UserError:
        previous = None  # a corrupted record is what a new card should replace
    if previous is not None and not previous["deployable"] and data["deployable"]:
        warn(f"note: this passing card replaces a stored card for the same weights and policy that failed the gate "
             f"(created {previous.get('created', '?')}: {'; '.join(previous.get('failures') or [])})")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def _read_card(path: Path, identity: str) -> dict[str, Any]:
    """A stored card; an unreadable one raises UserError: a corrupted record must not read as
    'no card' and let a failing model through."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"stored system card {path} cannot be read ({error}); delete it and rerun `ponder card`")
    if not isinstance(data, dict) or data.get("identity") != identity or not isinstance(data.get("deployable"), bool):
        raise UserError(f"stored system card {path} is not a card.json for this model; delete it and rerun `ponder card`")
    return data


def stored_cards(identity: str) -> list[dict[str, Any]]:
    """Every stored card of an identity, under any policy (cards stored before policies were
    recorded included)."""
    prefix = hashlib.sha256(identity.encode()).hexdigest()[:40]
    directory = card_dir()
    paths = sorted(directory.glob(f"{prefix}-*.json")) + [p for p in [directory / f"{prefix}.json"] if p.exists()]
    return [_read_card(p, identity) for p in paths]


def stored_card(identity: str, policy: Policy | None = None) -> dict[str, Any] | None:
    """The stored card of an identity under `policy` (default: the shipped one); None when there is none."""
    sha = policy_digest(policy if policy is not None else load_policy())
    path = _store_path(identity, sha)
    return _read_card(path, identity) if path.exists() else None


@dataclass(frozen=True)
class GateResult:
    """What the gate decided, and on which bytes: `refusal` None = serve."""

    refusal: str | None
    identity: str
    files: tuple[tuple[str, tuple[int, int, int, int]], ...] = ()

    def changed(self) -> str | None:
        """Why the files are no longer those the gate hashed (call it after loading them), else None."""
        from ponder.evals.cache import stat_key

        for path, key in self.files:
            try:
                now = stat_key(Path(path))
            except OSError:
                now = None
            if now != key:
                return (f"model file {path} changed after the deploy gate hashed it; the bytes loaded may not be "
                        "the bytes the gate checked: start again once nothing is writing to it")
        return None


def gate_model(model_spec: str, allow_undeployable: bool = False, warn: Callable[[str], None] = _stderr, *,
               mode: Literal["warn", "strict"] = "warn", policy: Policy | None = None) -> GateResult:
    """The gate's decision for `ponder serve` (warnings, if any, go to `warn`); see the module
    docstring. `policy` None = the serving policy (`serving_policy`)."""
    if mode not in GATE_MODES:
        raise UserError(f"gate mode {mode!r} is not one of {', '.join(GATE_MODES)}")
    identity, files = served_identity(model_spec)
    policy = policy if policy is not None else serving_policy()

    def refuse(reason: str) -> GateResult:
        if allow_undeployable:
            warn(f"warning: {reason}; serving anyway (--allow-undeployable)")
            return GateResult(None, identity, files)
        return GateResult(f"{reason}; start with --allow-undeployable to serve it anyway", identity, files)

    try:
        cards = stored_cards(identity)
    except UserError as error:
        return refuse(str(error))
    sha = policy_digest(policy)
    mine = next((c for c in cards if _policy_sha(c) == sha), None)
    others = [c for c in cards if _policy_sha(c) != sha]
    if mine is not None:
        if mine["deployable"]:
            return GateResult(None, identity, files)
        failures = "; ".join(mine.get("failures") or []) or "the deploy gate failed"
        return refuse(f"model {model_spec!r} fails the deploy gate in its stored system card ({failures}); "
                      f"card: {_store_path(identity, sha)}")
    failing = next((c for c in others if not c["deployable"]), None)
    if failing is not None:
        failures = "; ".join(failing.get("failures") or []) or "the deploy gate failed"
        return refuse(f"model {model_spec!r} fails the deploy gate in a system card stored under "
                      f"{_policy_name(failing)} ({failures}) and has none under the serving policy {policy.source}; "
                      f"run `ponder card --model {model_spec}` under it")
    elsewhere = (f" (cards under other policies do not count: {', '.join(_policy_name(c) for c in others)})"
                 if others else "")
    if mode == "strict":
        return refuse(f"--gate strict: no passing system card for model {model_spec!r} (identity {identity}) under "
                      f"the serving policy {policy.source}{elsewhere}; run `ponder card --model {model_spec}`")
    warn(f"warning: no system card stored for model {model_spec!r} under the serving policy {policy.source}: "
         f"it is unaudited{elsewhere}; run `ponder card --model {model_spec}` to audit it, or serve with "
         "--gate strict to refuse unaudited models")
    return GateResult(None, identity, files)


def check_deployable(model_spec: str, allow_undeployable: bool = False, warn: Callable[[str], None] = _stderr, *,
                     mode: Literal["warn", "strict"] = "warn", policy: Policy | None = None) -> str | None:
    """None when `ponder serve` may serve the model; else the one-line reason it must refuse."""
    return gate_model(model_spec, allow_undeployable, warn, mode=mode, policy=policy).refusal
