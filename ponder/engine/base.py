"""The engine interface every caller uses: training rollouts, test-time strategies, the server
and evals all generate through `Engine.generate`, never through a loop of their own.

A `Completion` keeps the hidden reasoning and the visible answer apart, each with its token
count, so billing and hiding are decided by the caller, not re-derived from text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Protocol, Sequence

from ponder.errors import UserError
from ponder.model.chat import Message

FinishReason = Literal["stop", "length", "cancelled"]  # cancelled: the caller stopped it (serving)


@dataclass(frozen=True)
class SamplingParams:
    """Per-request decoding settings.

    reasoning_budget: the most tokens the hidden reasoning may use, its closing `</think>`
        included; when reached the engine writes `</think>` itself and the model goes on to
        its answer. None = limited only by max_completion_tokens. 0 = answer without thinking.
    max_completion_tokens: reasoning plus answer (plus the end token), as in the OpenAI API.
    temperature: 0 means greedy. top_k 0 means off.
    stop: strings that end the answer (checked on the answer only, not the hidden reasoning).
    min_reasoning_tokens: budget forcing (s1): until the reasoning has this many tokens, an
        attempt to close it is replaced by `extend_with` ("Wait"), so the model keeps thinking.
    stop_in_reasoning: strings that end generation while still reasoning (e.g. "\n" to generate
        one reasoning step at a time, for step-level search); kept in the returned reasoning.
    """

    max_completion_tokens: int = 256
    reasoning_budget: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    logprobs: bool = False
    ignore_eos: bool = False  # keep going past the end token (benchmarks; as in vLLM)
    min_reasoning_tokens: int = 0
    extend_with: str = " Wait,"
    stop_in_reasoning: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.max_completion_tokens < 1:
            raise UserError(f"max_completion_tokens must be at least 1, got {self.max_completion_tokens}")
        if self.reasoning_budget is not None and self.reasoning_budget < 0:
            raise UserError(f"reasoning budget must be >= 0 (0 = no reasoning), got {self.reasoning_budget}")
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise UserError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise UserError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if self.min_reasoning_tokens < 0:
            raise UserError(f"min_reasoning_tokens must be >= 0, got {self.min_reasoning_tokens}")
        if self.min_reasoning_tokens and self.reasoning_budget is not None and self.min_reasoning_tokens >= self.reasoning_budget:
            raise UserError(f"min_reasoning_tokens ({self.min_reasoning_tokens}) must be below the reasoning budget "
                            f"({self.reasoning_budget})")
        if self.min_reasoning_tokens and not self.extend_with:
            raise UserError("extend_with must be non-empty text when min_reasoning_tokens is set")
        if self.seed is not None and not -(2**63) <= self.seed < 2**64:
            raise UserError(f"seed must be within [-2**63, 2**64), got {self.seed}")
        for name in ("stop", "stop_in_reasoning"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(s, str) and s for s in value):
                raise UserError(f"{name} must be a tuple of non-empty strings")


@dataclass(frozen=True)
class Completion:
    """One generated result. `reasoning` is hidden from users by default; its tokens are
    always counted (completion_tokens includes reasoning_tokens)."""

    reasoning: str
    answer: str
    prompt_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    finish_reason: FinishReason
    token_ids: tuple[int, ...] = field(default=(), repr=False)
    logprobs: tuple[float, ...] | None = field(default=None, repr=False)

    @property
    def completion_tokens(self) -> int:
        return self.reasoning_tokens + self.answer_tokens

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


class Engine(Protocol):
    """Anything that turns conversations into Completions."""

    name: str

    def generate(
        self, prompts: Sequence[Sequence[Message]], params: SamplingParams | Sequence[SamplingParams]
    ) -> list[Completion]: ...


def per_request(params: SamplingParams | Sequence[SamplingParams], n: int) -> list[SamplingParams]:
    """One params object for all requests, or exactly one per request."""
    if isinstance(params, SamplingParams):
        return [params] * n
    params = list(params)
    if len(params) != n:
        raise ValueError(f"got {len(params)} SamplingParams for {n} prompts")
    return params
