"""`ponder card`: run the card's evals for a model (and any compared models) at each reasoning
effort, or read existing results.json files, then write card.md, card.html and card.json, record
the card in the card store (gate.py) and, with --gate, exit 1 when the deploy rule fails.

Exit codes: 0 written (and, with --gate, deployable); 1 --gate and not deployable; 2 user error
(through ponder.cli.main). Left out: scheduling evals on other machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ponder.config import add_field_flag
from ponder.engine.spec import VALID_SPECS
from ponder.errors import UserError
from ponder.evals.data import data_dir_from
from ponder.evals.card_config import CardConfig, load_card_config
from ponder.evals.card_results import RunResults, by_model, load_results

TUPLE_FIELDS = ("suites", "efforts", "suite_limits")  # list flags: --efforts low high, or --efforts low,high


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "card", help="audit a model: evals, a system card and a Preparedness scorecard",
        description="Run the card's eval suites at each reasoning effort (or read --from-results files) and write "
                    "card.md, card.html and card.json to --out; the card is also recorded in the card store "
                    "($PONDER_CARD_DIR, default ~/.cache/ponder/cards) where `ponder serve` looks for it. "
                    "Settings come from --config (default: the card.toml shipped with ponder); flags win.")
    p.add_argument("--model", default=None, metavar="SPEC",
                   help=f"model to audit: {VALID_SPECS}")
    p.add_argument("--compare", nargs="+", default=[], metavar="SPEC", help="models shown as extra columns")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default runs/card/<model>-<time>)")
    p.add_argument("--config", default=None, metavar="FILE", help="TOML card settings (see ponder/evals/card.toml)")
    p.add_argument("--from-results", nargs="+", default=None, metavar="FILE",
                   help="build the card from these results.json files (or their folders); runs nothing, so "
                        "--suites/--efforts/--limit do not apply: the card shows what the files hold")
    p.add_argument("--gate", action="store_true", help="exit 1 when a post-mitigation category is above Medium")
    p.add_argument("--no-store", action="store_true", help="do not record the card in the card store")
    p.add_argument("--allow-partial-policy", action="store_true",
                   help="accept a --policy file that leaves out required Preparedness categories (the card records "
                        "which; `ponder serve` still checks cards against its own policy)")
    hints = typing.get_type_hints(CardConfig)
    for f in dataclasses.fields(CardConfig):
        extra: dict[str, Any] = {"nargs": "+"} if f.name in TUPLE_FIELDS else {}
        add_field_flag(p, f, hints[f.name], **extra)
    p.set_defaults(func=cmd_card)


def config_from_args(args: argparse.Namespace) -> CardConfig:
    overrides: dict[str, Any] = {}
    for f in dataclasses.fields(CardConfig):
        value = getattr(args, f.name, None)
        if value is not None and f.name in TUPLE_FIELDS:
            value = [item.strip() for part in value for item in part.split(",") if item.strip()]
        overrides[f.name] = value
    return load_card_config(Path(args.config) if args.config else None, overrides)


def check_suites_available(suites) -> None:
    """Import every suite's module before any model runs, so a missing one fails in a second."""
    from ponder.evals.suites import suite_builder

    for name in suites:
        try:
            suite_builder(name)
        except ImportError as error:
            raise UserError(f"eval suite {name!r} is not available in this ponder ({error}); "
                            "leave it out with --suites") from None


def run_sweep(cfg: CardConfig, models: list[str], out: Path,
              log: Callable[[str], None]) -> list[RunResults]:
    """Every model at every effort of `cfg`, each in out/runs/<i>-<model>-<effort>/. Suites with
    different limits run as separate evals under parts/ and are merged into one results.json."""
    from ponder.evals.run import model_slug

    check_suites_available(cfg.suites)
    groups: dict[int | None, list[str]] = {}
    for suite in cfg.suites:
        groups.setdefault(cfg.limit_for(suite), []).append(suite)
    runs = []
    for i, model in enumerate(models):
        for effort in cfg.sorted_efforts:
            run_dir = out / "runs" / f"{i}-{model_slug(model)}-{effort}"
            log(f"{model} at effort {effort} -> {run_dir}")
            parts = []
            for limit, suites in groups.items():
                part_dir = run_dir if len(groups) == 1 else run_dir / "parts" / f"limit-{limit or 'all'}"
                data = _run_one(cfg, model, effort, tuple(suites), limit, part_dir,
                                lambda line, m=model, e=effort: log(f"  [{m} {e}] {line}"))
                parts.append((data, part_dir))
            data = parts[0][0] if len(parts) == 1 else merge_parts(parts, run_dir, cfg)
            runs.append(RunResults(data, run_dir, str(run_dir / "results.json")))
    return runs


