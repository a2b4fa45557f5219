"""What every endpoint does around generation: read and validate the body, check the key and
its limits, map OpenAI parameters onto SamplingParams, and settle the bill afterwards.

The ledger row is written before the response's last bytes are sent, so every response a client
received whole has its row, even if the server is killed right after.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
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
from ponder.serve.limits import RateLimiter
from ponder.serve.response_store import ResponseStore
from ponder.serve.sealed import ReasoningSealer, load_or_create_key
from ponder.serve.settings import ServeConfig
from ponder.serve.thinking import choose, parse_effort_strategies, start_strategy

log = logging.getLogger("ponder.serve")
Body = TypeVar("Body", bound=BaseModel)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Caller:
    """Who is asking, and the rate-limit headers every answer to them carries."""

    key: ApiKey | None
    headers: dict[str, str]

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None


class Tally:
    """Bills one request once, when every choice has ended (finished, or cancelled because the
    client went away: the tokens were generated, so they are billed and count against limits)."""

    def __init__(self, services: "Services", caller: Caller, request_id: str, endpoint: str,
                 prompt_tokens: int, n: int):
        self.services, self.caller, self.request_id, self.endpoint = services, caller, request_id, endpoint
        self.prompt_tokens, self.n = prompt_tokens, n
        self.started = time.monotonic()
        self.ended: list[Completion] = []

    def __call__(self, completion: Completion) -> None:
        self.ended.append(completion)
        if len(self.ended) == self.n:
            cancelled = any(c.finish_reason == "cancelled" for c in self.ended)
            self.services.settle(self.caller, self.request_id, self.endpoint, self.prompt_tokens,
                                 sum(c.completion_tokens for c in self.ended),
                                 sum(c.reasoning_tokens for c in self.ended), self.started,
                                 "cancelled" if cancelled else "completed")


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
        self.sealer = ReasoningSealer(load_or_create_key(db_path.with_name(db_path.stem + ".reasoning.key")))
        # Without keys, a loopback server is a personal quick start; anywhere else it needs keys.
        self.keys_optional = loopback and not cfg.require_key

    # ---- request intake ---------------------------------------------------------------------

    async def parse(self, request: Request, model: type[Body]) -> Body:
        raw = await request.body()
        if len(raw) > self.cfg.max_body_bytes:
            raise APIError(413, f"Request body is {len(raw)} bytes; the limit is {self.cfg.max_body_bytes}.",
                           None, "request_too_large")
        try:
            data = json.loads(raw)
            # A lone surrogate escape ("\ud800") parses but is no text: refuse it here, before
            # it reaches the tokenizer or a JSON encoder.
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
        header = request.headers.get("authorization", "")
        secret = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not secret:
            if self.keys_optional and not self.keys.any_active():
                return None
            raise APIError(401, "You didn't provide an API key. Send it as 'Authorization: Bearer YOUR_KEY'. "
                           "Create one with `ponder keys create NAME`.", None, "invalid_api_key")
        key = self.keys.authenticate(secret)
        if key is None:
            if self.keys_optional and not self.keys.any_active():
                return None  # no keys at all: a loopback quick start ignores whatever was sent
            shown = secret[:6] + "*" * 4 + secret[-4:] if len(secret) > 12 else "****"
            raise APIError(401, f"Incorrect API key provided: {shown}. It is unknown or revoked.",
                           None, "invalid_api_key")
        return key

    def check_model(self, name: str) -> None:
        if name != self.model_name:
            raise APIError(404, f"The model '{name}' does not exist; this server serves '{self.model_name}'.",
                           "model", "model_not_found")

    def admit(self, key: ApiKey | None, prompt_tokens: int) -> Caller:
        if key is None:
            return Caller(None, {})
        decision = self.limiter.admit(key, prompt_tokens)
        if not decision.allowed:
            raise APIError(429, decision.reason or "Rate limit reached.", None, "rate_limit_exceeded",
                           dict(decision.headers), type="requests")
        return Caller(key, dict(decision.headers))

    # ---- parameters -------------------------------------------------------------------------

    def effort_budget(self, effort: str | None, param: str) -> int | None:
        effort = effort or self.cfg.default_effort
        if effort not in self.cfg.efforts:
            raise bad_request(f"Unsupported value: '{param}' does not support '{effort}' with this model. "
                              f"Supported values are: {', '.join(repr(e) for e in self.cfg.efforts)}.",
                              param, "unsupported_value")
        return self.cfg.budget(effort)

    def messages(self, turns: list[tuple[str, str, str]]) -> tuple[list[Message], int]:
        """(role, content, reasoning) turns -> Messages and the prompt's token count, refusing a
        prompt beyond the context with OpenAI's context_length_exceeded."""
        # Developer messages replace system messages on reasoning models.
        messages = [Message("developer" if role == "system" else role, content, reasoning)
                    for role, content, reasoning in turns]
        n = self.backend.prompt_tokens(messages) or 0
        limit = self.backend.context_length
        if limit is not None and n >= limit:
            raise bad_request(f"This model's maximum context length is {limit} tokens. However, your messages "
                              f"resulted in {n} tokens. Please reduce the length of the messages.",
                              "messages", "context_length_exceeded")
        return messages, n

    def sampling(self, budget: int | None, max_completion: int | None, temperature: float, top_p: float,
                 seed: int | None, stop: tuple[str, ...] = ()) -> SamplingParams:
        limit = self.backend.context_length or 4096
        try:
            return SamplingParams(max_completion_tokens=max_completion or limit, reasoning_budget=budget,
                                  temperature=temperature, top_p=top_p, seed=seed, stop=stop)
        except UserError as error:
            raise bad_request(str(error)) from None

    def start(self, messages: list[Message], params: SamplingParams, stream_reasoning: bool, on_end,
              effort: str | None, strategy: str | None, strategy_params: dict | None):
        """One generation: a single sample straight from the engine (streamed token by token),
        or the strategy the request or its effort level names."""
        chosen = choose(strategy, strategy_params, effort or self.cfg.default_effort, self.effort_strategies)
        if chosen is None:
            return self.backend.start(messages, params, stream_reasoning, on_end=on_end)
        return start_strategy(chosen, self.backend.engine, messages, params, stream_reasoning, on_end)

    # ---- afterwards -------------------------------------------------------------------------

    def settle(self, caller: Caller, request_id: str, endpoint: str, prompt_tokens: int,
               completion_tokens: int, reasoning_tokens: int, started: float, status: str = "completed") -> None:
        latency = time.monotonic() - started
        if caller.key is not None:
            self.limiter.record_tokens(caller.key.id, prompt_tokens + completion_tokens)
        self.ledger.record(request_id, caller.key_id, self.model_name, endpoint, prompt_tokens,
                           completion_tokens, reasoning_tokens, latency, status)
        # Counts only: request text, answers and reasoning never reach the log.
        log.info("%s %s key=%s prompt=%d completion=%d reasoning=%d latency=%.3fs %s", endpoint, request_id,
                 caller.key_id or "-", prompt_tokens, completion_tokens, reasoning_tokens, latency, status)

    def close(self) -> None:
        self.backend.close()
        self.conn.close()
