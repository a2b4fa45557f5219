"""Self-consistency (Wang et al., 2022): k samples per prompt, the most common answer wins.

Answers vote by their normalised form (see `ponder.think.voting`); a tie goes to the answer
sampled first. The chosen completion is the first sample that gave the winning answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ponder.engine.base import Engine, SamplingParams
from ponder.model.chat import Message
from ponder.think.base import ThinkResult, check_bounds, draw, param, sample_temperature, think_result
from ponder.think.voting import majority_vote


@dataclass(frozen=True)
class SelfConsistency:
    name: ClassVar[str] = "self_consistency"
    k: int = param(8, "samples per prompt", low=1, high=256)
    temperature: float | None = param(None, "sampling temperature (default: the caller's, or 0.8 when it is greedy)",
                                      low=0, high=5, low_open=True)

    def __post_init__(self) -> None:
        check_bounds(self)

    @property
    def max_samples(self) -> int:
        return self.k

    def run(self, engine: Engine, prompts: list[list[Message]], params: SamplingParams) -> list[ThinkResult]:
        temperature = sample_temperature(params, self.temperature)
        drawn = draw(engine, prompts, params, [(0, self.k)] * len(prompts), temperature)
        return [vote_result(samples) for samples in drawn]


def vote_result(samples) -> ThinkResult:
    """The majority-vote result over `samples` (also used on prefixes by benchmarks)."""
    winner, votes = majority_vote(samples)
    return think_result(samples[winner], samples, votes=votes, k=len(samples))
