"""Capability suites: the bundled model's held-out task mix, GSM8K and MATH-500.

Each reports pass@1 (the first sample), maj@k when k > 1 (a majority vote over the samples'
extracted answers, ties to the answer seen first) and mean reasoning tokens per completion.
The answer checks are the ones training uses where there is one: the task families' own
verifiers for the mix, `ponder.tasks.gsm8k` and `ponder.tasks.answers` for GSM8K; MATH-500
answers are compared by mathematical equivalence (`ponder.evals.math_equiv`).

Left out: few-shot prompting (reasoning models are asked zero-shot, as in the system cards) and
MATH's per-subject breakdown (subject and level are in each sample's meta, so in the logs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ponder.engine.base import Completion
from ponder.errors import UserError
from ponder.evals.data import dataset_path
from ponder.evals import math_equiv
from ponder.evals.task import EvalTask, Metric, Sample, Score, Skipped, Solver, SuiteOptions, mean_of
from ponder.model.chat import Message
from ponder.tasks import TASKS
from ponder.tasks.answers import extract_number, numbers_equal
from ponder.tasks.base import Problem
from ponder.tasks.gsm8k import _row as gsm8k_row
from ponder.tasks.mix import held_out_set
from ponder.think.voting import answer_key

BUILTIN_SIZE = 500  # held-out problems when no --limit is given
MATH_INSTRUCTION = "\n\nPut your final answer within \\boxed{}."


@dataclass(frozen=True)
class AnswerCheck:
    """How a suite reads and judges answers: `extract` answer text -> an answer (None = no
    answer), `same` two extracted answers agree (for the vote), `correct` one matches the sample."""

    extract: Callable[[str], Any]
    same: Callable[[Any, Any], bool]
    correct: Callable[[Sample, Any], bool]


def majority(answers: Sequence[Any], same: Callable[[Any, Any], bool]) -> Any:
    """The answer most samples agree on (None abstains); ties go to the one seen first."""
    clusters: list[list[Any]] = []
    for answer in answers:
        if answer is None:
            continue
        home = next((c for c in clusters if same(c[0], answer)), None)
        if home is None:
            clusters.append([answer])
        else:
            home.append(answer)
    return max(clusters, key=len)[0] if clusters else None  # max keeps the first of equal sizes


def capability_scorer(check: AnswerCheck, k: int) -> Callable[[Sample, Sequence[Completion]], Score]:
    def score(sample: Sample, completions: Sequence[Completion]) -> Score:
        answers = [check.extract(c.answer) for c in completions]
        first = answers[0]
        values: dict[str, float | None] = {
            "pass@1": float(first is not None and check.correct(sample, first)),
            "mean_reasoning_tokens": sum(c.reasoning_tokens for c in completions) / len(completions),
        }
        explanation = f"answered {first!s}, target {sample.target!s}"
        if k > 1:
            winner = majority(answers, check.same)
            values[f"maj@{k}"] = float(winner is not None and check.correct(sample, winner))
            explanation += f"; majority of {k}: {winner!s}"
        return Score(values, explanation=explanation, answer=None if first is None else str(first))

    return score


def capability_metrics(k: int) -> tuple[Metric, ...]:
    metrics = [Metric("pass@1", mean_of("pass@1"))]
    if k > 1:
        metrics.append(Metric(f"maj@{k}", mean_of(f"maj@{k}")))
    metrics.append(Metric("mean_reasoning_tokens", mean_of("mean_reasoning_tokens"), higher_is_better=False))
    return tuple(metrics)


def dataset_file(options: SuiteOptions, suite: str, default: str, expected: str) -> Path:
    """The suite's file: `paths[suite]`, else data_dir/default; missing -> UserError naming it."""
    path = dataset_path(options.paths, options.data_dir, suite, default)
    if not path.is_file():
        raise UserError(f"{suite}: dataset file not found: {path} (expected {expected}; "
                        f"pass --data-dir DIR holding {default})")
    return path


def jsonl_rows(path: Path) -> Iterable[tuple[int, dict | None, str | None]]:
    """(line number, row, why it is unusable) for each non-blank line."""
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                yield lineno, None, "not valid JSON"
                continue
            yield (lineno, row, None) if isinstance(row, dict) else (lineno, None, "not a JSON object")


