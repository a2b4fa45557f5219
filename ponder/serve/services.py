"""What every endpoint does around generation: read and validate the body, check the key and
its limits, map OpenAI parameters onto SamplingParams, and settle the bill afterwards.

The order is the security model's: the key first; then everything that can be refused cheaply
(the body, its parameters, the strategy and its sample cap, the key's limits as they stand, the
prompt's length in characters); only then is the prompt tokenized, off the event loop, and the
request admitted, which takes one request and reserves its largest possible token spend. A
request refused at any step before admission costs the key nothing.

The ledger row is written before the response's last bytes are sent, so every response a client
received whole has its row, even if the server is killed right after.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ponder.engine.base import Completion, SamplingParams
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.serve.backend import Backend
from ponder.serve.db import DEFAULT_DB, connect
from ponder.serve.errors import APIError, bad_request, from_validation
from ponder.serve.keys import ApiKey, KeyStore
from ponder.serve.ledger import Ledger, PriceTable
from ponder.serve.limits import LimitDecision, RateLimiter
from ponder.serve.response_store import ResponseStore
from ponder.serve.sealed import ReasoningSealer, load_or_create_key
from ponder.serve.settings import ServeConfig
from ponder.serve.thinking import (
    check_samples, choose, make_policy, parse_effort_strategies, start_strategy,
)
from ponder.think.base import Strategy

log = logging.getLogger("ponder.serve")
Body = TypeVar("Body", bound=BaseModel)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Caller:
    """Who is asking, the rate-limit headers every answer to them carries, and the admission to
    settle or release when the request ends (None for a keyless caller)."""

    key: ApiKey | None
    headers: dict[str, str]
    reservation: int | None = None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None


@dataclass(frozen=True)
class Prompt:
    messages: list[Message]
    ids: list[int] | None  # None when the engine tokenizes elsewhere (a remote engine)
    tokens: int


@dataclass(frozen=True)
class Plan:
    """How each of a request's n choices is generated: by a strategy, or one plain sample."""

    strategy: Strategy | None
    samples: int  # engine samples the whole request may draw (n x the strategy's)


class Tally:
    """Bills one request once, when every choice has ended (finished, or cancelled because the
    client went away: the tokens were generated, so they are billed and count against limits).
    A request whose every choice failed before writing anything is released, not billed."""

    def __init__(self, services: "Services", caller: Caller, request_id: str, endpoint: str,
                 prompt_tokens: int, n: int):
        self.services, self.caller, self.request_id, self.endpoint = services, caller, request_id, endpoint
        self.prompt_tokens, self.n = prompt_tokens, n
        self.started = time.monotonic()
        self.done: list[Completion] = []
        self.failures = 0

    def ended(self, completion: Completion) -> None:
        self.done.append(completion)
        self._maybe_settle()

    def failed(self) -> None:
        self.failures += 1
        self._maybe_settle()

    def _maybe_settle(self) -> None:
        if len(self.done) + self.failures != self.n:
            return
        if not self.done:
            self.services.release(self.caller)
            return
        status = ("failed" if self.failures else
                  "cancelled" if any(c.finish_reason == "cancelled" for c in self.done) else "completed")
        self.services.settle(self.caller, self.request_id, self.endpoint, self.prompt_tokens,
                             sum(c.completion_tokens for c in self.done),
                             sum(c.reasoning_tokens for c in self.done), self.started, status)


