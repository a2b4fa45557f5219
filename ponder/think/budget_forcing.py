"""Budget forcing (s1, Muennighoff et al., 2025): make the model think at least `min_tokens`.

Until the reasoning has that many tokens, the engine replaces an attempt to close it with
" Wait," (`SamplingParams.extend_with`), so the model re-checks instead of stopping early;
`max_tokens` caps the reasoning from above (the reasoning budget). One sample, the caller's
decoding otherwise. The forcing itself happens in the engine; this only sets the fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from ponder.engine.base import Engine, SamplingParams
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.think.base import ThinkResult, check_bounds, param, think_result


@dataclass(frozen=True)
class BudgetForcing:
    name: ClassVar[str] = "budget_forcing"
    min_tokens: int | None = param(None, "reasoning tokens to spend at least (required)", low=1, high=1 << 20)
    max_tokens: int | None = param(None, "reasoning budget (default: the one --effort/--budget set)",
                                   low=2, high=1 << 20)

    def __post_init__(self) -> None:
        check_bounds(self)
        if self.min_tokens is None:
            raise UserError("budget_forcing needs min_tokens, the reasoning tokens to spend at least "
                            "(e.g. --param min_tokens=128)")
        if self.max_tokens is not None and self.min_tokens >= self.max_tokens:
            raise UserError(f"budget_forcing: min_tokens ({self.min_tokens}) must be below max_tokens "
                            f"({self.max_tokens})")

    @property
    def max_samples(self) -> int:
        return 1

    def forced(self, params: SamplingParams) -> SamplingParams:
        budget = self.max_tokens if self.max_tokens is not None else params.reasoning_budget
        if budget is not None and self.min_tokens >= budget:
            raise UserError(f"budget_forcing: min_tokens ({self.min_tokens}) must be below the reasoning budget "
                            f"({budget}, set by effort/budget); raise it with max_tokens=N")
        return dataclasses.replace(params, min_reasoning_tokens=self.min_tokens, reasoning_budget=budget)

    def run(self, engine: Engine, prompts: list[list[Message]], params: SamplingParams) -> list[ThinkResult]:
        completions = engine.generate(prompts, self.forced(params)) if prompts else []
        return [think_result(c, [c], min_tokens=self.min_tokens) for c in completions]