def _run_one(cfg: CardConfig, model: str, effort: str, suites: tuple[str, ...], limit: int | None, out_dir: Path,
             log: Callable[[str], None]) -> dict[str, Any]:
    from ponder.evals.run import RunConfig, run_eval

    config = RunConfig(suites=suites, model=model, limit=limit, effort=effort, k=cfg.k, concurrency=cfg.concurrency,
                       judge=cfg.judge, data_dir=data_dir_from(cfg.data_dir), out_dir=out_dir, seed=cfg.seed,
                       cache=cfg.cache_path())
    return run_eval(config, log=log)


def merge_parts(parts: list[tuple[dict[str, Any], Path]], run_dir: Path, cfg: CardConfig) -> dict[str, Any]:
    """One results.json from evals run with different limits: the suites side by side, each
    samples_file pointing into its part's folder, every suite's limit under settings."""
    merged = {**parts[0][0], "suites": {}}
    merged["settings"] = {**parts[0][0].get("settings", {}), "limit": cfg.limit,
                          "suite_limits": {s: cfg.limit_for(s) for s in cfg.suites}}
    for data, part_dir in parts:
        for name, entry in data["suites"].items():
            samples = (part_dir / entry["samples_file"]).relative_to(run_dir).as_posix()
            merged["suites"][name] = {**entry, "samples_file": samples}
    (run_dir / "results.json").write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return merged


def select_models(runs: list[RunResults], model: str | None, compare: list[str]) -> dict[str, list[RunResults]]:
    """--from-results: the card's model (--model, else the first file's) first, then the compared
    ones (--compare, else every other model in the files)."""
    grouped = by_model(runs)
    primary = model or runs[0].model
    wanted = [primary, *[m for m in (compare or grouped) if m != primary]]
    missing = [m for m in wanted if m not in grouped]
    if missing:
        raise UserError(f"no results for model(s) {missing} in --from-results; the files hold {sorted(grouped)}")
    return {m: grouped[m] for m in wanted}


def resolve_identity(spec: str, runs: list[RunResults], log: Callable[[str], None]) -> str | None:
    """The model identity the results record (one card is about one set of weights: results
    from two are refused), else the identity of the model at that spec now."""
    from ponder.evals.gate import model_identity_of

    recorded = {r.source: r.data.get("model_identity") for r in runs}
    known = dict.fromkeys(i for i in recorded.values() if i is not None)
    if len(known) > 1 or (known and None in recorded.values()):
        (a, first), (b, second) = _two_identities(recorded)
        raise UserError(f"the results for {spec!r} measured different weights: {a} records identity {first} and "
                        f"{b} records {second}; build one card per model identity")
    if known:
        return next(iter(known))
    try:
        identity = model_identity_of(spec)
        log(f"warning: the results do not record which weights they measured; the card is keyed by the "
            f"model now at {spec!r}")
        return identity
    except UserError as error:
        log(f"warning: cannot identify model {spec!r} ({error}); the card is not stored")
        return None


def _two_identities(recorded: dict[str, str | None]) -> tuple[tuple[str, str], tuple[str, str]]:
    """Two results files whose recorded identities differ (a missing one reads 'none')."""
    items = [(source, identity or "none") for source, identity in recorded.items()]
    first = items[0]
    return first, next(item for item in items[1:] if item[1] != first[1])


def cmd_card(args: argparse.Namespace) -> int:
    from ponder.evals.card import build_card, write_card
    from ponder.evals.gate import card_json, store_card
    from ponder.evals.preparedness import assess, load_policy

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    cfg = config_from_args(args)
    policy = load_policy(cfg.policy_path(), args.allow_partial_policy)  # a bad policy fails before anything runs
    if args.from_results:
        models = select_models([load_results(Path(f)) for f in args.from_results], args.model, args.compare)
    else:
        models = None
    primary = next(iter(models)) if models else (args.model or "default")
    out = Path(args.out) if args.out else default_card_dir(primary)
    if models is None:
        runs = run_sweep(cfg, [primary, *[m for m in args.compare if m != primary]], out, log)
        models = by_model(runs)
    cards = {m: assess(policy, runs) for m, runs in models.items()}
    identity = resolve_identity(primary, models[primary], log)
    blocks = build_card(models, cards, identity=identity, examples=cfg.examples)
    written = write_card(out, blocks, f"System card: {primary}")
    card = cards[primary]
    data = card_json(card, identity, [r.source for r in models[primary]],
                     {m: c for m, c in cards.items() if m != primary})
    (out / "card.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    stored = store_card(data) if identity and not args.no_store else None
    for c in card.categories:
        print(f"{c.title:15s} pre {c.pre.level:13s} post {c.post.level}")
    print(f"wrote {written['card.md']}, {written['card.html']}, {out / 'card.json'}"
          + (f"; stored {stored}" if stored else ""))
    if card.deployable:
        print(f"deploy gate: PASS (every post-mitigation category is {policy.deploy_max} or below)")
        return 0
    print("deploy gate: FAIL")
    for line in card.failures():
        print(f"  {line}")
    return 1 if args.gate else 0


def default_card_dir(model: str) -> Path:
    from ponder.evals.run import model_slug

    return Path("runs") / "card" / f"{model_slug(model)}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}"
