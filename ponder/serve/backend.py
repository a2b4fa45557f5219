"""The server's view of an engine: submit a conversation, get its events on the event loop.

ponder's own model is served by the continuous-batching engine (requests from all clients share
each decode step). Any other `Engine` is served through `generate` on a worker thread: correct,
streamed as one piece, batched only as far as that engine batches on its own.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol, Sequence

from ponder.engine.base import Completion, SamplingParams
from ponder.engine.continuous import ContinuousEngine, Done, Event, Failed, ReasoningEnd, TextDelta
from ponder.engine.native import NativeEngine
from ponder.model.chat import Message


class Outcome(Protocol):
    """Told how each generation ended, on the event loop: what bills a request."""

    def ended(self, completion: Completion) -> None: ...

    def failed(self) -> None: ...


@dataclass
class Generation:
    """One request in flight: its events arrive on `events`; `cancel` stops it early."""

    events: asyncio.Queue
    cancel: callable  # type: ignore[valid-type]


class Backend:
    def __init__(self, engine, max_batch: int = 64):
        self.engine = ContinuousEngine(engine, max_batch) if isinstance(engine, NativeEngine) else engine
        self.name = engine.name
        self._pool = None if isinstance(self.engine, ContinuousEngine) else ThreadPoolExecutor(max_batch)

    @property
    def context_length(self) -> int | None:
        return getattr(self.engine, "context_length", None)

    def encode(self, messages: Sequence[Message]) -> list[int] | None:
        """The prompt's token ids, or None for an engine that tokenizes elsewhere (a remote one).
        Slow for a long prompt and holds the GIL: callers bound the text first (max_prompt_chars)."""
        encode = getattr(self.engine, "encode", None)
        return encode(messages) if encode else None

    @cached_property
    def max_prompt_chars(self) -> int | None:
        """Characters beyond which a prompt cannot fit the context whatever it says: no token
        covers more characters than the vocabulary's longest, so a longer text has more tokens
        than the context holds. Lets a server refuse a huge prompt without tokenizing it."""
        longest = getattr(self.engine, "longest_token_chars", None)  # engines that tokenize here say it
        if self.context_length is None or longest is None:
            return None
        return self.context_length * longest

    def start(self, messages: Sequence[Message], prompt_ids: list[int] | None, params: SamplingParams,
              stream_reasoning: bool, outcome: Outcome) -> Generation:
        """Begin generating; raises UserError (a 400) before anything is queued when the
        request cannot run, e.g. a prompt beyond the context.

        `outcome` hears of the end on the event loop, before the consumer sees it on the queue,
        and also when the consumer has gone (a cancelled stream is still billed)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def sink(event: Event) -> None:
            if isinstance(event, Done):
                loop.call_soon_threadsafe(outcome.ended, event.completion)
            elif isinstance(event, Failed):
                loop.call_soon_threadsafe(outcome.failed)
            loop.call_soon_threadsafe(queue.put_nowait, event)

        if isinstance(self.engine, ContinuousEngine):
            ids = prompt_ids if prompt_ids is not None else self.engine.encode(messages)
            handle = self.engine.submit(ids, params, sink, stream_reasoning)
            return Generation(queue, handle.cancel)
        self._pool.submit(self._whole, messages, params, sink, stream_reasoning)
        return Generation(queue, lambda: None)

    def _whole(self, messages, params, sink, stream_reasoning) -> None:
        try:
            completion = self.engine.generate([list(messages)], params)[0]
        except Exception as error:
            sink(Failed(error))
            return
        if stream_reasoning and completion.reasoning:
            sink(TextDelta("reasoning", completion.reasoning))
        sink(ReasoningEnd(completion.reasoning_tokens))
        if completion.answer:
            sink(TextDelta("answer", completion.answer))
        sink(Done(completion))

    def close(self) -> None:
        if isinstance(self.engine, ContinuousEngine):
            self.engine.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
