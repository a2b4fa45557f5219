"""Continuous batching for serving: requests join and leave the running batch at every decode
step, and each one streams its text as it is generated.

One worker thread owns the model. Each row of a preallocated KV cache holds one live request at
its own position, so a request that arrives mid-batch is prefilled into a free row and decodes
with the others from the next step; a finished request frees its row at once (the last row is
moved into the hole, keeping live rows dense). Token choice, budgets and the final `Completion`
are the native engine's, so a request gets the same semantics batched or alone.

Events go to a per-request `sink` called on the worker thread; it must not block (the server
hands them to its event loop with `call_soon_threadsafe`).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Literal, Sequence

import torch

from ponder.engine.base import Completion, SamplingParams, per_request
from ponder.engine.native import NO_BUDGET, NativeEngine, _Rows
from ponder.errors import UserError
from ponder.model.gpt import KVCache


@dataclass(frozen=True)
class TextDelta:
    kind: Literal["reasoning", "answer"]
    text: str


@dataclass(frozen=True)
class ReasoningEnd:
    """The reasoning closed after `tokens` tokens (its closing tag included); the answer follows."""

    tokens: int


@dataclass(frozen=True)
class Done:
    completion: Completion


@dataclass(frozen=True)
class Failed:
    error: BaseException


Event = TextDelta | ReasoningEnd | Done | Failed
Sink = Callable[[Event], None]


@dataclass
class _Request:
    prompt: list[int]
    params: SamplingParams
    sink: Sink
    stream_reasoning: bool
    max_new: int
    generator: torch.Generator | None
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    in_reasoning: bool = True
    reasoning_used: int = 0
    answer_start: int | None = None  # index in ids of the first answer token
    sent: dict = field(default_factory=lambda: {"reasoning": 0, "answer": 0})  # chars streamed
    stopped: bool = False
    cancelled: bool = False
    extension: list[int] = field(default_factory=list)  # budget forcing's "Wait" tokens
    forced: list[int] = field(default_factory=list)  # of those, the ones still to write

    @property
    def length(self) -> int:
        return len(self.prompt) + len(self.ids)


class RequestHandle:
    def __init__(self, request: _Request):
        self._request = request

    def cancel(self) -> None:
        """Stop generating (the client went away). One last event follows: `Done` with what was
        generated so far and finish_reason "cancelled", so those tokens can still be billed."""
        self._request.cancelled = True


class ContinuousEngine:
    """Serves a `NativeEngine`'s model with continuous batching; also a plain `Engine`."""

    def __init__(self, native: NativeEngine, max_batch: int = 64):
        self.native = native
        self.name = native.name
        self.tok = native.tok
        self.max_batch = max_batch
        cfg = native.model.cfg
        self.cache = KVCache(cfg, max_batch, cfg.max_seq_len)
        self._live: list[_Request] = []
        self._waiting: deque[_Request] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="ponder-engine", daemon=True)
        self._worker.start()

    @property
    def context_length(self) -> int:
        return self.native.context_length

    def encode(self, messages) -> list[int]:
        return self.native.encode(messages)

    @property
    def longest_token_chars(self) -> int:
        return self.native.longest_token_chars

    # ---- submitting -------------------------------------------------------------------------

    def submit(self, prompt_ids: Sequence[int], params: SamplingParams, sink: Sink,
               stream_reasoning: bool = False) -> RequestHandle:
        """Queue one request. A prompt that does not fit the context raises UserError here, in
        the caller's thread, so the server can answer 400 before streaming anything."""
        ids = list(prompt_ids) + ([self.tok.special.think_close] if params.reasoning_budget == 0 else [])
        ctx = self.context_length
        if len(ids) >= ctx:
            raise UserError(f"prompt is {len(ids)} tokens but the model's context is {ctx}; "
                            f"shorten it to at most {ctx - 1} tokens, leaving room to answer")
        request = _Request(
            prompt=ids, params=params, sink=sink, stream_reasoning=stream_reasoning,
            max_new=min(params.max_completion_tokens, ctx - len(ids)),
            generator=torch.Generator().manual_seed(params.seed) if params.seed is not None else None,
            in_reasoning=params.reasoning_budget != 0,
            answer_start=0 if params.reasoning_budget == 0 else None,  # the prompt closed the reasoning
            extension=self.tok.encode(params.extend_with) if params.min_reasoning_tokens else [],
        )
        with self._wake:
            if self._closed:
                raise RuntimeError("the engine is closed")
            self._waiting.append(request)
            self._wake.notify()
        return RequestHandle(request)

    def generate(self, prompts, params) -> list[Completion]:
        return self.generate_ids([self.encode(p) for p in prompts], params)

    def generate_ids(self, prompt_ids, params,
                     on_submit: Callable[[RequestHandle], None] | None = None) -> list[Completion]:
        """Blocking: all requests share the running batch with whatever else is being served.
        `on_submit` gets each request's handle as it is queued, so another thread can cancel it;
        a cancelled request comes back with finish_reason "cancelled" and what it had written."""
        params = per_request(params, len(prompt_ids))
        results: list[Event | None] = [None] * len(prompt_ids)
        done = threading.Semaphore(0)

        def sink_for(i):
            def sink(event):
                if isinstance(event, (Done, Failed)):
                    results[i] = event
                    done.release()
            return sink

        for i, (ids, p) in enumerate(zip(prompt_ids, params)):
            handle = self.submit(ids, p, sink_for(i))
            if on_submit is not None:
                on_submit(handle)
        for _ in prompt_ids:
            done.acquire()
        for r in results:
            if isinstance(r, Failed):
                raise r.error
        return [r.completion for r in results]  # type: ignore[union-attr]

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._worker.join(timeout=10)

    # ---- the worker -------------------------------------------------------------------------

    def _run(self) -> None:
        logits = torch.empty(0, self.native.model.cfg.vocab_size)
        while True:
            with self._wake:
                while not self._closed and not self._waiting and not self._live:
                    self._wake.wait()
                if self._closed:
                    break
                joiners = []
                while self._waiting and len(self._live) + len(joiners) < self.max_batch:
                    joiners.append(self._waiting.popleft())
            try:
                if joiners:
                    logits = torch.cat([logits, self._prefill(joiners)])
                    self._live.extend(joiners)
                    joiners = []
                logits = self._step(logits)
            except Exception as error:  # a bug must not hang every client: fail what is in flight
                for r in [*self._live, *joiners]:
                    r.sink(Failed(error))
                self._live.clear()
                logits = logits[:0]
        for r in [*self._live, *self._waiting]:
            r.sink(Failed(RuntimeError("the engine was closed")))

    @torch.inference_mode()
    def _prefill(self, joiners: list[_Request]) -> torch.Tensor:
        """Right-padded prompts into the rows after the live ones; logits at each last token."""
        n, k = len(self._live), len(joiners)
        L = max(len(r.prompt) for r in joiners)
        tokens = torch.full((k, L), self.tok.special.pad, dtype=torch.long)
        for i, r in enumerate(joiners):
            tokens[i, : len(r.prompt)] = torch.tensor(r.prompt)
        # Causal attention never lets a real token see the padding after it, and decoding
        # overwrites each padded slot before any mask admits it.
        out = self.native.model(tokens, None, self.cache.rows(n, n + k), 0, None)  # (k, L, V)
        last = torch.tensor([len(r.prompt) - 1 for r in joiners])
        return out[torch.arange(k), last]

    @torch.inference_mode()
    def _step(self, logits: torch.Tensor) -> torch.Tensor:
        live = self._live
        token = self.native._choose(logits, self._rows(), [r.generator for r in live],
                                    [r.extension for r in live], [r.forced for r in live])
        logprobs = None
        if any(r.params.logprobs for r in live):
            logprobs = logits.float().log_softmax(-1).gather(1, token[:, None]).squeeze(1).tolist()
        finished = [self._advance(r, t, logprobs[i] if logprobs else None) for i, (r, t) in enumerate(zip(live, token.tolist()))]
        for slot in reversed(range(len(live))):
            if finished[slot] or live[slot].cancelled:
                self._free(slot)
        if not self._live:
            return logits[:0]
        model = self.native.model
        n = len(self._live)
        pos = torch.tensor([r.length - 1 for r in self._live])  # slot of each row's newest token
        last = torch.tensor([r.ids[-1] for r in self._live])
        mask = torch.arange(int(pos.max()) + 1).unsqueeze(0) <= pos.unsqueeze(1)  # (n, S)
        positions = pos.clamp_max(model.cfg.max_seq_len - 1).unsqueeze(1)
        return model(last.unsqueeze(1), positions, self.cache.rows(0, n), pos, mask[:, None, None, :])[:, -1]

    def _rows(self) -> _Rows:
        live = self._live
        n = len(live)
        return _Rows(
            index=torch.arange(n), pad=torch.zeros(n, dtype=torch.long),
            in_reasoning=torch.tensor([r.in_reasoning for r in live]),
            budget=torch.tensor([NO_BUDGET if r.params.reasoning_budget is None else r.params.reasoning_budget for r in live]),
            reasoning_used=torch.tensor([r.reasoning_used for r in live]),
            generated=torch.tensor([len(r.ids) for r in live]),
            max_new=torch.tensor([r.max_new for r in live]),
            finished=torch.zeros(n, dtype=torch.bool),
            temperature=torch.tensor([float(r.params.temperature) for r in live]),
            top_k=torch.tensor([r.params.top_k for r in live]),
            top_p=torch.tensor([float(r.params.top_p) for r in live]),
            ignore_eos=torch.tensor([r.params.ignore_eos for r in live]),
            min_reasoning=torch.tensor([r.params.min_reasoning_tokens for r in live]),
        )

    def _advance(self, r: _Request, token: int, logprob: float | None) -> bool:
        """Take one token into a request and stream what it adds; True when the request is done."""
        sp = self.tok.special
        r.ids.append(token)
        if logprob is not None:
            r.logprobs.append(logprob)
        if r.in_reasoning:
            r.reasoning_used += 1
            if token == sp.think_close:
                r.in_reasoning = False
                r.answer_start = len(r.ids)
                if r.stream_reasoning:
                    self._send(r, "reasoning", self.tok.decode(r.ids[:-1]))
                r.sink(ReasoningEnd(r.reasoning_used))
            else:
                if r.stream_reasoning:
                    self._emit(r, "reasoning", r.ids)
                if r.params.stop_in_reasoning and any(s in self.tok.decode(r.ids) for s in r.params.stop_in_reasoning):
                    r.stopped = True
                    return True
        else:
            is_end = token == sp.end and not r.params.ignore_eos
            if is_end or token in r.params.stop_token_ids:
                r.stopped = True
                return True
            if self._emit(r, "answer", r.ids[r.answer_start :]):
                r.stopped = True
                return True
        return len(r.ids) >= r.max_new

    def _emit(self, r: _Request, kind: str, ids: list[int]) -> bool:
        """Stream the new text of `ids`; True when a stop string appeared (the answer ends there).

        Text that may be the start of a stop string, or half of a multi-byte character, is held
        back until the next token settles it; the final flush sends the Completion's own text."""
        text = self.tok.decode(ids)
        stops = r.params.stop if kind == "answer" else ()
        if any(s in text for s in stops):
            return True
        end = len(text) - text.endswith("\ufffd")
        hold = max((len(s) - 1 for s in stops), default=0)
        for k in range(min(hold, end), 0, -1):
            if any(s.startswith(text[end - k : end]) for s in stops):
                end -= k
                break
        self._send(r, kind, text[:end])
        return False

    @staticmethod
    def _send(r: _Request, kind: str, text: str) -> None:
        """Send what `text` adds beyond what was already streamed of this kind."""
        if len(text) > r.sent[kind]:
            r.sink(TextDelta(kind, text[r.sent[kind] :]))  # type: ignore[arg-type]
            r.sent[kind] = len(text)

    def _free(self, slot: int) -> None:
        r = self._live[slot]
        last = len(self._live) - 1
        if slot != last:
            self.cache.move_row(last, slot)
            self._live[slot] = self._live[last]
        self._live.pop()
        if r.cancelled:
            r.sink(Done(replace(self._completion(r), finish_reason="cancelled")))
            return
        completion = self._completion(r)
        if r.stream_reasoning:
            self._send(r, "reasoning", completion.reasoning)
        self._send(r, "answer", completion.answer)  # held-back text; the streams add up to it
        r.sink(Done(completion))

    def _completion(self, r: _Request) -> Completion:
        ids = torch.tensor(r.ids, dtype=torch.long)
        logprobs = torch.tensor([r.logprobs]) if r.params.logprobs else None
        return self.native._completion(r.prompt, ids, logprobs, 0, r.params, r.stopped)
