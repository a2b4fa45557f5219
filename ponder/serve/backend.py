"""The server's view of an engine: submit a conversation, get its events on the event loop.

ponder's own model is served by the continuous-batching engine (requests from all clients share
each decode step). Any other `Engine` is served through `generate` on a worker thread: correct,
streamed as one piece, batched only as far as that engine batches on its own.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

from ponder.engine.base import Completion, SamplingParams
from ponder.engine.continuous import ContinuousEngine, Done, Event, Failed, ReasoningEnd, TextDelta
from ponder.engine.native import NativeEngine
from ponder.model.chat import Message


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

    def prompt_tokens(self, messages: Sequence[Message]) -> int | None:
        encode = getattr(self.engine, "encode", None)
        return len(encode(messages)) if encode else None

    def start(self, messages: Sequence[Message], params: SamplingParams, stream_reasoning: bool = False,
              on_end: Callable[[Completion], None] | None = None) -> Generation:
        """Begin generating; raises UserError (a 400) before anything is queued when the
        request cannot run, e.g. a prompt beyond the context.

        `on_end` gets the final Completion on the event loop, before the consumer sees it on the
        queue, and also when the consumer has gone (a cancelled stream is still billed)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Event] = asyncio.Queue()

        def sink(event: Event) -> None:
            if on_end is not None and isinstance(event, Done):
                loop.call_soon_threadsafe(on_end, event.completion)
            loop.call_soon_threadsafe(queue.put_nowait, event)

        if isinstance(self.engine, ContinuousEngine):
            handle = self.engine.submit(self.engine.encode(messages), params, sink, stream_reasoning)
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
