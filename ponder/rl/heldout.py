"""Held-out pass@1 through the shared engine: the same verifier code scores evals and rewards."""

from __future__ import annotations

from collections import defaultdict

from ponder.engine.base import Engine, SamplingParams
from ponder.model.chat import Message
from ponder.tasks.base import Problem


def pass_at_1(engine: Engine, problems: list[Problem],
              params: SamplingParams | list[SamplingParams]) -> dict[str, float]:
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


def sampled_pass_at_1(engine: Engine, problems: list[Problem], samples: int, temperature: float,
                      max_tokens: int) -> dict[str, float]:
    """pass@1 of samples drawn at `temperature`, `samples` per problem (as `pass_at_1` reports it).
    Sample j of problem i has seed i * samples + j, the same at every evaluation, so two
    evaluations of a run differ by the weights, not by the draws."""
    repeated = [p for p in problems for _ in range(samples)]
    params = [SamplingParams(max_completion_tokens=max_tokens, temperature=temperature, seed=i)
              for i in range(len(repeated))]
    return pass_at_1(engine, repeated, params)
