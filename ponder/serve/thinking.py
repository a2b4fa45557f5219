"""Test-time strategies behind the API: which strategy a request runs, what a client may ask
for, and running it so that it can be cancelled and billed.

A request runs the strategy it names (`strategy`, `strategy_params`: ponder fields, sent with
`extra_body`), else the one its effort level maps to (`--effort-strategies`, e.g.
`xhigh=self_consistency:k=8`), else a single sample, which streams token by token. Other
strategies draw many samples through the same batching engine on a worker thread and report
the totals of every sample, which is what the request is billed.

What a client sends is data, never code: it names strategies and scorers from the operator's
lists (`--api-strategies`, `--api-scorers`), never a `module:function` path or a directory the
server would read, and a request draws at most `--max-samples` samples (n x the strategy's).
The operator's own `--effort-strategies` are trusted as written, but obey the sample cap too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from typing import Mapping

from ponder.engine.base import Completion, SamplingParams
from ponder.engine.continuous import ContinuousEngine, Done, Failed, ReasoningEnd, TextDelta
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.serve.backend import Generation, Outcome
from ponder.serve.errors import bad_request
from ponder.think.base import ThinkResult
from ponder.think.scorers import register_scorer, resolve_scorer
from ponder.think.strategy import DEFAULT_STRATEGY, STRATEGIES, Strategy, make_strategy


@dataclass(frozen=True)
class StrategyChoice:
    name: str
    params: Mapping[str, str | int | float]


@dataclass(frozen=True)
class StrategyPolicy:
    """What a request may ask for, set by the operator."""

    strategies: tuple[str, ...]
    scorers: tuple[str, ...]  # names only; an operator's module:function is registered under its name
    max_samples: int


def _split_pairs(entry: str, raw: str) -> dict[str, str]:
    params = {}
    for pair in filter(None, raw.split(",")):
        key, eq, value = pair.partition("=")
        if not eq:
            raise UserError(f"effort_strategies entry {entry!r}: parameter {pair!r} needs KEY=VALUE")
        params[key.strip()] = value.strip()
    return params


def parse_effort_strategies(entries: tuple[str, ...]) -> dict[str, StrategyChoice]:
    """("xhigh=self_consistency:k=8,temperature=0.8", ...) -> {effort: choice}; validated now, so a
    bad setting stops the server at start-up, not at the first request."""
    out = {}
    for entry in entries:
        effort, _, spec = entry.partition("=")
        name, _, raw = spec.partition(":")
        params = _split_pairs(entry, raw)
        if not effort or not name:
            raise UserError(f"effort_strategies entry {entry!r}: expected EFFORT=STRATEGY[:KEY=VALUE,...]")
        make_strategy(name, params)
        out[effort.strip()] = StrategyChoice(name.strip(), params)
    return out


def make_policy(strategies: tuple[str, ...], scorers: tuple[str, ...], max_samples: int) -> StrategyPolicy:
    """The policy from the operator's settings, checked at start-up. A scorer entry is a name
    (built in, or registered by the operator's code) or NAME=module:function, which imports the
    operator's function now and offers it to clients under NAME only."""
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise UserError(f"api_strategies: unknown {', '.join(map(repr, unknown))}; valid: {', '.join(STRATEGIES)}")
    if "beam" in strategies and not _operator_prm_found():
        # Offered only with the operator's PRM in place: otherwise every beam request would fail
        # with an error that names where the server looked for it.
        strategies = tuple(s for s in strategies if s != "beam")
    names = []
    for entry in scorers:
        name, eq, path = (part.strip() for part in entry.partition("="))
        if eq:
            if not name.isidentifier() or ":" not in path:
                raise UserError(f"api_scorers entry {entry!r}: expected NAME or NAME=module:function")
            register_scorer(name, resolve_scorer(path))
        elif not name.isidentifier():
            raise UserError(f"api_scorers entry {entry!r}: a scorer offered to clients needs a plain name; "
                            f"offer a function as NAME=module:function")
        else:
            resolve_scorer(name)  # a name that resolves to nothing stops the server now
        names.append(name)
    return StrategyPolicy(tuple(strategies), tuple(names), max_samples)


def _operator_prm_found() -> bool:
    from ponder.prm.scorer import resolve_prm_dir

    try:
        resolve_prm_dir(None)
    except UserError:
        return False
    return True


def _check_requested(name: str, params: Mapping, policy: StrategyPolicy) -> None:
    """Refuse what a client may not choose, before anything is imported or built."""
    if name not in policy.strategies:
        raise bad_request(f"strategy {name!r} is not offered by this server; offered: "
                          f"{', '.join(policy.strategies) or 'none'}.", "strategy", "unsupported_value")
    factory = STRATEGIES[name]
    access = {f.name: f.metadata.get("api", "open") for f in dataclasses.fields(factory)}  # type: ignore[arg-type]
    for key, value in params.items():
        if access.get(key) == "operator":
            raise bad_request(f"strategy_params.{key} can only be set by the server's operator, not in a request.",
                              "strategy_params", "unsupported_parameter")
        if access.get(key) == "scorer" and value not in policy.scorers:
            raise bad_request(f"strategy_params.{key}: scorer {str(value)[:64]!r} is not offered by this server; "
                              f"offered: {', '.join(policy.scorers) or 'none'}.", "strategy_params", "unsupported_value")


def choose(requested: str | None, params: Mapping | None, effort: str, by_effort: Mapping[str, StrategyChoice],
           policy: StrategyPolicy) -> Strategy | None:
    """The strategy to run, or None for a plain single sample (the streaming path)."""
    if requested is None and params:
        raise bad_request("strategy_params needs a strategy.", "strategy_params")
    if requested is None:
        choice = by_effort.get(effort)
        if choice is None:
            return None
        requested, params = choice.name, choice.params
    else:
        _check_requested(requested, params or {}, policy)
    if requested == DEFAULT_STRATEGY and not params:
        return None
    try:
        return make_strategy(requested, params or {})
    except UserError as error:
        raise bad_request(str(error), "strategy_params" if params else "strategy") from None


def check_samples(strategy: Strategy | None, n: int, policy: StrategyPolicy) -> int:
    """Engine samples the request may draw in all (n x the strategy's); a 400 over the cap."""
    total = n * (1 if strategy is None else strategy.max_samples)
    if total > policy.max_samples:
        what = f"n={n} x {strategy.name} with up to {strategy.max_samples} samples" if strategy else f"n={n}"
        raise bad_request(f"This request may draw {total} samples ({what}); this server allows at most "
                          f"{policy.max_samples} per request.", "strategy_params" if strategy else "n",
                          "too_many_samples")
    return total


class StrategyCancelled(Exception):
    """The request was cancelled (its client went away) while its strategy was running."""


class MeteredEngine:
    """The engine as one strategy run sees it: it counts every completion drawn (what the request
    is billed, even if it is cancelled midway), and `cancel()` stops every sample in flight at its
    next decode step and refuses new rounds. Everything else is the engine's own."""

    def __init__(self, engine):
        self._engine = engine
        self._lock = threading.Lock()
        self._handles: list = []
        self._cancelled = False
        self.spent: list[Completion] = []

    def __getattr__(self, name: str):
        return getattr(self._engine, name)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            handles = list(self._handles)
        for handle in handles:
            handle.cancel()

    def _track(self, handle) -> None:
        with self._lock:
            self._handles.append(handle)
            cancelled = self._cancelled
        if cancelled:  # submitted after cancel() had looked at the handles: stop it too
            handle.cancel()

    def _drawn(self, completions: list[Completion]) -> list[Completion]:
        with self._lock:
            self.spent.extend(completions)
            self._handles.clear()
            if self._cancelled:
                raise StrategyCancelled()
        return completions

    def _check_open(self) -> None:
        if self._cancelled:
            raise StrategyCancelled()

    def generate(self, prompts, params) -> list[Completion]:
        self._check_open()
        if isinstance(self._engine, ContinuousEngine):
            return self.generate_ids([self._engine.encode(p) for p in prompts], params)
        return self._drawn(self._engine.generate(prompts, params))

    def generate_ids(self, prompt_ids, params) -> list[Completion]:
        self._check_open()
        if isinstance(self._engine, ContinuousEngine):
            return self._drawn(self._engine.generate_ids(prompt_ids, params, on_submit=self._track))
        return self._drawn(self._engine.generate_ids(prompt_ids, params))


def spent_completion(samples: list[Completion], prompt_tokens: int) -> Completion:
    """One Completion carrying the totals of every sample a cancelled run drew."""
    reasoning = sum(c.reasoning_tokens for c in samples)
    answer = sum(c.answer_tokens for c in samples)
    return Completion("", "", prompt_tokens, reasoning, answer, "cancelled")


def _billed(result: ThinkResult) -> Completion:
    """The chosen sample's text with the token totals of every sample drawn."""
    return replace(result.chosen, prompt_tokens=result.prompt_tokens // max(len(result.samples), 1),
                   reasoning_tokens=result.reasoning_tokens,
                   answer_tokens=result.completion_tokens - result.reasoning_tokens)


def start_strategy(strategy: Strategy, engine, messages: list[Message], params: SamplingParams,
                   stream_reasoning: bool, outcome: Outcome, prompt_tokens: int, pool: Executor) -> Generation:
    """Run `strategy` as a Generation whose events look like one sample's: the chosen sample's
    text, and a Completion carrying the token totals of every sample drawn (what is billed).
    Cancelling it stops every sample at the next decode step; what was drawn is still billed.

    It runs on `pool`, the server's own pool for strategies: a strategy's thread waits on the
    engine for its whole generation, and on the event loop's default pool a few of them would
    starve the short jobs queued there (tokenizing every other request's prompt)."""
    queue: asyncio.Queue = asyncio.Queue()
    metered = MeteredEngine(engine)
    loop = asyncio.get_running_loop()

    async def run() -> None:
        try:
            result = (await loop.run_in_executor(pool, strategy.run, metered, [messages], params))[0]
        except StrategyCancelled:
            total = spent_completion(metered.spent, prompt_tokens)
            outcome.ended(total)
            queue.put_nowait(Done(total))
            return
        except Exception as error:
            if metered.spent:  # samples were drawn before it failed: they were spent
                outcome.ended(spent_completion(metered.spent, prompt_tokens))
            else:
                outcome.failed()
            if isinstance(error, UserError):  # the client's strategy settings, found mid-run
                error = bad_request(str(error), "strategy_params")
            queue.put_nowait(Failed(error))
            return
        total = _billed(result)
        if stream_reasoning and total.reasoning:
            queue.put_nowait(TextDelta("reasoning", total.reasoning))
        queue.put_nowait(ReasoningEnd(total.reasoning_tokens))
        if total.answer:
            queue.put_nowait(TextDelta("answer", total.answer))
        outcome.ended(total)
        queue.put_nowait(Done(total))

    task = loop.create_task(run())
    _RUNNING.add(task)  # the loop keeps only a weak reference to a task
    task.add_done_callback(_RUNNING.discard)
    return Generation(queue, metered.cancel)


_RUNNING: set[asyncio.Task] = set()