class Services:
    def __init__(self, cfg: ServeConfig, backend: Backend, loopback: bool = True):
        self.cfg = cfg
        self.backend = backend
        self.model_name = cfg.served_model_name or f"ponder-{backend.name}"
        db_path = Path(cfg.db).expanduser() if cfg.db else DEFAULT_DB
        self.conn = connect(db_path)
        self.keys = KeyStore(self.conn)
        self.limiter = RateLimiter(self.conn)
        self.ledger = Ledger(self.conn, PriceTable.from_toml(Path(cfg.prices)) if cfg.prices else PriceTable({}))
        self.responses = ResponseStore(self.conn)
        self.effort_strategies = parse_effort_strategies(cfg.effort_strategies)
        self.policy = make_policy(cfg.api_strategies, cfg.api_scorers, cfg.max_samples)
        # One thread per strategy request in flight, apart from the loop's default pool (thinking.py).
        self.strategy_pool = ThreadPoolExecutor(cfg.max_batch, thread_name_prefix="ponder-strategy")
        self.sealer = ReasoningSealer(load_or_create_key(db_path.with_name(db_path.stem + ".reasoning.key")))
        # Without keys, a loopback server is a personal quick start; anywhere else it needs keys.
        self.keys_optional = loopback and not cfg.require_key

    # ---- request intake ---------------------------------------------------------------------

    async def parse(self, request: Request, model: type[Body]) -> Body:
        # Without keys, JSON only: a web page's cross-site POST that needs no CORS preflight
        # (a form, text/plain, a body with no type) is refused before its body is read. With keys
        # that POST cannot carry the key, so a client that forgets the header is not refused.
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and self.open_to_all():
            raise APIError(415, f"Content-Type must be application/json, not {media[:64] or 'missing'!r}.", None,
                           "unsupported_media_type")
        raw = await request.body()  # the body limit middleware (app.py) has already refused a larger one
        try:
            data = json.loads(raw)
            # A lone surrogate escape ("\ud800") parses but is no text: refuse it here, before
            # it reaches the tokenizer or a JSON encoder. Only a body with a surrogate escape
            # in it is re-encoded to look: that costs the event loop 28 ms for 1 MB.
            if _SURROGATE_ESCAPE.search(raw):
                json.dumps(data, ensure_ascii=False).encode("utf-8")
        except (ValueError, RecursionError):  # also deep nesting, huge integers, bad UTF-8
            raise bad_request("We could not parse the JSON body of your request. The body must be valid JSON "
                              "in UTF-8, without lone surrogate escapes.", None, "invalid_json") from None
        if not isinstance(data, dict):
            raise bad_request("The request body must be a JSON object.", None, "invalid_type")
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise from_validation(error) from None

    def authenticate(self, request: Request) -> ApiKey | None:
        """The caller's active key; None only on a loopback quick start where no key was ever
        made. Once a key has existed (even if every key is now revoked), every request needs an
        active one: revoking the last key locks the server, it does not open it."""
        header = request.headers.get("authorization", "")
        secret = header[7:].strip() if header.lower().startswith("bearer ") else ""
        open_to_all = self.open_to_all()
        if open_to_all:
            _check_local_request(request)
        if not secret:
            if open_to_all:
                return None
            raise APIError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'. "
                           "Create one with `ponder keys create NAME`.", None, "invalid_api_key")
        key = self.keys.authenticate(secret)
        if key is None:
            if open_to_all:
                return None  # no keys at all: a loopback quick start ignores whatever was sent
            shown = secret[:6] + "*" * 4 + secret[-4:] if len(secret) > 12 else "****"
            raise APIError(401, f"Incorrect API key provided: {shown}. It is unknown or revoked.",
                           None, "invalid_api_key")
        return key

    def open_to_all(self) -> bool:
        """The loopback quick start: no key needed, because none was ever made."""
        return self.keys_optional and not self.keys.any_created()

    def check_model(self, name: str) -> None:
        if name != self.model_name:
            raise APIError(404, f"The model '{name}' does not exist; this server serves '{self.model_name}'.",
                           "model", "model_not_found")

    def check_limits(self, key: ApiKey | None) -> None:
        """A 429 now if the key is already out of requests or tokens: before its prompt is read."""
        if key is not None:
            _raise_if_refused(self.limiter.check(key))

    def admit(self, key: ApiKey | None, prompt: Prompt, plan: Plan, max_completion: int | None) -> Caller:
        """Take one request from the key's allowance and reserve the most it can spend: the
        prompt plus the completion bound of every sample it may draw."""
        if key is None:
            return Caller(None, {})
        decision = self.limiter.admit(key, prompt.tokens + plan.samples * self.completion_bound(prompt, max_completion))
        _raise_if_refused(decision)
        return Caller(key, dict(decision.headers), decision.reservation)

    def completion_bound(self, prompt: Prompt, max_completion: int | None) -> int:
        """The most tokens one sample may write: the request's bound, or what the context leaves."""
        context = self.backend.context_length
        if context is None:
            return max_completion or DEFAULT_COMPLETION_BOUND
        room = max(context - prompt.tokens, 0)
        return min(max_completion, room) if max_completion else room

    # ---- parameters -------------------------------------------------------------------------

    def effort_budget(self, effort: str | None, param: str) -> int | None:
        effort = effort or self.cfg.default_effort
        if effort not in self.cfg.efforts:
            raise bad_request(f"Unsupported value: '{param}' does not support '{effort}' with this model. "
                              f"Supported values are: {', '.join(repr(e) for e in self.cfg.efforts)}.",
                              param, "unsupported_value")
        return self.cfg.budget(effort)

    async def prompt(self, turns: list[tuple[str, str, str]]) -> Prompt:
        """(role, content, reasoning) turns -> the prompt and its tokens, refusing one beyond the
        context with OpenAI's context_length_exceeded. A prompt too long in characters to fit is
        refused untokenized; the rest is tokenized on a worker thread, off the event loop."""
        # Developer messages replace system messages on reasoning models.
        messages = [Message("developer" if role == "system" else role, content, reasoning)
                    for role, content, reasoning in turns]
        limit, most_chars = self.backend.context_length, self.backend.max_prompt_chars
        chars = sum(len(m.content) + len(m.reasoning) for m in messages)
        if limit is not None and most_chars is not None and chars > most_chars:
            raise _context_exceeded(limit, f"at least {math.ceil(chars * limit / most_chars)}")
        ids = await asyncio.to_thread(self.backend.encode, messages)
        n = len(ids) if ids is not None else 0
        if limit is not None and n >= limit:
            raise _context_exceeded(limit, str(n))
        return Prompt(messages, ids, n)

    def plan(self, strategy: str | None, strategy_params: dict | None, effort: str | None, n: int) -> Plan:
        """The strategy each choice runs, checked against what the server offers and its cap
        on samples per request."""
        chosen = choose(strategy, strategy_params, effort or self.cfg.default_effort, self.effort_strategies,
                        self.policy)
        return Plan(chosen, check_samples(chosen, n, self.policy))

    def sampling(self, budget: int | None, max_completion: int | None, temperature: float, top_p: float,
                 seed: int | None, stop: tuple[str, ...] = ()) -> SamplingParams:
        limit = self.backend.context_length or DEFAULT_COMPLETION_BOUND
        try:
            return SamplingParams(max_completion_tokens=max_completion or limit, reasoning_budget=budget,
                                  temperature=temperature, top_p=top_p, seed=seed, stop=stop)
        except UserError as error:
            raise bad_request(str(error)) from None

    def start(self, prompt: Prompt, params: list[SamplingParams], stream_reasoning: bool, plan: Plan,
              tally: Tally) -> list:
        """One generation per params: a single sample straight from the engine (streamed token
        by token), or the plan's strategy. If one cannot start, those already started are
        cancelled and the request's admission is given back, so a refusal costs nothing."""
        generations = []
        try:
            for p in params:
                if plan.strategy is None:
                    generations.append(self.backend.start(prompt.messages, prompt.ids, p, stream_reasoning, tally))
                else:
                    generations.append(start_strategy(plan.strategy, self.backend.engine, prompt.messages, p,
                                                      stream_reasoning, tally, prompt.tokens, self.strategy_pool))
        except BaseException:
            for g in generations:
                g.cancel()
            for _ in range(len(params) - len(generations)):
                tally.failed()
            raise
        return generations

    # ---- afterwards -------------------------------------------------------------------------

    def release(self, caller: Caller) -> None:
        if caller.reservation is not None:
            self.limiter.release(caller.reservation)

    def settle(self, caller: Caller, request_id: str, endpoint: str, prompt_tokens: int,
               completion_tokens: int, reasoning_tokens: int, started: float, status: str = "completed") -> None:
        latency = time.monotonic() - started
        if caller.reservation is not None:
            self.limiter.settle(caller.reservation, prompt_tokens + completion_tokens)
        self.ledger.record(request_id, caller.key_id, self.model_name, endpoint, prompt_tokens,
                           completion_tokens, reasoning_tokens, latency, status)
        # Counts only: request text, answers and reasoning never reach the log.
        log.info("%s %s key=%s prompt=%d completion=%d reasoning=%d latency=%.3fs %s", endpoint, request_id,
                 caller.key_id or "-", prompt_tokens, completion_tokens, reasoning_tokens, latency, status)

    def close(self) -> None:
        self.strategy_pool.shutdown(wait=False, cancel_futures=True)
        self.backend.close()
        self.conn.close()


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
DEFAULT_COMPLETION_BOUND = 4096  # for an engine that does not say its context (a remote one)


