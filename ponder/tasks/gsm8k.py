"""GSM8K from a local JSONL file: real grade-school problems for evals and fine-tuning.

Each line is {"question": str, "answer": str}, where the answer is worked solution lines
followed by "#### n". The Problem's answer is n without thousands commas; its reference is the
solution with the "<<48/2=24>>" calculator annotations removed and without the "####" line.
The text is kept as published (including any non-ASCII quotes); nothing is downloaded here.

GSM8K has no difficulty levels: `max_difficulty` is 1 and `sample` ignores its difficulty
argument, so a caller that sweeps difficulties gets the same rows at every level.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ponder.errors import UserError
from ponder.tasks.answers import extract_number, score_number
from ponder.tasks.base import Problem

NAME = "gsm8k"
_CALCULATOR = re.compile(r"<<[^<>]*>>")
_FINAL = "####"


def _row(path: Path, lineno: int, line: str) -> Problem:
    where = f"{path}: line {lineno}"
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object with 'question' and 'answer'")
    for key in ("question", "answer"):
        if not isinstance(row.get(key), str):
            raise UserError(f"{where}: missing or non-string {key!r} field")
    solution, sep, final = row["answer"].rpartition(_FINAL)
    if not sep:
        raise UserError(f"{where}: the answer has no '{_FINAL} <number>' line")
    answer = final.strip().replace(",", "")
    if not answer or extract_number(answer) is None:
        raise UserError(f"{where}: the '{_FINAL}' line holds no number: {final.strip()!r}")
    reference = "\n".join(
        line.rstrip() for line in _CALCULATOR.sub("", solution).strip().splitlines()
    )
    return Problem(
        task=NAME,
        difficulty=1,
        seed=lineno - 1,
        prompt=row["question"].strip(),
        answer=answer,
        reference=reference,
        _verifier=score_number,
    )


def load_gsm8k(path: str | Path) -> list[Problem]:
    """All problems in a GSM8K-format JSONL file, in file order (blank lines skipped)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"GSM8K file not found: {path} (expected a JSONL file with "
                        f"'question' and 'answer' on each line)")
    with path.open(encoding="utf-8") as f:
        problems = [_row(path, i, line) for i, line in enumerate(f, 1) if line.strip()]
    if not problems:
        raise UserError(f"GSM8K file {path} holds no problems")
    return problems


@dataclass(frozen=True)
class GSM8KTask:
    """GSM8K as a Task. Seed s picks row s mod N, so seeds 0..N-1 visit every row once."""

    path: str | Path
    name: str = NAME
    max_difficulty: int = 1
    problems: tuple[Problem, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "problems", tuple(load_gsm8k(self.path)))

    def sample(self, seed: int, difficulty: int = 1) -> Problem:
        # difficulty is ignored: GSM8K has no levels (see the module docstring).
        return replace(self.problems[seed % len(self.problems)], seed=seed)