# ---- the bundled model's held-out mix -----------------------------------------------------------


def _problem(sample: Sample) -> Problem:
    """The held-out problem a sample was made from (generation is a pure function of the seed)."""
    return TASKS[sample.meta["task"]].sample(sample.meta["seed"], sample.meta["difficulty"])


def builtin(options: SuiteOptions) -> EvalTask:
    def dataset() -> Iterable[Sample]:
        for p in held_out_set(options.limit or BUILTIN_SIZE):
            sample_id = f"{p.task}-d{p.difficulty}-{p.seed}"
            yield Sample(sample_id, (Message("user", p.prompt),), target=p.answer,
                         meta={"task": p.task, "difficulty": p.difficulty, "seed": p.seed})

    def same(a: str, b: str) -> bool:
        return answer_key(a) is not None and answer_key(a) == answer_key(b)

    # The families' own verifiers (Countdown checks the expression, not a number), so this is
    # the reward training optimised.
    check = AnswerCheck(extract=lambda text: text.strip() or None, same=same,
                        correct=lambda sample, answer: _problem(sample).verify(answer) == 1.0)
    return EvalTask("builtin", dataset, capability_scorer(check, options.k), capability_metrics(options.k),
                    Solver(k=options.k), "ponder's held-out task mix (arithmetic, countdown, word problems), "
                    "the families' own verifiers")


# ---- GSM8K --------------------------------------------------------------------------------------


def gsm8k(options: SuiteOptions) -> EvalTask:
    path = dataset_file(options, "gsm8k", "gsm8k/test.jsonl",
                        "a JSONL file with 'question' and 'answer' ending in '#### <number>' on each line")

    def dataset() -> Iterable[Sample | Skipped]:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    problem = gsm8k_row(path, lineno, line)
                except UserError as error:  # the task's own row check; here a bad row is skipped
                    yield Skipped(f"{path.name}:{lineno}", str(error).split(f"line {lineno}: ", 1)[-1])
                    continue
                yield Sample(f"gsm8k-{lineno}", (Message("user", problem.prompt),), target=problem.answer,
                             meta={"line": lineno})

    check = AnswerCheck(extract=extract_number, same=lambda a, b: a == b,
                        correct=lambda sample, answer: numbers_equal(answer, sample.target))
    return EvalTask("gsm8k", dataset, capability_scorer(check, options.k), capability_metrics(options.k),
                    Solver(k=options.k, max_completion_tokens=1024), "GSM8K test split, exact numeric answer")


# ---- MATH-500 -----------------------------------------------------------------------------------


def math500(options: SuiteOptions) -> EvalTask:
    path = dataset_file(options, "math500", "math500/test.jsonl",
                        "a JSONL file with 'problem' and 'answer' (and optionally 'subject', 'level', "
                        "'unique_id') on each line")

    def dataset() -> Iterable[Sample | Skipped]:
        for lineno, row, bad in jsonl_rows(path):
            where = f"{path.name}:{lineno}"
            if bad:
                yield Skipped(where, bad)
                continue
            missing = [key for key in ("problem", "answer") if not isinstance(row.get(key), str) or not row[key].strip()]
            if missing:
                yield Skipped(where, f"missing field {missing[0]!r}")
                continue
            sample_id = row["unique_id"] if isinstance(row.get("unique_id"), str) else f"math500-{lineno}"
            yield Sample(sample_id, (Message("user", row["problem"].strip() + MATH_INSTRUCTION),),
                         target=row["answer"],
                         meta={"subject": row.get("subject"), "level": row.get("level"), "line": lineno})

    check = AnswerCheck(extract=math_equiv.extract_answer, same=math_equiv.is_equiv,
                        correct=lambda sample, answer: math_equiv.is_equiv(answer, sample.target))
    return EvalTask("math500", dataset, capability_scorer(check, options.k), capability_metrics(options.k),
                    Solver(k=options.k, max_completion_tokens=2048),
                    "MATH-500 (PRM800K test split), answers by mathematical equivalence")
