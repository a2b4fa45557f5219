"""Math-Shepherd step labels: a step is as good as the completions that start from it.

For each training problem the policy writes T traces. Every step of a trace but the last (a
reasoning line, see `ponder.prm.model.step_ends`) gets K more completions from the prefix that
ends with it; its soft label is the share of them whose final answer verifies, its hard label 1
when any does. The last step runs through the answer, so nothing is left to complete: its label
is the trace's own verdict. No human and no reference trace is needed, only the verifier
(though a task's reference solution can be labelled like a policy trace, see `label_problems`).

Identical prefixes are completed once, and all prefixes of all problems go through the engine
in a few large `generate_ids` calls (each request with its own seed), never one by one.
Left out: training on the labels (train.py).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ponder.engine.base import Completion, SamplingParams
from ponder.errors import UserError
from ponder.model.chat import Message, encode_completion
from ponder.prm.config import parse_level  # noqa: F401 (re-exported: callers import it from here)
from ponder.prm.model import separator_ids, step_ends
from ponder.tasks import TASKS
from ponder.tasks.base import Problem, rng_for
from ponder.tasks.mix import HELD_OUT_BASE

REQUESTS_PER_CALL = 1024  # a few engine calls rather than one, so progress can be shown
COMPLETION_SEED_OFFSET = 5000  # completions' seeds never repeat a trace's seed


@dataclass(frozen=True)
class LabelledTrace:
    """One trace with a label per step. `ends` index into `tokens` (prompt + completion)."""

    tokens: tuple[int, ...]
    prompt_len: int
    ends: tuple[int, ...]
    soft: tuple[float, ...]  # share of completions from the step that verify
    hard: tuple[float, ...]  # 1.0 when any of them does
    task: str
    difficulty: int
    seed: int
    reference: bool = False  # the task's own solution rather than a policy sample

    @property
    def correct(self) -> bool:
        return self.hard[-1] == 1.0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, line: str) -> "LabelledTrace":
        raw = json.loads(line)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def training_problems(n: int, seed: int, levels: Sequence[str]) -> list[Problem]:
    """n problems from consecutive TRAINING seeds (below HELD_OUT_BASE), drawn from the
    "family:difficulty" `levels` in turn."""
    if not levels:
        raise UserError("the PRM needs at least one family:difficulty level to label problems at")
    pairs = [parse_level(text) for text in levels]
    start = rng_for("prm-problems", seed).randrange(HELD_OUT_BASE - n)
    problems = []
    for i in range(n):
        family, level = pairs[i % len(pairs)]
        problems.append(TASKS[family].sample(start + i, level))
    return problems


def solved(problem: Problem, completion: Completion) -> bool:
    return problem.verify(completion.answer) >= 1.0


def prompt_of(problem: Problem) -> list[Message]:
    return [Message("user", problem.prompt)]


def sample_traces(engine, problems: Sequence[Problem], traces: int, temperature: float,
                  max_tokens: int, seed: int) -> list[list[Completion]]:
    """`traces` samples per problem in one engine call; sample i of each problem has seed base + i."""
    base = seed * 2 * COMPLETION_SEED_OFFSET
    params = [SamplingParams(max_completion_tokens=max_tokens, temperature=temperature, seed=base + i)
              for _ in problems for i in range(traces)]
    flat = engine.generate([prompt_of(p) for p in problems for _ in range(traces)], params) if problems else []
    return [flat[j * traces : (j + 1) * traces] for j in range(len(problems))]


def prefixes(prompt: Sequence[int], completion: Sequence[int], ends: Sequence[int]) -> list[tuple[int, ...]]:
    """The prompt plus the completion up to and including each step end but the last."""
    return [tuple(prompt) + tuple(completion[: e + 1]) for e in ends[:-1]]


def complete_prefixes(engine, jobs: dict[tuple[int, ...], tuple[Problem, int]], k: int, temperature: float,
                      max_tokens: int, seed: int,
                      progress: Callable[[int], None] | None = None) -> dict[tuple[int, ...], list[bool]]:
    """For each unique prefix (-> its problem and how many completion tokens it already holds),
    whether each of k completions from it verifies. Few engine calls, a seed per completion."""
    base = seed * 2 * COMPLETION_SEED_OFFSET + COMPLETION_SEED_OFFSET
    requests = [(prefix, j) for prefix in jobs for j in range(k)]
    outcomes: dict[tuple[int, ...], list[bool]] = {prefix: [] for prefix in jobs}
    for lo in range(0, len(requests), REQUESTS_PER_CALL):
        chunk = requests[lo : lo + REQUESTS_PER_CALL]
        params = [SamplingParams(max_completion_tokens=max(1, max_tokens - jobs[prefix][1]),
                                 temperature=temperature, seed=base + j) for prefix, j in chunk]
        for (prefix, _), c in zip(chunk, engine.generate_ids([list(p) for p, _ in chunk], params)):
            outcomes[prefix].append(solved(jobs[prefix][0], c))
        if progress is not None:
            progress(len(chunk))
    return outcomes


def assemble(problem: Problem, prompt: Sequence[int], completion: Sequence[int], ends: Sequence[int],
             step_outcomes: Sequence[Sequence[bool]], final_correct: bool, reference: bool = False) -> LabelledTrace:
    """A trace's labels from the outcomes of its steps' completions (every step but the last)."""
    soft = [sum(o) / len(o) for o in step_outcomes] + [float(final_correct)]
    hard = [float(any(o)) for o in step_outcomes] + [float(final_correct)]
    return LabelledTrace(tuple(prompt) + tuple(completion), len(prompt), tuple(len(prompt) + e for e in ends),
                         tuple(soft), tuple(hard), problem.task, problem.difficulty, problem.seed, reference)


def label_problems(engine, problems: Sequence[Problem], traces: int, completions: int, temperature: float,
                   max_tokens: int, seed: int, trace_temperature: float | None = None,
                   rollouts_on_correct: bool = True, references: bool = False,
                   progress: Callable[[str, int, int], None] | None = None) -> list[LabelledTrace]:
    """Sample `traces` per problem, then label every step by `completions` rollouts from it.

    `trace_temperature` (default: `temperature`) may be hotter than the completions' so the
    traces hold more mistakes to learn from, while the labels still measure the policy as it
    samples. `rollouts_on_correct` False skips the rollouts of traces whose answer verified:
    the trace itself is a correct completion from each of its steps, so their hard labels are
    1 without rollouts, and their soft labels are taken as 1 too (an optimistic estimate from
    one completion); the rollouts then go where the mistakes are. `references` adds each
    problem's reference solution as one more trace, labelled by rollouts like the others: it
    shows the PRM right steps the policy seldom writes (a Countdown "yes" at a hard level).
    `progress(phase, done, total)` is called as work finishes ("traces" or "steps").
    """
    tok = engine.tok
    hot = temperature if trace_temperature is None else trace_temperature
    sampled = sample_traces(engine, problems, traces, hot, max_tokens, seed)
    if progress is not None:
        progress("traces", len(problems) * traces, len(problems) * traces)
    step_ids, close = separator_ids(tok, "\n"), tok.special.think_close
    items = []  # (problem, prompt ids, completion ids, step ends, correct, is reference)
    jobs: dict[tuple[int, ...], tuple[Problem, int]] = {}
    for problem, samples in zip(problems, sampled):
        prompt = engine.encode(prompt_of(problem))
        candidates = [(list(c.token_ids), solved(problem, c), False) for c in samples]
        if references:
            ids = encode_completion(tok, problem.reference, problem.answer)
            candidates.append((ids, problem.verify(problem.answer) >= 1.0, True))
        for ids, correct, is_reference in candidates:
            ends = step_ends(ids, step_ids, close, finished=True)
            if not ends:
                continue  # nothing generated: no step to label
            items.append((problem, prompt, ids, ends, correct, is_reference))
            if correct and not rollouts_on_correct:
                continue
            for prefix in prefixes(prompt, ids, ends):
                jobs.setdefault(prefix, (problem, len(prefix) - len(prompt)))
    total, done = len(jobs) * completions, 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress("steps", done, total)

    outcomes = complete_prefixes(engine, jobs, completions, temperature, max_tokens, seed, tick)
    return [assemble(problem, prompt, ids, ends, [outcomes.get(p, [True]) for p in prefixes(prompt, ids, ends)],
                     correct, is_reference)
            for problem, prompt, ids, ends, correct, is_reference in items]


def save_labels(traces: Sequence[LabelledTrace], path: Path) -> None:
    path.write_text("".join(t.to_json() + "\n" for t in traces))


def load_labels(path: Path | str) -> list[LabelledTrace]:
    path = Path(path)
    if path.is_dir():
        path = path / "labels.jsonl"
    try:
        return [LabelledTrace.from_json(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise UserError(f"no step labels at {path}; point labels_from at an earlier PRM run directory") from None
    except (json.JSONDecodeError, TypeError) as exc:
        raise UserError(f"{path} is not a PRM labels file: {exc}") from None