def _context_exceeded(limit: int, tokens: str) -> APIError:
    return bad_request(f"This model's maximum context length is {limit} tokens. However, your messages "
                       f"resulted in {tokens} tokens. Please reduce the length of the messages.",
                       "messages", "context_length_exceeded")


def _raise_if_refused(decision: LimitDecision) -> None:
    """A refusal as OpenAI words it: 429, its type the exhausted limit (requests, tokens, ...)."""
    if not decision.allowed:
        raise APIError(429, decision.reason or "Rate limit reached.", None, "rate_limit_exceeded",
                       dict(decision.headers), type=decision.limit)


_LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")


def _check_local_request(request: Request) -> None:
    """A keyless quick start answers only requests addressed to this machine, not through a
    proxy: a web page that rebinds its own name to 127.0.0.1 sends its own Host, and a proxy
    in front would make the keyless server public."""
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    forwarded = any(h in request.headers for h in ("forwarded", "x-forwarded-for", "x-real-ip"))
    local = name.lower() in _LOCAL_HOSTS or name.startswith("127.")
    if not local or forwarded:
        raise APIError(403, "This server runs without API keys, so it answers only requests addressed to localhost "
                       "and not forwarded by a proxy; create a key (`ponder keys create NAME`) or start it with "
                       "--require-key.", None, "keyless_local_only")
