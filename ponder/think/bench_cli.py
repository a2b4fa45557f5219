"""`ponder bench think`: accuracy against test-time tokens for every strategy, on the bundled
model's held-out mix or a GSM8K file, with any model spec. Writes think_curves.json (every
point) and think_curves.png (log-x plot) to --out and prints the table."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from pathlib import Path

from ponder.engine.spec import VALID_SPECS
from ponder.errors import UserError


def add_bench_think(bench_sub) -> None:
    from ponder.think.budget import EFFORT_BUDGETS

    think = bench_sub.add_parser(
        "think", help="accuracy against tokens per problem for each test-time strategy",
        description="Accuracy against mean tokens per problem (log x) for self-consistency, best-of-n, "
        "weighted best-of-n (replayed from one pool of samples), budget forcing, adaptive and, with --prm, "
        "PRM beam search (run for real).")
    think.add_argument("--model", default="default", metavar="SPEC", help=f"the model: {VALID_SPECS}")
    think.add_argument("--data", default="builtin", metavar="SET",
                       help="builtin (the held-out task mix) or a GSM8K-format JSONL file path")
    think.add_argument("--n", type=int, default=100, help="problems (the first N; default 100)")
    think.add_argument("--difficulty", type=int, default=None, help="builtin only: one difficulty level")
    think.add_argument("--effort", default="medium", choices=list(EFFORT_BUDGETS))
    think.add_argument("--max-completion-tokens", type=int, default=512, metavar="N")
    think.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16], metavar="K",
                       help="sample counts along the pool curves")
    think.add_argument("--forcing", type=int, nargs="*", default=[64, 128], metavar="MIN",
                       help="budget forcing runs: minimum reasoning tokens each (none: skip)")
    think.add_argument("--no-adaptive", action="store_true", help="skip the adaptive policy")
    think.add_argument("--prm", default=None, metavar="DIR", help="a trained PRM: adds PRM beam search (slow)")
    think.add_argument("--seed", type=int, default=0, help="sample i of a problem has seed SEED+i")
    think.add_argument("--out", default=None, metavar="DIR", help="default runs/bench-think/<model>-<data>")
    think.set_defaults(func=cmd_bench_think)


def load_problems(data: str, n: int, difficulty: int | None):
    from ponder.tasks.gsm8k import load_gsm8k
    from ponder.tasks.mix import held_out_set

    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    if data == "builtin":
        return held_out_set(n, difficulty)
    if difficulty is not None:
        raise UserError("--difficulty applies to --data builtin only")
    return load_gsm8k(data)[:n]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-60:] or "model"


def cmd_bench_think(args: argparse.Namespace) -> int:
    from ponder.engine.base import SamplingParams
    from ponder.engine.spec import load_engine
    from ponder.think.budget import budget_for
    from ponder.think.curves import CurveConfig, run_curves
    from ponder.think.curves_plot import plot_curves

    config = CurveConfig(ks=tuple(args.ks), forcing=tuple(args.forcing), adaptive=not args.no_adaptive,
                         prm=args.prm)
    if args.prm and not Path(args.prm).is_dir():
        raise UserError(f"--prm: no PRM directory at {args.prm} (train one with `ponder train --stage prm`)")
    problems = load_problems(args.data, args.n, args.difficulty)
    params = SamplingParams(max_completion_tokens=args.max_completion_tokens,
                            reasoning_budget=budget_for(args.effort), seed=args.seed)
    out = Path(args.out or f"runs/bench-think/{slug(args.model)}-{slug(Path(args.data).stem)}")
    engine = load_engine(args.model)
    started = time.perf_counter()
    points = run_curves(engine, problems, params, config)
    print(f"\n{len(problems)} problems ({args.data}), model {args.model}, effort {args.effort}, "
          f"{time.perf_counter() - started:.0f} s")
    print(f"{'strategy':>20} {'setting':>10} {'accuracy':>9} {'tokens/problem':>15} {'generated':>10} {'samples':>8}")
    for p in points:
        print(f"{p.strategy:>20} {p.setting:>10} {100 * p.accuracy:>8.1f}% {p.tokens:>15.0f} {p.generated:>10.0f} "
              f"{p.samples:>8.2f}")
    out.mkdir(parents=True, exist_ok=True)
    meta = {"model": args.model, "data": args.data, "n": len(problems), "effort": args.effort,
            "max_completion_tokens": args.max_completion_tokens, "seed": args.seed}
    (out / "think_curves.json").write_text(json.dumps(
        {**meta, "points": [dataclasses.asdict(p) for p in points]}, indent=1) + "\n")
    level = f", difficulty {args.difficulty}" if args.difficulty else ""
    title = f"{args.model} on {Path(args.data).stem} ({len(problems)} problems{level}), effort {args.effort}"
    print(f"wrote {out / 'think_curves.json'} and {plot_curves(points, out / 'think_curves.png', title)}")
    return 0


def register(sub) -> None:
    bench = sub.add_parser("bench", help="benchmarks that print tables and write plots")
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="BENCH")
    add_bench_think(bench_sub)
