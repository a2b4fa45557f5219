"""Test-time strategies behind the API: which strategy a request runs, and running it.

A request runs the strategy it names (`strategy`, `strategy_params`: ponder fields, sent with
`extra_body`), else the one its effort level maps to (`--effort-strategies`, e.g.
`xhigh=self_consistency:k=8`), else a single sample, which streams token by token. Other
strategies draw many samples through the same batching engine on a worker thread and report
the totals of every sample, which is what the request is billed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Mapping

from ponder.engine.base import SamplingParams
from ponder.engine.continuous import Done, Failed, ReasoningEnd, TextDelta
from ponder.serve.backend import Generation
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.serve.errors import bad_request
from ponder.think.strategy import DEFAULT_STRATEGY, Strategy, ThinkResult, make_strategy


@dataclass(frozen=True)
class StrategyChoice:
    name: str
    params: Mapping[str, str | int | float]


def parse_effort_strategies(entries: tuple[str, ...]) -> dict[str, StrategyChoice]:
    """("xhigh=self_consistency:k=8,temperature=0.8", ...) -> {effort: choice}; validated now, so a
    bad setting stops the server at start-up, not at the first request."""
    out = {}
    for entry in entries:
        effort, _, spec = entry.partition("=")
        name, _, raw = spec.partition(":")
        params = {}
        for pair in filter(None, raw.split(",")):
            key, eq, value = pair.partition("=")
            if not eq:
                raise UserError(f"effort_strategies entry {entry!r}: parameter {pair!r} needs KEY=VALUE")
            params[key.strip()] = value.strip()
        if not effort or not name:
            raise UserError(f"effort_strategies entry {entry!r}: expected EFFORT=STRATEGY[:KEY=VALUE,...]")
        make_strategy(name, params)
        out[effort.strip()] = StrategyChoice(name.strip(), params)
    return out


def choose(requested: str | None, params: Mapping | None, effort: str,
           by_effort: Mapping[str, StrategyChoice]) -> Strategy | None:
    """The strategy to run, or None for a plain single sample (the streaming path)."""
    if requested is None and params:
        raise bad_request("strategy_params needs a strategy.", "strategy_params")
    if requested is None:
        choice = by_effort.get(effort)
        if choice is None:
            return None
        requested, params = choice.name, choice.params
    if requested == DEFAULT_STRATEGY and not params:
        return None
    try:
        return make_strategy(requested, params or {})
    except UserError as error:
        raise bad_request(str(error), "strategy_params" if params else "strategy") from None


async def run_strategy(strategy: Strategy, engine, messages: list[Message], params: SamplingParams) -> ThinkResult:
    try:
        return (await asyncio.to_thread(strategy.run, engine, [messages], params))[0]
    except UserError as error:
        raise bad_request(str(error), "strategy_params") from None


def start_strategy(strategy: Strategy, engine, messages: list[Message], params: SamplingParams,
                   stream_reasoning: bool, on_end=None) -> Generation:
    """Run `strategy` as a Generation whose events look like one sample's: the chosen sample's
    text, and a Completion carrying the token totals of every sample drawn (what is billed)."""
    queue: asyncio.Queue = asyncio.Queue()

    async def run() -> None:
        try:
            result = await run_strategy(strategy, engine, messages, params)
        except Exception as error:  # an APIError here is the client's (bad params): pass it on
            queue.put_nowait(Failed(error))
            return
        chosen = result.chosen
        total = replace(chosen, prompt_tokens=result.prompt_tokens // max(len(result.samples), 1),
                        reasoning_tokens=result.reasoning_tokens,
                        answer_tokens=result.completion_tokens - result.reasoning_tokens)
        if stream_reasoning and chosen.reasoning:
            queue.put_nowait(TextDelta("reasoning", chosen.reasoning))
        queue.put_nowait(ReasoningEnd(total.reasoning_tokens))
        if chosen.answer:
            queue.put_nowait(TextDelta("answer", chosen.answer))
        if on_end is not None:
            on_end(total)
        queue.put_nowait(Done(total))

    task = asyncio.get_running_loop().create_task(run())
    return Generation(queue, task.cancel)
