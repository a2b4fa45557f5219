"""What a test-time strategy is and returns, and the sampling plumbing they all share.

A strategy turns prompts into one `ThinkResult` each: the answer it settled on, the completion
that carries it, every sample it drew and the tokens all of them cost (a server bills every
sample, not only the chosen one). Strategies are frozen dataclasses whose fields are their
parameters; `ponder.think.strategy` builds them by name from user text.

Left out: the registry (strategy.py) and answer voting (voting.py).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence

from ponder.engine.base import Completion, Engine, SamplingParams
from ponder.errors import UserError
from ponder.model.chat import Message

# Sampling temperature for strategies that need diverse samples when the caller asked for
# greedy decoding: k greedy samples would all be the same sample.
DEFAULT_SAMPLE_TEMPERATURE = 0.8


@dataclass(frozen=True)
class ThinkResult:
    """One prompt's outcome. Token counts are TOTALS over all samples (what a server bills)."""

    answer: str
    chosen: Completion
    samples: tuple[Completion, ...]
    prompt_tokens: int
    reasoning_tokens: int
    completion_tokens: int
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. vote counts, k used; JSON-safe

    @property
    def finish_reason(self) -> str:
        return self.chosen.finish_reason

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
        }


def think_result(chosen: Completion, samples: Sequence[Completion], **meta: Any) -> ThinkResult:
    """A result whose totals are summed over `samples` (which include `chosen`)."""
    samples = tuple(samples)
    return ThinkResult(
        answer=chosen.answer,
        chosen=chosen,
        samples=samples,
        prompt_tokens=sum(s.prompt_tokens for s in samples),
        reasoning_tokens=sum(s.reasoning_tokens for s in samples),
        completion_tokens=sum(s.completion_tokens for s in samples),
        meta=meta,
    )


class Strategy(Protocol):
    """Anything that answers prompts by spending test-time compute through an engine."""

    name: str

    @property
    def max_samples(self) -> int:
        """The most engine samples one prompt may draw: what a server caps and reserves for."""
        ...

    def run(self, engine: Engine, prompts: list[list[Message]], params: SamplingParams) -> list[ThinkResult]: ...


# Who may set a parameter over the API (`ponder serve`): anyone ("open"), anyone but only to a
# name on the server's scorer list ("scorer": a scorer may also be a module:function path, which
# imports code), or only the operator ("operator": a filesystem path the server would read).
ApiAccess = Literal["open", "scorer", "operator"]


def param(default: Any, help: str, low: float | None = None, high: float | None = None,
          low_open: bool = False, api: ApiAccess = "open") -> Any:
    """A strategy parameter: a dataclass field whose metadata the registry validates against.

    low/high bound the value (inclusive, or exclusive at `low` when low_open); None = unbounded.
    """
    return field(default=default, metadata={"help": help, "low": low, "high": high, "low_open": low_open,
                                            "api": api})


def bounds_text(meta: Any) -> str:
    """ "[1, 256]" or "(0, 1]" for a param's metadata; "" when it is unbounded."""
    low, high = meta.get("low"), meta.get("high")
    if low is None and high is None:
        return ""
    left = "(" if meta.get("low_open") else "["
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}]"


def check_bounds(strategy: Any) -> None:
    """Raise a UserError for a numeric parameter outside its declared bounds (None = unset).

    Strategies call this in __post_init__, so one built directly is checked like one built
    from `--param` text.
    """
    for f in dataclasses.fields(strategy):
        value, low, high = getattr(strategy, f.name), f.metadata.get("low"), f.metadata.get("high")
        if value is None or isinstance(value, str):
            continue
        too_low = low is not None and (value <= low if f.metadata.get("low_open") else value < low)
        if isinstance(value, bool) or not math.isfinite(value) or too_low or (high is not None and value > high):
            raise UserError(f"strategy {strategy.name!r}, parameter {f.name!r}: {value!r} is out of range; "
                            f"valid range {bounds_text(f.metadata)}")


def sample_temperature(params: SamplingParams, override: float | None) -> float:
    """The temperature for diverse samples: the override, else the caller's, else the default."""
    if override is not None:
        return override
    return params.temperature if params.temperature > 0 else DEFAULT_SAMPLE_TEMPERATURE


def draw(engine: Engine, prompts: Sequence[Sequence[Message]], params: SamplingParams,
         plan: Sequence[tuple[int, int]], temperature: float) -> list[list[Completion]]:
    """Samples `first .. first+count-1` of each prompt, all in ONE engine call.

    `plan[j] = (first, count)` for prompt j. Sample i gets seed `base + i`, so samples differ,
    a rerun gives the same ones, and a later round that continues at `first` draws new ones.
    No seed means base 0: a strategy's answer is reproducible unless the caller asks otherwise.
    """
    if len(plan) != len(prompts):
        raise ValueError(f"got a plan for {len(plan)} prompts, but {len(prompts)} prompts")
    base = params.seed if params.seed is not None else 0
    flat_prompts: list[Sequence[Message]] = []
    flat_params: list[SamplingParams] = []
    for prompt, (first, count) in zip(prompts, plan):
        for i in range(first, first + count):
            flat_prompts.append(prompt)
            flat_params.append(dataclasses.replace(params, temperature=temperature, seed=base + i))
    completions = engine.generate(flat_prompts, flat_params) if flat_prompts else []
    out, at = [], 0
    for _, count in plan:
        out.append(completions[at : at + count])
        at += count
    return out

