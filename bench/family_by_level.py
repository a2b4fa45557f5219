"""Held-out greedy pass@1 of a model for every task family at every difficulty, side by side.

Each cell is n problems of one family at one level, seeds 10**9 + 5000 + i (held out, and apart
from the RL stage's eval set at 10**9 + i). Greedy, effort high (no reasoning budget).

    python bench/family_by_level.py [--model SPEC ...] [--n 100]
"""

from __future__ import annotations

import argparse

from ponder.engine.base import SamplingParams
from ponder.engine.spec import load_engine
from ponder.model.chat import Message
from ponder.tasks import TASKS
from ponder.tasks.mix import DEFAULT_FAMILIES, HELD_OUT_BASE

SEED_BASE = HELD_OUT_BASE + 5000
LEVELS = range(1, 6)


def grid(spec: str, n: int) -> dict[str, list[float]]:
    """{family: [pass@1 at level 1..5]}, plus "reasoning_tokens": [mean per family]."""
    engine = load_engine(spec)
    out: dict[str, list[float]] = {"reasoning_tokens": []}
    for family in DEFAULT_FAMILIES:
        problems = [TASKS[family].sample(SEED_BASE + i, level) for level in LEVELS for i in range(n)]
        completions = engine.generate([[Message("user", p.prompt)] for p in problems],
                                      SamplingParams(max_completion_tokens=512))
        scores = [p.verify(c.answer) for p, c in zip(problems, completions)]
        out[family] = [sum(scores[k * n:(k + 1) * n]) / n for k in range(len(LEVELS))]
        out["reasoning_tokens"].append(sum(c.reasoning_tokens for c in completions) / len(completions))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["default"], help="model specs to compare")
    parser.add_argument("--n", type=int, default=100, help="problems per family and level")
    args = parser.parse_args()
    print(f"greedy held-out pass@1 in %, {args.n} problems per cell; (mean reasoning tokens)")
    print(f"{'model':<28} {'family':<14} " + " ".join(f"{'d' + str(d):>5}" for d in LEVELS) + f" {'mean':>6}")
    for spec in args.model:
        result = grid(spec, args.n)
        means = []
        for family, thinking in zip(DEFAULT_FAMILIES, result["reasoning_tokens"]):
            row = result[family]
            means.append(sum(row) / len(row))
            print(f"{spec[-28:]:<28} {family:<14} " + " ".join(f"{100 * x:>5.0f}" for x in row)
                  + f" {100 * means[-1]:>6.1f} ({thinking:.0f})")
        print(f"{spec[-28:]:<28} {'all':<14} {'':>29} {100 * sum(means) / len(means):>6.1f}")


if __name__ == "__main__":
    main()
