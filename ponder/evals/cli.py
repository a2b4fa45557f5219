"""`ponder eval SUITE...`: run eval suites against a model spec, print a table, write results.json.

Thin: flags -> RunConfig -> run_eval -> a table. Every bad flag is a UserError (one line, exit 2
from ponder's main), including numbers, so a typo never prints argparse's usage block.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ponder.errors import UserError
from ponder.evals.data import data_dir_from


def _whole(flag: str, text: str | None, minimum: int) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{flag} must be a whole number, got {text!r}") from None
    if value < minimum:
        raise UserError(f"{flag} must be at least {minimum}, got {value}")
    return value


def _paths(pairs: list[str]) -> dict[str, Path]:
    out = {}
    for pair in pairs:
        suite, sep, path = pair.partition("=")
        if not sep or not suite or not path:
            raise UserError(f"--data takes SUITE=FILE (e.g. gsm8k=my/test.jsonl), got {pair!r}")
        out[suite] = Path(path)
    return out


def config_from_args(args: argparse.Namespace):
    from ponder.evals.cache import DEFAULT_CACHE
    from ponder.evals.run import RunConfig, default_out_dir

    effort = args.effort
    seed = _whole("--seed", args.seed, 0)
    cache = None if args.no_cache else Path(args.cache) if args.cache else DEFAULT_CACHE
    config = RunConfig(
        suites=tuple(args.suites), model=args.model, limit=_whole("--limit", args.limit, 1), effort=effort,
        k=_whole("--k", args.k, 1), seed=seed, concurrency=_whole("--concurrency", args.concurrency, 1),
        judge=args.judge, data_dir=data_dir_from(args.data_dir), paths=_paths(args.data), cache=cache,
        out_dir=Path(args.out) if args.out else None,
    )
    if config.out_dir is None:  # resolved here, so the path printed is the path written
        from dataclasses import replace

        config = replace(config, out_dir=default_out_dir(config.model, config.effort))
    for suite in config.paths:
        if suite not in config.suites:
            raise UserError(f"--data names suite {suite!r}, which is not being run ({', '.join(config.suites)})")
    return config


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


def format_table(results: dict[str, Any]) -> str:
    rows = [("suite", "metric", "value", "95% CI", "n", "skipped", "ungraded")]
    for suite, entry in results["suites"].items():
        for i, (name, m) in enumerate(entry["metrics"].items()):
            ci = "-" if m["ci_low"] is None else f"[{_number(m['ci_low'])}, {_number(m['ci_high'])}]"
            first = i == 0
            rows.append((suite if first else "", name, _number(m["value"]), ci, str(m["n"]),
                         str(entry["skipped"]["count"]) if first else "", str(entry["ungraded"]) if first else ""))
        if not entry["metrics"]:
            rows.append((suite, "-", "-", "-", "0", str(entry["skipped"]["count"]), str(entry["ungraded"])))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = []
    for r, row in enumerate(rows):
        cells = [cell.ljust(w) if c < 2 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if r == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from ponder.evals.run import run_eval

    config = config_from_args(args)
    results = run_eval(config, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_table(results))
    for suite, entry in results["suites"].items():
        for reason, count in entry["skipped"]["reasons"].items():
            print(f"{suite}: skipped {count}: {reason}")
    print(f"results: {Path(config.out_dir) / 'results.json'}")
    return 0


def register(subparsers) -> None:
    from ponder.evals.suites import SUITES

    parser = subparsers.add_parser(
        "eval", help="run capability and safety eval suites against a model",
        description="Run eval suites against any model spec; print a table and write results.json and "
                    f"per-sample logs. Suites: {', '.join(SUITES)}.")
    parser.add_argument("suites", nargs="+", metavar="SUITE", help=f"one or more of: {', '.join(SUITES)}")
    parser.add_argument("--model", default="default",
                        help="model spec: default, a checkpoint DIR, hf:DIR, gguf:FILE or openai:MODEL@URL")
    parser.add_argument("--limit", default=None, metavar="N", help="samples per suite (default: all)")
    parser.add_argument("--effort", default="medium", help="reasoning effort: minimal, low, medium or high")
    parser.add_argument("--k", default="1", metavar="K", help="samples per item; K > 1 adds maj@K")
    parser.add_argument("--concurrency", default="16", metavar="C",
                        help="samples per engine call (requests in flight for a remote model)")
    parser.add_argument("--judge", default=None, metavar="SPEC", help="a model spec to grade with (default: offline graders)")
    parser.add_argument("--data-dir", default=None, metavar="DIR",
                        help="folder with one subfolder per dataset (gsm8k/test.jsonl, math500/test.jsonl, ...); "
                             "default: $PONDER_DATA")
    parser.add_argument("--data", action="append", default=[], metavar="SUITE=FILE",
                        help="a suite's dataset file of your own (repeatable)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: runs/eval/<model>-<effort>-<timestamp>)")
    parser.add_argument("--cache", default=None, metavar="FILE", help="response cache (default: ~/.cache/ponder/evals.sqlite)")
    parser.add_argument("--no-cache", action="store_true", help="call the model for every sample, cache nothing")
    parser.add_argument("--seed", default="0", metavar="S", help="sample i of k gets seed S+i")
    parser.set_defaults(func=cmd_eval)
