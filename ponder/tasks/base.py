"""What a verifiable task family is: problems from (seed, difficulty), a prompt, a verifier
and a reference step-by-step solution.

Training (SFT traces, RL rewards) and evals share these objects, so a task's eval and its
reward are the same code. A task knows text only; tokenisation belongs to the model layer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ponder.errors import UserError


@dataclass(frozen=True)
class Problem:
    """One problem instance. `reference` is the step-by-step reasoning (goes inside <think>);
    `answer` is the short canonical final answer that follows the reasoning."""

    task: str
    difficulty: int
    seed: int
    prompt: str
    answer: str
    reference: str
    # The family's verifier, bound to this instance: answer text -> reward in [0, 1].
    _verifier: Callable[["Problem", str], float] = field(repr=False, compare=False)
    # (start, end) character spans of `reference` that training shows but does not teach: a
    # deliberate mistake the trace goes on to catch. The model learns to catch it, not to make it.
    untrained: tuple[tuple[int, int], ...] = ()

    def verify(self, answer: str) -> float:
        return self._verifier(self, answer)


class Task(Protocol):
    name: str
    max_difficulty: int  # difficulties run 1..max_difficulty

    def sample(self, seed: int, difficulty: int) -> Problem: ...


def check_difficulty(task: str, difficulty: int, max_difficulty: int) -> int:
    """Return `difficulty` if it is an int in 1..max_difficulty, else raise UserError."""
    # bool is an int subclass; True as a difficulty is a caller's slip, not a level.
    if isinstance(difficulty, bool) or not isinstance(difficulty, int):
        raise UserError(
            f"task {task!r}: difficulty must be an integer in 1..{max_difficulty}, "
            f"got {difficulty!r}"
        )
    if not 1 <= difficulty <= max_difficulty:
        raise UserError(
            f"task {task!r}: difficulty {difficulty} is out of range; "
            f"valid difficulties are 1..{max_difficulty}"
        )
    return difficulty


def rng_for(*parts: object) -> random.Random:
    """A private RNG seeded from `parts` (e.g. task name, difficulty, seed).

    String seeds go through SHA-512 inside `random`, so the stream is the same on every
    machine and run, independent of PYTHONHASHSEED; the global RNG is never touched.
    """
    return random.Random(":".join(str(p) for p in parts))
