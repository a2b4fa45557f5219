"""An engine that is a chat-completions endpoint: any OpenAI-compatible server (OpenAI, vLLM,
DeepSeek, `ponder serve` itself) behind the same `Engine.generate` every caller uses.

It works in text, not tokens: no `encode`, no `context_length`, no logprobs, token ids or
budget forcing. Token counts are the server's own (`usage`), so they are exact for billing but
are counted in the server's tokenizer. The reasoning budget travels as `reasoning_effort`, a
word, so it is only approximate: the server decides what each word buys (see `effort_for`).
Leaves out streaming and `n` > 1 (one request per prompt is what `generate` needs).
"""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from ponder.engine.base import Completion, SamplingParams, per_request
from ponder.errors import UserError
from ponder.model.chat import Message
# The effort table is pure data shared with `think` and `serve`; importing it (rather than
# copying the numbers) keeps a remote ponder server's words and ours from drifting apart.
from ponder.engine.effort import EFFORT_BUDGETS

OPENAI_URL = "https://api.openai.com/v1"
KEY_ENV_VARS = ("PONDER_API_KEY", "OPENAI_API_KEY")  # first one set wins
MAX_STOPS = 4  # OpenAI's limit; ponder serve and vLLM hold to it too
# Connection errors, 429 and 5xx are often over in a moment (a server restarting, a burst);
# two short retries ride them out without hiding a server that is really down. 4xx are the
# request's fault and never retried; neither are timeouts, which already waited `timeout`.
RETRY_DELAYS = (0.5, 1.0)
SPEC_PREFIX = "openai:"


def parse_remote_spec(spec: str) -> tuple[str, str]:
    """`openai:<model>@<base_url>` -> (model, base_url). Without `@url` the base URL is
    OPENAI_BASE_URL, else OpenAI's own. Model names may contain '@'; the URL starts at the first
    '@http://' or '@https://'."""
    if not spec.startswith(SPEC_PREFIX):
        raise UserError(f"model spec {spec!r} is not a remote one; write openai:MODEL or openai:MODEL@URL")
    rest = spec[len(SPEC_PREFIX):]
    found = re.search(r"@(?=https?://)", rest)
    if found:
        model, base_url = rest[:found.start()], rest[found.end():]
    elif "@" in rest:
        raise UserError(f"model spec {spec!r}: after '@' comes the server's URL, starting with http:// or "
                        "https:// (e.g. openai:ponder-default@http://127.0.0.1:8000/v1)")
    else:
        model, base_url = rest, os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
    if not model:
        raise UserError(f"model spec {spec!r} names no model; write openai:MODEL or openai:MODEL@URL")
    return model, base_url


def effort_for(budget: int | None) -> str:
    """The cheapest effort word whose budget covers `budget` tokens, in ponder's own table.

    Approximate for remote servers: the server decides what a word buys. On `ponder serve` it
    is exact for the table's budgets (16 -> minimal) and rounds others up (100 -> medium = 160);
    elsewhere `none` may be refused (o-series models take minimal..high) and the words are that
    server's own. No budget, or one beyond every finite effort, is `high`."""
    if budget == 0:
        return "none"
    if budget is None:
        return "high"
    for effort, limit in EFFORT_BUDGETS.items():  # cheapest first
        if limit is None or limit >= budget:
            return effort
    return "high"


def _api_key() -> tuple[str, str | None]:
    """(key, the env var it came from). A keyless local server accepts any string."""
    for var in KEY_ENV_VARS:
        if os.environ.get(var):
            return os.environ[var], var
    return "unused", None


