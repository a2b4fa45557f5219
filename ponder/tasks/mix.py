"""The default training mix over generated families, and a held-out set that never overlaps it.

Seeds 0..10**9-1 are for training and seeds from 10**9 up are held out, so an eval drawn with
`held_out_set` shares no seed with any training sample. It is seed-disjoint, not text-disjoint:
the easiest levels have few distinct problems (1-2 digit sums), so the same text can come from
both ranges; hard levels almost never repeat.
"""

from __future__ import annotations

from ponder.errors import UserError
from ponder.tasks import TASKS
from ponder.tasks.base import Problem, check_difficulty, rng_for

DEFAULT_FAMILIES = ("arithmetic", "countdown", "word_problems")
HELD_OUT_BASE = 10**9  # first held-out seed; training seeds are 0..HELD_OUT_BASE-1


def _family(name: str):
    if name not in TASKS:
        raise UserError(f"unknown task family {name!r} in the mix; "
                        f"valid families are: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def sample_mix(seed: int, difficulty: int | None = None,
               families: tuple[str, ...] = DEFAULT_FAMILIES) -> Problem:
    """One problem: the family (and, if `difficulty` is None, the level) comes from the seed.

    The family's own generator then gets the same seed, so the problem equals
    `TASKS[problem.task].sample(seed, problem.difficulty)`.
    """
    if not families:
        raise UserError("the task mix needs at least one family; "
                        f"valid families are: {', '.join(sorted(TASKS))}")
    tasks = [_family(name) for name in families]
    rng = rng_for("mix", seed)
    task = rng.choice(tasks)
    if difficulty is None:
        level = rng.randint(1, task.max_difficulty)
    else:
        level = check_difficulty(task.name, difficulty, task.max_difficulty)
    return task.sample(seed, level)


def held_out_set(n: int, difficulty: int | None = None, base_seed: int = HELD_OUT_BASE,
                 families: tuple[str, ...] = DEFAULT_FAMILIES) -> list[Problem]:
    """A fixed list of n problems from seeds base_seed..base_seed+n-1, all >= 10**9."""
    if base_seed < HELD_OUT_BASE:
        raise UserError(f"held-out base_seed must be >= {HELD_OUT_BASE} so it cannot overlap "
                        f"training seeds 0..{HELD_OUT_BASE - 1}; got {base_seed}")
    if n < 0:
        raise UserError(f"held-out set size must be >= 0, got {n}")
    return [sample_mix(base_seed + i, difficulty, families) for i in range(n)]
