"""Weighted best-of-n: n samples, each votes for its answer with its score; the answer with the
largest total wins (Li et al., 2023; Uesato et al., 2022 call it weighted majority voting).

Answers are grouped by their normalised form (`ponder.think.voting`), so the same number
written two ways pools its weight. Ties go to the answer seen first; the chosen completion is
the best-scored sample inside the winning group. Samples with no answer carry no weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Sequence

from ponder.engine.base import Completion, Engine, SamplingParams
from ponder.model.chat import Message
from ponder.think.base import ThinkResult, check_bounds, param, think_result
from ponder.think.best_of_n import SCORER_HELP, best_index, scored_samples
from ponder.think.scorers import resolve_scorer
from ponder.think.voting import tally


def weighted_vote(samples: Sequence[Completion], scores: Sequence[float]) -> tuple[int, dict[str, float]]:
    """(index of the chosen sample, total score per answer key)."""
    groups = tally(samples)
    weights = {key: sum(scores[i] for i in members) for key, members in groups.items()}
    if not groups:
        return best_index(scores), weights
    winner = max(groups, key=lambda key: weights[key])  # first of equal maxima = seen first
    members = groups[winner]
    return members[best_index([scores[i] for i in members])], weights


@dataclass(frozen=True)
class WeightedBestOfN:
    name: ClassVar[str] = "weighted_best_of_n"
    n: int = param(8, "samples per prompt", low=1, high=256)
    scorer: str = param("confidence", SCORER_HELP, api="scorer")
    temperature: float | None = param(None, "sampling temperature (default: the caller's, or 0.8 when it is greedy)",
                                      low=0, high=5, low_open=True)

    def __post_init__(self) -> None:
        check_bounds(self)
        resolve_scorer(self.scorer)

    @property
    def max_samples(self) -> int:
        return self.n

    def run(self, engine: Engine, prompts: list[list[Message]], params: SamplingParams) -> list[ThinkResult]:
        out = []
        for samples, scores in scored_samples(engine, prompts, params, self.n, resolve_scorer(self.scorer),
                                              self.temperature):
            chosen, weights = weighted_vote(samples, scores)
            out.append(think_result(samples[chosen], samples, weights=weights, scores=scores, scorer=self.scorer))
        return out
