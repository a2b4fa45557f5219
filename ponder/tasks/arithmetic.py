"""Multi-digit arithmetic (+ - *): the simplest family, where a trace is pure longhand.

Difficulty scales the digit counts, so harder problems need more columns and partial
products and therefore longer traces:

    1: add/sub of 1-2 digit numbers (never below zero)
    2: add/sub of 2-3 digits, 2-digit x 1-digit multiplication
    3: add/sub of 3-4 digits (may go below zero), 2-3 digit x 1-2 digit
    4: add/sub of 4-5 digits, 3-digit x 2-digit
    5: 3-4 digit x 2-3 digit multiplication

Prompts use ASCII operators; a minority of multiplication prompts write "x" or a Unicode
times sign, so a model meets the forms people type. References are always ASCII.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ponder.tasks import longhand
from ponder.tasks.answers import score_number
from ponder.tasks.base import Problem, check_difficulty, rng_for

# (operator, digits of a (lo, hi), digits of b (lo, hi)) choices per difficulty.
_SPECS: dict[int, list[tuple[str, tuple[int, int], tuple[int, int]]]] = {
    1: [("+", (1, 2), (1, 2)), ("-", (1, 2), (1, 2))],
    2: [("+", (2, 3), (2, 3)), ("-", (2, 3), (2, 3)), ("*", (2, 2), (1, 1))],
    3: [("+", (3, 4), (3, 4)), ("-", (3, 4), (3, 4)), ("*", (2, 3), (1, 2))],
    4: [("+", (4, 5), (4, 5)), ("-", (4, 5), (4, 5)), ("*", (3, 3), (2, 2)),
        ("*", (3, 3), (2, 2))],
    5: [("*", (3, 4), (2, 3))],
}
# Below this difficulty a subtraction is ordered so its result is >= 0.
_NEGATIVE_FROM = 3

# Phrasings with relative weights; "What is a op b?" is the canonical one.
_PHRASINGS = [
    ("What is {a} {op} {b}?", 6),
    ("Compute {a} {op} {b}.", 2),
    ("Calculate {a} {op} {b}.", 2),
    ("{a} {op} {b} = ?", 1),
    ("Work out {a} {op} {b}.", 1),
]
# Written forms of "*" in prompts, with weights: mostly ASCII.
_TIMES = [("*", 8), ("x", 1), ("\u00d7", 1)]


def _number(rng: random.Random, digits: tuple[int, int]) -> int:
    n = rng.randint(*digits)
    return rng.randint(10 ** (n - 1) if n > 1 else 0, 10**n - 1)


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([w for w, _ in weighted], weights=[k for _, k in weighted])[0]


@dataclass(frozen=True)
class ArithmeticTask:
    name: str = "arithmetic"
    max_difficulty: int = 5

    def sample(self, seed: int, difficulty: int) -> Problem:
        check_difficulty(self.name, difficulty, self.max_difficulty)
        rng = rng_for(self.name, difficulty, seed)
        op, da, db = rng.choice(_SPECS[difficulty])
        a, b = _number(rng, da), _number(rng, db)
        if op == "-" and difficulty < _NEGATIVE_FROM and a < b:
            a, b = b, a
        if op == "*" and b < 2:
            b = rng.randint(2, 9)  # x0 and x1 teach nothing about carrying
        if op == "*" and b > a and len(str(b)) > len(str(a)):
            a, b = b, a  # keep the longer number on top, as the difficulty table says
        value, trace = longhand.calc(a, op, b)
        shown = _pick(rng, _TIMES) if op == "*" else op
        prompt = _pick(rng, _PHRASINGS).format(a=a, op=shown, b=b)
        return Problem(
            task=self.name,
            difficulty=difficulty,
            seed=seed,
            prompt=prompt,
            answer=str(value),
            reference=trace,
            _verifier=score_number,
        )
