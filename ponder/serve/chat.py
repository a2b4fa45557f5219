"""POST /v1/chat/completions: reasoning hidden, its tokens billed inside completion_tokens."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from ponder.engine.base import Completion
from ponder.engine.continuous import Done, Failed, TextDelta
from ponder.serve.errors import APIError, bad_request, failure, failure_body
from ponder.serve.protocol import ChatCompletionRequest
from ponder.serve.services import Services, Tally, new_id
from ponder.serve.streams import merged_events, sse

ENDPOINT = "chat.completions"


def usage(prompt_tokens: int, completions: list[Completion]) -> dict:
    completion_tokens = sum(c.completion_tokens for c in completions)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": sum(c.reasoning_tokens for c in completions),
            "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
        },
    }


async def chat_completions(request: Request) -> JSONResponse | StreamingResponse:
    svc: Services = request.app.state.services
    key = svc.authenticate(request)
    svc.check_limits(key)  # before the body is read: a key out of quota costs the server nothing more
    body = await svc.parse(request, ChatCompletionRequest)
    svc.check_model(body.model)
    if body.logprobs:
        raise bad_request("Unsupported parameter: 'logprobs' is not supported with reasoning models.",
                          "logprobs", "unsupported_parameter")
    if body.max_tokens is not None and svc.cfg.max_tokens == "reject":
        raise bad_request("Unsupported parameter: 'max_tokens' is not supported with this model. "
                          "Use 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
    if body.max_tokens is not None and body.max_completion_tokens is not None:
        raise bad_request("Set only one of 'max_tokens' and 'max_completion_tokens'.", "max_tokens")
    if body.include_reasoning and not svc.cfg.allow_reasoning:
        raise APIError(403, "This server does not reveal reasoning; start it with --allow-reasoning to allow "
                       "include_reasoning.", "include_reasoning", "reasoning_not_allowed")
    budget = svc.effort_budget(body.reasoning_effort, "reasoning_effort")
    plan = svc.plan(body.strategy, body.strategy_params, body.reasoning_effort, body.n)
    max_completion = body.max_completion_tokens or body.max_tokens
    # Each choice gets its own seed, so n choices from one seeded request differ from each other.
    params = [svc.sampling(budget, max_completion, body.temperature, body.top_p,
                           None if body.seed is None else (body.seed + i) % 2**64, body.stops())
              for i in range(body.n)]
    prompt = await svc.prompt([(m.role, m.text(), m.reasoning or "") for m in body.messages])
    caller = svc.admit(key, prompt, plan, max_completion)  # everything refusable was refused above
    prompt_tokens = prompt.tokens
    request_id = new_id("chatcmpl-")
    tally = Tally(svc, caller, request_id, ENDPOINT, prompt_tokens, body.n)
    generations = svc.start(prompt, params, body.include_reasoning, plan, tally)
    head = {"id": request_id, "created": int(time.time()), "model": svc.model_name,
            "system_fingerprint": f"fp_ponder_{svc.backend.name}"}
    if body.stream:
        events = _chunks(body, head, generations, prompt_tokens, request_id)
        return StreamingResponse(events, media_type="text/event-stream", headers=caller.headers)
    completions = await _collect(generations, request_id)  # billed by the tally as they ended
    choices = []
    for i, c in enumerate(completions):
        message = {"role": "assistant", "content": c.answer, "refusal": None}
        if body.include_reasoning:
            message["reasoning"] = c.reasoning
        choices.append({"index": i, "message": message, "finish_reason": c.finish_reason, "logprobs": None})
    payload = {**head, "object": "chat.completion", "choices": choices, "usage": usage(prompt_tokens, completions),
               "service_tier": "default"}
    return JSONResponse(payload, headers=caller.headers)


async def _collect(generations, request_id: str) -> list[Completion]:
    async def one(generation) -> Completion:
        while True:
            event = await generation.events.get()
            if isinstance(event, Done):
                return event.completion
            if isinstance(event, Failed):
                raise failure(event.error, request_id)

    try:
        return list(await asyncio.gather(*(one(g) for g in generations)))
    except BaseException:
        for g in generations:
            g.cancel()
        raise


async def _chunks(body: ChatCompletionRequest, head: dict, generations, prompt_tokens: int,
                  request_id: str) -> AsyncIterator[str]:
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(choices: list[dict], **extra) -> str:
        out = {**head, "object": "chat.completion.chunk", "choices": choices, **extra}
        if include_usage and "usage" not in extra:
            out["usage"] = None
        return sse(out)

    yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}
                 for i in range(len(generations))])
    completions: dict[int, Completion] = {}
    try:
        async for index, event in merged_events(generations):
            if isinstance(event, TextDelta):
                field = "content" if event.kind == "answer" else "reasoning"
                if field == "content" or body.include_reasoning:
                    yield chunk([{"index": index, "delta": {field: event.text}, "finish_reason": None, "logprobs": None}])
            elif isinstance(event, Done):
                completions[index] = event.completion
                yield chunk([{"index": index, "delta": {}, "finish_reason": event.completion.finish_reason,
                              "logprobs": None}])
            elif isinstance(event, Failed):
                raise event.error
    except Exception as error:  # headers are gone: report in-band, as OpenAI does mid-stream
        yield sse(failure_body(error, request_id))
        return
    done = [completions[i] for i in sorted(completions)]  # already billed: the tally ran first
    if include_usage:
        yield chunk([], usage=usage(prompt_tokens, done))
    yield "data: [DONE]\n\n"


