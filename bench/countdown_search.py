"""How a model searches on countdown: greedy pass@1 per difficulty, tries per problem, and how
often a try is called "yes" when its expression does not reach the target, and how many
failures only the sign of the last try's last + or - stands between.

The RL stage needs a policy whose search is real: a verdict that follows from the value, and a
next try that differs from the last. This measures both on held-out problems (seeds from 10**9
up), so a warm start can be judged before RL is spent on it. A try's value is its expression's
exact value, not what the model wrote for it, so a "yes" after an arithmetic slip counts as false.

    python bench/countdown_search.py [--model SPEC] [--n 60] [--levels 1 2 3 4 5]
"""

from __future__ import annotations

import argparse
from fractions import Fraction

import torch

from ponder.engine.base import SamplingParams
from ponder.engine.spec import load_engine
from ponder.model.chat import Message
from ponder.tasks import TASKS, expressions
from ponder.tasks.mix import HELD_OUT_BASE
from ponder.think.scorers import countdown_instance


def tried_values(reasoning: str) -> list[tuple[str, Fraction | None, bool]]:
    """(expression, exact value or None, said yes) for every "try ..." line of a reasoning."""
    out = []
    for line in reasoning.splitlines():
        if not line.startswith("try "):
            continue
        text = line[4:].split(":")[0]
        tree = expressions.parse(text)
        try:
            value = expressions.evaluate(tree) if tree is not None else None
        except ZeroDivisionError:
            value = None
        out.append((text, value, line.rstrip().endswith("yes.")))
    return out


def off_by_sign(expression: str, target: int) -> bool:
    """Whether a try misses the target only by its last + or - (the split's sign)."""
    tree = expressions.parse(expression)
    if tree is None or isinstance(tree, int) or tree[0] not in "+-":
        return False
    flipped = ("-" if tree[0] == "+" else "+", tree[1], tree[2])
    try:
        return expressions.evaluate(tree) != target and expressions.evaluate(flipped) == target
    except ZeroDivisionError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--n", type=int, default=60, help="held-out problems per difficulty")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine = load_engine(args.model)
    params = SamplingParams(max_completion_tokens=512)  # effort high, greedy
    print(f"{args.model}: countdown, {args.n} held-out problems per level, greedy")
    print("level  pass@1  tries/problem  repeated tries  'yes' on a wrong value  reasoning tokens"
          "  failed by the sign")
    for level in args.levels:
        problems = [TASKS["countdown"].sample(HELD_OUT_BASE + i, level) for i in range(args.n)]
        completions = engine.generate([[Message("user", p.prompt)] for p in problems], params)
        solved = tries = repeats = yes = false_yes = wrong_sign = 0
        for problem, completion in zip(problems, completions):
            right = problem.verify(completion.answer) == 1.0
            solved += right
            _, target = countdown_instance(problem.prompt)
            found = tried_values(completion.reasoning)
            tries += len(found)
            repeats += len(found) - len({text for text, _, _ in found})
            for _, value, said_yes in found:
                yes += said_yes
                false_yes += said_yes and value != target
            wrong_sign += bool(found) and not right and off_by_sign(found[-1][0], target)
        n = len(problems)
        print(f"d{level}     {100 * solved / n:5.1f}%  {tries / n:13.1f}  {repeats / max(tries, 1):13.0%}"
              f"  {false_yes:>12d} of {yes:<9d}{sum(c.reasoning_tokens for c in completions) / n:17.0f}"
              f"{wrong_sign:>19d}")


if __name__ == "__main__":
    main()
