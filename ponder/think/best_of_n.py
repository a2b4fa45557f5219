"""Best-of-n: n samples per prompt, a scorer rates each, the highest score wins.

Scorers come from `ponder.think.scorers` (a name or a `module:function` path). Ties go to the
earlier sample, so a constant scorer reduces to the first sample.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Sequence

from ponder.engine.base import Completion, Engine, SamplingParams
from ponder.model.chat import Message
from ponder.think.base import ThinkResult, check_bounds, draw, param, sample_temperature, think_result
from ponder.think.scorers import Scorer, needs_logprobs, resolve_scorer

SCORER_HELP = "how samples are rated: confidence, countdown, or module:function"


def scored_samples(engine: Engine, prompts: list[list[Message]], params: SamplingParams, n: int,
                   scorer: Scorer, temperature: float | None) -> list[tuple[list[Completion], list[float]]]:
    """n samples per prompt (one engine call) and the scorer's rating of each."""
    if needs_logprobs(scorer) and not params.logprobs:
        params = dataclasses.replace(params, logprobs=True)
    drawn = draw(engine, prompts, params, [(0, n)] * len(prompts), sample_temperature(params, temperature))
    return [(samples, [float(scorer(prompt, s)) for s in samples]) for prompt, samples in zip(prompts, drawn)]


def best_index(scores: Sequence[float]) -> int:
    """The index of the highest score, the earliest among equals."""
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


@dataclass(frozen=True)
class BestOfN:
    name: ClassVar[str] = "best_of_n"
    n: int = param(8, "samples per prompt", low=1, high=256)
    scorer: str = param("confidence", SCORER_HELP, api="scorer")
    temperature: float | None = param(None, "sampling temperature (default: the caller's, or 0.8 when it is greedy)",
                                      low=0, high=5, low_open=True)

    def __post_init__(self) -> None:
        check_bounds(self)
        resolve_scorer(self.scorer)  # a bad name fails when the strategy is made, not mid-run

    @property
    def max_samples(self) -> int:
        return self.n

    def run(self, engine: Engine, prompts: list[list[Message]], params: SamplingParams) -> list[ThinkResult]:
        out = []
        for samples, scores in scored_samples(engine, prompts, params, self.n, resolve_scorer(self.scorer),
                                              self.temperature):
            best = best_index(scores)
            out.append(think_result(samples[best], samples, scores=scores, chosen_index=best, scorer=self.scorer))
        return out