class RemoteEngine:
    """Chat completions over HTTP, one request per prompt, up to `concurrency` at a time.

    request_reasoning: also ask for the raw reasoning with ponder's `include_reasoning` field
        (`ponder serve --allow-reasoning`). Off by default because other servers refuse unknown
        fields; servers that send reasoning unasked (`reasoning` / `reasoning_content`, as vLLM
        and DeepSeek do) have it read either way.
    """

    context_length = None  # the server knows its context; a too-long prompt comes back as a 400

    def __init__(self, model: str, base_url: str, api_key: str | None = None, concurrency: int = 16,
                 timeout: float = 120, request_reasoning: bool = False):
        try:
            import openai
        except ImportError:
            raise UserError("the openai: engine needs the openai client; pip install openai") from None
        if not model:
            raise UserError("RemoteEngine needs a model name, the id the server serves")
        if not re.match(r"https?://", base_url):
            raise UserError(f"base URL {base_url!r} must start with http:// or https:// "
                            "(e.g. http://127.0.0.1:8000/v1)")
        if concurrency < 1:
            raise UserError(f"concurrency must be at least 1, got {concurrency}")
        if not timeout > 0:
            raise UserError(f"timeout must be a positive number of seconds, got {timeout}")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.name = model
        self.concurrency, self.timeout, self.request_reasoning = concurrency, timeout, request_reasoning
        self._key_source = "the api_key argument" if api_key else None
        if not api_key:
            api_key, var = _api_key()
            self._key_source = var
        # Retries are ours (see RETRY_DELAYS): the client's own would also retry 408/409.
        self._client = openai.OpenAI(base_url=self.base_url, api_key=api_key, timeout=timeout, max_retries=0)

    def generate(self, prompts: Sequence[Sequence[Message]],
                 params: SamplingParams | Sequence[SamplingParams]) -> list[Completion]:
        params = per_request(params, len(prompts))
        requests = [self._request(messages, p) for messages, p in zip(prompts, params)]  # refuse before sending
        if not requests:
            return []
        with ThreadPoolExecutor(min(self.concurrency, len(requests)), thread_name_prefix="ponder-remote") as pool:
            futures = [pool.submit(self._complete, r) for r in requests]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:  # the first error is the answer; don't send what hasn't gone yet
                    f.cancel()
                raise

    def close(self) -> None:
        self._client.close()

    # ---- one request --------------------------------------------------------------------------

    def _request(self, messages: Sequence[Message], p: SamplingParams) -> dict:
        """SamplingParams -> chat.completions.create keyword arguments."""
        local_only = {"logprobs": p.logprobs, "top_k": p.top_k, "stop_token_ids": p.stop_token_ids,
                      "ignore_eos": p.ignore_eos,
                      "min_reasoning_tokens": getattr(p, "min_reasoning_tokens", 0)}  # budget forcing
        for name, value in local_only.items():
            if value:
                raise UserError(f"{name} is not supported by the remote (openai:) engine: reasoning "
                                f"endpoints do not offer it; use a local model for {name}")
        if len(p.stop) > MAX_STOPS:
            raise UserError(f"the remote (openai:) engine takes up to {MAX_STOPS} stop strings, got {len(p.stop)}")
        kwargs: dict = {
            "model": self.model,
            "messages": [_wire(m) for m in messages],
            "max_completion_tokens": p.max_completion_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "reasoning_effort": effort_for(p.reasoning_budget),
        }
        if p.seed is not None:
            # Seeds in [2**63, 2**64) are sent as their signed twin: the API takes int64, and
            # ponder serve reduces seeds mod 2**64, so both reach the engine as the same seed.
            kwargs["seed"] = p.seed - 2**64 if p.seed >= 2**63 else p.seed
        if p.stop:
            kwargs["stop"] = list(p.stop)
        if self.request_reasoning:
            kwargs["extra_body"] = {"include_reasoning": True}
        return kwargs

    def _complete(self, kwargs: dict) -> Completion:
        response = self._send(kwargs)
        choice = response.choices[0]
        message = choice.message
        reasoning = getattr(message, "reasoning", None) or getattr(message, "reasoning_content", None) or ""
        # A server that reports no usage gets zeros rather than guesses in another tokenizer.
        usage = response.usage
        details = usage.completion_tokens_details if usage else None
        completion_tokens = usage.completion_tokens if usage else 0
        reasoning_tokens = (details.reasoning_tokens or 0) if details else 0
        return Completion(
            reasoning=reasoning if isinstance(reasoning, str) else "",
            answer=message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            reasoning_tokens=reasoning_tokens,
            answer_tokens=max(completion_tokens - reasoning_tokens, 0),
            finish_reason="length" if choice.finish_reason == "length" else "stop",
        )

    def _send(self, kwargs: dict):
        import openai

        for attempt in range(len(RETRY_DELAYS) + 1):
            try:
                return self._client.chat.completions.create(**kwargs)
            except openai.APITimeoutError:
                raise UserError(f"no answer from {self.base_url} within {self.timeout:g} s; check the "
                                "server or give the engine a longer timeout") from None
            except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as error:
                if attempt == len(RETRY_DELAYS):
                    raise self._user_error(error) from None
                time.sleep(RETRY_DELAYS[attempt])
            except openai.APIStatusError as error:
                raise self._user_error(error) from None
        raise AssertionError("unreachable")

    # ---- errors for people --------------------------------------------------------------------

    def _user_error(self, error: Exception) -> UserError:
        import openai

        url = self.base_url
        if isinstance(error, openai.APIConnectionError):
            return UserError(f"cannot reach {url}: {_root_cause(error)}")
        assert isinstance(error, openai.APIStatusError)
        said = _server_message(error)
        status = error.status_code
        if status == 401:
            if self._key_source is None:
                return UserError(f"{url} wants an API key and none was set: set {KEY_ENV_VARS[0]} "
                                 f"(or {KEY_ENV_VARS[1]}). The server said: {said}")
            fix = ("pass a valid api_key" if self._key_source == "the api_key argument"
                   else f"set {self._key_source} to a valid key")
            return UserError(f"{url} refused the API key from {self._key_source}: {fix}. The server said: {said}")
        if status == 404:
            return UserError(self._not_found(said))
        if status == 429:
            return UserError(f"{url} is rate limiting these requests (still after {len(RETRY_DELAYS)} retries): {said}")
        if status >= 500:
            return UserError(f"the server at {url} failed ({status}, still after {len(RETRY_DELAYS)} retries): {said}")
        return UserError(f"{url} refused the request ({status}): {said}")

    def _not_found(self, said: str) -> str:
        """A 404 is an unknown model or a wrong URL; the server's model list tells them apart."""
        import openai

        try:
            served = sorted(m.id for m in self._client.models.list())
        except openai.OpenAIError:
            return (f"{self.base_url} answered 404 for model {self.model!r} and lists no models; check the model "
                    f"name and that the base URL is the API's root (it usually ends in /v1). The server said: {said}")
        return (f"model {self.model!r} is not served at {self.base_url}; it serves: "
                f"{', '.join(served) or '(none)'}. The server said: {said}")


def _wire(m: Message) -> dict:
    out = {"role": m.role, "content": m.content}
    if m.reasoning:  # ponder serve's extension: an earlier turn's reasoning, handed back
        out["reasoning"] = m.reasoning
    return out


def _server_message(error) -> str:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return error.message


def _root_cause(error: BaseException) -> str:
    """'Connection refused', not the client's generic 'Connection error.'."""
    while True:  # httpx wraps the OSError in its args rather than chaining it
        inner = error.__cause__ or next((a for a in error.args if isinstance(a, BaseException)), None)
        if inner is None:
            break
        error = inner
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__
