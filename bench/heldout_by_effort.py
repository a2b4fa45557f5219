"""Held-out pass@1 of a model at each reasoning effort, per task family and difficulty.

The held-out set is fixed (seeds from 10**9 up, never used in training), greedy decoding, one
engine call per effort level.

    python bench/heldout_by_effort.py [--model SPEC] [--n 300]
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from ponder.engine.base import SamplingParams
from ponder.engine.spec import load_engine
from ponder.model.chat import Message
from ponder.tasks.mix import DEFAULT_FAMILIES, held_out_set
from ponder.think.budget import EFFORT_BUDGETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--n", type=int, default=300, help="held-out problems")
    args = parser.parse_args()
    engine = load_engine(args.model)
    problems = held_out_set(args.n)
    prompts = [[Message("user", p.prompt)] for p in problems]
    levels = sorted({p.difficulty for p in problems})
    print(f"{args.n} held-out problems, greedy; pass@1 in % (mean reasoning tokens), then mean answer tokens")
    header = f"{'effort':>8} {'budget':>6} {'all':>12} " + " ".join(f"{f:>13}" for f in DEFAULT_FAMILIES)
    print(header + " " + " ".join(f"{'d' + str(d):>5}" for d in levels) + f" {'answer':>7}")
    for effort, budget in EFFORT_BUDGETS.items():
        completions = engine.generate(prompts, SamplingParams(max_completion_tokens=512, reasoning_budget=budget))
        by: dict[str, list[float]] = defaultdict(list)
        for p, c in zip(problems, completions):
            score = p.verify(c.answer)
            for key in ("all", p.task, f"d{p.difficulty}"):
                by[key].append(score)
        thinking = sum(c.reasoning_tokens for c in completions) / len(completions)
        pct = lambda key: 100 * sum(by[key]) / max(len(by[key]), 1)
        row = f"{effort:>8} {str(budget):>6} {pct('all'):>5.1f} ({thinking:>4.0f}) "
        row += " ".join(f"{pct(f):>13.1f}" for f in DEFAULT_FAMILIES)
        answer = sum(c.answer_tokens for c in completions) / len(completions)
        print(row + " " + " ".join(f"{pct(f'd{d}'):>5.1f}" for d in levels) + f" {answer:>7.1f}")


if __name__ == "__main__":
    main()
