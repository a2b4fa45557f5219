"""Verifiable task families: problems from (seed, difficulty), each with a prompt, a reference
step-by-step trace and a verifier that scores free-form answer text in [0, 1].

`TASKS` holds the generated families, which need nothing but a seed. GSM8K reads a local
file, so it is built with a path: `get_task("gsm8k", path=...)` or `GSM8KTask(path)`.
"""

from __future__ import annotations

from pathlib import Path

from ponder.errors import UserError
from ponder.tasks.arithmetic import ArithmeticTask
from ponder.tasks.base import Problem, Task
from ponder.tasks.countdown import CountdownTask
from ponder.tasks.gsm8k import GSM8KTask, load_gsm8k
from ponder.tasks.word_problems import WordProblemTask

TASKS: dict[str, Task] = {
    task.name: task for task in (ArithmeticTask(), CountdownTask(), WordProblemTask())
}


def get_task(name: str, *, path: str | Path | None = None) -> Task:
    """The task called `name`; "gsm8k" also needs the `path` of its JSONL file."""
    if name == GSM8KTask.name:
        if path is None:
            raise UserError("task 'gsm8k' reads a local JSONL file: pass its path "
                            "(e.g. get_task('gsm8k', path='data/gsm8k/test.jsonl'))")
        return GSM8KTask(path)
    if name not in TASKS:
        valid = ", ".join(sorted([*TASKS, GSM8KTask.name]))
        raise UserError(f"unknown task {name!r}; valid tasks are: {valid}")
    if path is not None:
        raise UserError(f"task {name!r} is generated and takes no path (only gsm8k reads a file)")
    return TASKS[name]


__all__ = ["TASKS", "GSM8KTask", "Problem", "Task", "get_task", "load_gsm8k"]
