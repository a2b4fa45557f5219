"""Adaptive self-consistency: spend samples where the model is unsure, not where it is sure or lost.

Every prompt starts with `initial` samples. A prompt is settled when its leading answer holds an
`agreement` share of its samples (easy: more samples would not change the vote), or when no
answer holds even a `give_up` share (the samples scatter: the prompt is beyond the model, and
more samples rarely find a majority that is right); the rest get `step` more samples, until
`max_k`. Early agreement is the difficulty estimate, so the middle band, where votes are close
and more samples can move them, gets the budget (cf. Aggarwal et al., 2023, "Let's Sample Step by
Step"; Snell et al., 2024, on spending test-time compute by difficulty). Each round draws the new
samples of all still-open prompts in ONE engine call, and sample i keeps seed `base + i`, so the
samples are exactly the first k that self_consistency would draw.

Defaults were tuned on held-out problems 200-399 (bench/think_strategies.py reports on 0-199):
without `give_up` the scattered prompts, about a third of the bundled model's held-out mix and
its longest traces, always run to max_k and alone cost ~55% of majority-vote@16's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ponder.engine.base import Completion, Engine, SamplingParams
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.think.base import ThinkResult, check_bounds, draw, param, sample_temperature, think_result
from ponder.think.voting import leading_share, majority_vote


@dataclass(frozen=True)
class Adaptive:
    name: ClassVar[str] = "adaptive"
    max_k: int = param(16, "most samples per prompt", low=1, high=256)
    initial: int = param(4, "samples every prompt gets first", low=1, high=256)
    step: int = param(4, "samples added per round to an unsettled prompt", low=1, high=256)
    agreement: float = param(0.75, "leading answer's share of samples that settles a prompt", low=0, high=1,
                             low_open=True)
    give_up: float = param(0.3, "stop when the leading answer's share is below this (scattered answers); "
                           "0 = never", low=0, high=1)
    temperature: float | None = param(None, "sampling temperature (default: the caller's, or 0.8 when it is greedy)",
                                      low=0, high=5, low_open=True)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.initial > self.max_k:
            raise UserError(f"adaptive: initial ({self.initial}) must be at most max_k ({self.max_k})")
        if self.give_up >= self.agreement:
            raise UserError(f"adaptive: give_up ({self.give_up}) must be below agreement ({self.agreement}), "
                            "or every prompt would stop after its first samples")

    @property
    def max_samples(self) -> int:
        return self.max_k

    def stop_reason(self, samples: list[Completion]) -> str | None:
        """Why a prompt with these samples is settled ("agreed", "gave_up", "max_k"), or None."""
        share = leading_share(samples)
        if share >= self.agreement:
            return "agreed"
        if share < self.give_up:
            return "gave_up"
        return "max_k" if len(samples) >= self.max_k else None

    def settled(self, samples: list[Completion]) -> bool:
        return self.stop_reason(samples) is not None

    def run(self, engine: Engine, prompts: list[list[Message]], params: SamplingParams) -> list[ThinkResult]:
        temperature = sample_temperature(params, self.temperature)
        pool: list[list[Completion]] = [[] for _ in prompts]
        rounds = [0] * len(prompts)
        first_share: list[float] = [0.0] * len(prompts)
        open_ = list(range(len(prompts)))
        while open_:
            plan = [(len(pool[j]), min(self.step if pool[j] else self.initial, self.max_k - len(pool[j])))
                    for j in open_]
            for j, new in zip(open_, draw(engine, [prompts[j] for j in open_], params, plan, temperature)):
                if not pool[j]:
                    first_share[j] = leading_share(new)
                pool[j].extend(new)
                rounds[j] += 1
            open_ = [j for j in open_ if not self.settled(pool[j])]
        out = []
        for j, samples in enumerate(pool):
            winner, votes = majority_vote(samples)
            out.append(think_result(samples[winner], samples, votes=votes, k=len(samples), rounds=rounds[j],
                                    stopped=self.stop_reason(samples), initial_agreement=round(first_share[j], 4),
                                    agreement=round(leading_share(samples), 4)))
        return out
