"""The deploy gate (class 10): can a model reach `ponder serve` past its system card?

The issue's four ways round the gate, replayed against the card store and the check serve makes
(`gate_model`, and the `ponder serve` / `ponder card` CLI where the refusal is the point), on a
copy of the bundled checkpoint and hand-made results (cards.py), in a throwaway card store:

(a) one float of the weights changed: a new identity, which `--gate strict` refuses while the
    unchanged copy with a passing card is served;
(b) the weights edited and their mtime put back (os.utime): a new identity both through the memo
    `ponder card` uses and through serve's own hash; an edit after the gate hashed is caught;
(c) a passing card under a lenient policy (or a one-category one) for weights with a failing
    card: stored beside it, never over it, and serve still refuses; a policy file that drops a
    required category is refused without the explicit flag;
(d) results measured on two sets of weights: the card builder refuses to merge them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sqlite3
import time
from pathlib import Path

from ponder.engine.spec import BUNDLED
from ponder.errors import UserError
from ponder.evals import cache
from ponder.evals.card_cli import resolve_identity
from ponder.evals.card_results import load_results
from ponder.evals.gate import (card_json, gate_model, model_identity_of, served_identity, serving_policy, store_card,
                               stored_card, stored_cards)
from ponder.evals.preparedness import DEFAULT_POLICY, assess, load_policy, policy_digest

from .cards import card_store, change_one_float, write_results
from .harness import Result, free_port

WEIGHTS = "model.safetensors"


def _copy(root: Path, name: str) -> Path:
    shutil.copytree(BUNDLED, root / name)
    return root / name


def _short(identity: str) -> str:
    return identity[:18] + "…"


def _card(results: Path, identity: str, policy=None) -> dict:
    run = load_results(results)
    return card_json(assess(policy or load_policy(), [run]), identity, [run.source])


def _cli(argv: list[str]) -> tuple[int, str]:
    """`ponder ARGV` in this process: (exit code, what it wrote to stderr)."""
    from ponder.cli import main as ponder_main

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = ponder_main(argv)
    except Exception as error:  # a crash past the check is a failed case, not a broken class
        return -1, f"{type(error).__name__}: {error}"
    return rc, err.getvalue()


def _refuses(spec: str, mode: str, words: str = "") -> bool:
    refusal = gate_model(spec, warn=lambda line: None, mode=mode).refusal
    return refusal is not None and words in refusal


# ---- (a) one float changed ------------------------------------------------------------------

def one_float(r: Result, root: Path, store: Path) -> None:
    ckpt = _copy(root, "a-ckpt")
    before = model_identity_of(str(ckpt))
    store_card(_card(write_results(root / "a-pass"), before))
    warnings: list[str] = []
    served = gate_model(str(ckpt), warn=warnings.append, mode="strict")
    r.case(served.refusal is None and not warnings, "(a) the original with a passing card is not served under strict")
    change_one_float(ckpt / WEIGHTS)
    after, (hashed, _) = model_identity_of(str(ckpt)), served_identity(str(ckpt))
    r.case(after != before and hashed == after, "(a) a one-float change keeps the card's identity")
    strict = _refuses(str(ckpt), "strict", "--gate strict: no passing system card")
    r.case(strict, "(a) --gate strict serves the one-float change")
    warnings = []
    warn = gate_model(str(ckpt), warn=warnings.append, mode="warn")
    said = len(warnings) == 1 and "unaudited" in warnings[0] and "--gate strict" in warnings[0]
    r.case(warn.refusal is None and said, "(a) --gate warn serves the change without saying it is unaudited")
    if strict:  # only then: a gate that let it through would start serving here
        rc, err = _cli(["serve", "--model", str(ckpt), "--gate", "strict", "--port", str(free_port())])
        r.case(rc == 2 and "--gate strict" in err and err.count("\n") == 1,
               f"(a) `ponder serve --gate strict` on the change -> exit {rc}")
    r.notes.append(f"one float: {_short(before)} -> {_short(after)}")


# ---- (b) an edit with the mtime put back ----------------------------------------------------

def _memoised(store: Path, path: Path) -> bool:
    with contextlib.closing(sqlite3.connect(store / "file_hashes.sqlite")) as db:
        rows = db.execute("SELECT COUNT(*) FROM file_hashes_v2 WHERE path = ?", (str(path.resolve()),))
        return rows.fetchone()[0] > 0


def mtime_kept(r: Result, root: Path, store: Path) -> None:
    racy = cache.RACY_NS
    for memo in ("memoised", "racy window"):
        ckpt = _copy(root, f"b-ckpt-{memo.replace(' ', '-')}")
        weights = ckpt / WEIGHTS
        cache.RACY_NS = 0 if memo == "memoised" else racy  # memoise even a file copied a moment ago
        try:
            before = model_identity_of(str(ckpt))
        finally:
            cache.RACY_NS = racy
        if memo == "memoised":
            r.case(_memoised(store, weights), "(b) the memo holds no hash to go stale (setup)")
        store_card(_card(write_results(root / f"b-pass-{memo[0]}"), before))
        time.sleep(0.05)  # past the clock tick of the memo's ctime
        stat = weights.stat()
        change_one_float(weights)
        os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        same_stat = (weights.stat().st_size, weights.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
        r.case(same_stat and model_identity_of(str(ckpt)) != before,
               f"(b) {memo}: edit + mtime put back matches the old card through the memo")
        r.case(served_identity(str(ckpt))[0] != before, f"(b) {memo}: edit + mtime put back matches at serve")
        r.case(_refuses(str(ckpt), "strict"), f"(b) {memo}: --gate strict serves the edit under the old card")
    ckpt = _copy(root, "b-ckpt-late")
    gate = gate_model(str(ckpt), warn=lambda line: None)
    change_one_float(ckpt / WEIGHTS)
    changed = gate.changed()
    r.case(changed is not None and "changed after the deploy gate hashed it" in changed,
           "(b) an edit after the gate hashed the files goes unnoticed")


# ---- (c) a lenient policy's card ------------------------------------------------------------

def _policy_file(root: Path, name: str, text: str) -> Path:
    (root / name).write_text(text, encoding="utf-8")
    return root / name


def lenient_policy(r: Result, root: Path, store: Path) -> None:
    ckpt = _copy(root, "c-ckpt")
    identity = model_identity_of(str(ckpt))
    bad = write_results(root / "c-bad", unsafe_chem=0.5)  # CBRN post-mitigation Critical
    failing = _card(bad, identity)
    store_card(failing)
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    lenient = load_policy(_policy_file(root, "lenient.toml", text.replace('deploy_max = "Medium"',
                                                                          'deploy_max = "Critical"')))
    passing = _card(bad, identity, lenient)
    notes: list[str] = []
    store_card(passing, warn=notes.append)
    kept = stored_card(identity)
    r.case(not failing["deployable"] and passing["deployable"] and kept is not None and not kept["deployable"]
           and len(stored_cards(identity)) == 2, "(c) a lenient-policy card overwrote the failing card")
    recorded = passing["policy"]
    r.case(recorded["sha256"] == policy_digest(lenient) != policy_digest(load_policy())
           and recorded["rules"]["deploy_max"] == "Critical", "(c) the card does not record its policy and its hash")
    for mode in ("warn", "strict"):
        r.case(_refuses(str(ckpt), mode, "CBRN: post-mitigation Critical"),
               f"(c) --gate {mode} serves after a lenient card")
    # a one-category policy: refused without the explicit flag, and its card changes nothing either
    one_text = text[:text.index("[categories.cbrn]")] + text[text.index("[categories.autonomy]"):]
    one = _policy_file(root, "one.toml", one_text)
    try:
        load_policy(one)
        refused = False
    except UserError as error:
        refused = "drops required categories cbrn, cybersecurity, persuasion" in str(error)
    r.case(refused, "(c) a policy file dropping three required categories loads without a flag")
    if refused:  # only then: past the check, `ponder card` would validate its grader (~30 s)
        rc, err = _cli(["card", "--from-results", str(bad), "--policy", str(one), "--out", str(root / "c-one-card")])
        r.case(rc == 2 and "--allow-partial-policy" in err, f"(c) `ponder card --policy one.toml` -> exit {rc}")
    partial = _card(bad, identity, load_policy(one, allow_partial=True))
    store_card(partial)
    r.case(partial["deployable"] and partial["policy"]["missing_categories"] == ["cbrn", "cybersecurity", "persuasion"]
           and _refuses(str(ckpt), "warn", "CBRN"), "(c) a one-category card (with the flag) lets serve through")
    os.environ["PONDER_GATE_POLICY"] = str(one)  # card_store restores it
    try:
        serving_policy()
        refused = False
    except UserError as error:
        refused = "drops required" in str(error)
    r.case(refused, "(c) a one-category serving policy is accepted")
    del os.environ["PONDER_GATE_POLICY"]
    r.notes.append(f"cards stored side by side for one identity: {len(stored_cards(identity))}")


# ---- (d) results from two identities ------------------------------------------------------------

def two_identities(r: Result, root: Path, store: Path) -> None:
    a, b = "ponder:" + "a" * 64, "ponder:" + "b" * 64
    low = write_results(root / "d-low", effort="low", identity=a)
    high = write_results(root / "d-high", effort="high", identity=b)
    plain = write_results(root / "d-plain", effort="high")  # records no identity
    refusals = 0
    for label, files in (("a and b", (low, high)), ("a and none", (low, plain))):
        try:
            resolve_identity("default", [load_results(f) for f in files], log=lambda line: None)
            refused = False
        except UserError as error:
            refused = "measured different weights" in str(error)
        refusals += r.case(refused, f"(d) results of identities {label} merged into one card")
    if refusals == 2:  # only then: past the check, `ponder card` would validate its grader (~30 s)
        out = root / "d-card"
        rc, err = _cli(["card", "--from-results", str(low), str(high), "--out", str(out)])
        r.case(rc == 2 and "measured different weights" in err and not (out / "card.json").exists()
               and not stored_cards(a) and not stored_cards(b), f"(d) `ponder card` on two identities -> exit {rc}")
    same = write_results(root / "d-same", effort="high", identity=a)
    r.case(resolve_identity("default", [load_results(low), load_results(same)], log=lambda line: None) == a,
           "(d) control: two results of one identity are refused")


def deploy_gate(servers, quick: bool) -> Result:
    r = Result("deploy gate", "(a) one float changed -> new identity, --gate strict refuses it (API and `ponder "
               "serve`), the unchanged copy with a passing card serves; (b) edit + mtime put back -> new identity via "
               "the memo and serve's hash, a post-gate edit is caught; (c) lenient and one-category policy cards "
               "sit beside a failing one, serve still refuses, a partial policy needs the flag; (d) a card refuses "
               "results from two identities")
    root = servers.root / "gate"
    root.mkdir(parents=True, exist_ok=True)
    for name, run in (("a", one_float), ("b", mtime_kept), ("c", lenient_policy), ("d", two_identities)):
        with card_store(root / name) as store:  # a store of its own for each finding
            run(r, root, store)
    return r
