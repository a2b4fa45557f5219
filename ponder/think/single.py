"""One sample, decoded with the caller's settings: what `ponder ask` does with no strategy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ponder.engine.base import Engine, SamplingParams
from ponder.model.chat import Message
from ponder.think.base import ThinkResult, think_result


@dataclass(frozen=True)
class Single:
    name: ClassVar[str] = "single"
    max_samples: ClassVar[int] = 1

    def run(self, engine: Engine, prompts: list[list[Message]], params: SamplingParams) -> list[ThinkResult]:
        # The caller's params unchanged (greedy stays greedy, seed None stays None).
        completions = engine.generate(prompts, params) if prompts else []
        return [think_result(c, [c]) for c in completions]
