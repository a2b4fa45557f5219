"""Held-out pass@1 through the shared engine: the same verifier code scores evals and rewards."""

from __future__ import annotations

from collections import defaultdict

from ponder.engine.base import Engine, SamplingParams
from ponder.model.chat import Message
from ponder.tasks.base import Problem


def pass_at_1(engine: Engine, problems: list[Problem], params: SamplingParams) -> dict[str, float]:
    """{"all": mean reward, "d<k>": mean reward at difficulty k, "reasoning_tokens": mean}."""
    completions = engine.generate([[Message("user", p.prompt)] for p in problems], params)
    by_level: dict[int, list[float]] = defaultdict(list)
    scores = []
    for problem, completion in zip(problems, completions):
        score = problem.verify(completion.answer)
        scores.append(score)
        by_level[problem.difficulty].append(score)
    out = {"all": sum(scores) / max(len(scores), 1)}
    out.update({f"d{k}": sum(v) / len(v) for k, v in sorted(by_level.items())})
    out["reasoning_tokens"] = sum(c.reasoning_tokens for c in completions) / max(len(completions), 1)
    return out
