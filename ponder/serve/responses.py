"""POST /v1/responses (and GET/DELETE of stored ones).

Output is a `reasoning` item (a safe summary when asked, the sealed reasoning when
`include: ["reasoning.encrypted_content"]`, never the raw chain) followed by a `message` item.
A conversation continues either statefully (`previous_response_id`, from the server's store) or
statelessly (the client hands back earlier output items; sealed reasoning is opened and checked).
Both rebuild the same prompt, hidden reasoning included.
"""

from __future__ import annotations

import time
from typing import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from ponder.engine.base import Completion
from ponder.engine.continuous import Done, Failed, ReasoningEnd, TextDelta
from ponder.serve.errors import APIError, bad_request, failure, failure_body
from ponder.serve.protocol import InputMessage, InputReasoning, ResponsesRequest
from ponder.serve.response_store import StoredResponse
from ponder.serve.sealed import NO_OWNER, TamperedBlob
from ponder.serve.services import Services, Tally, new_id
from ponder.serve.streams import merged_events, sse
from ponder.serve.summary import summarize_reasoning

ENDPOINT = "responses"


def _conversation(svc: Services, body: ResponsesRequest, key_id: str | None, owner: str) -> list[dict]:
    """The turns to continue from: stored ones, then the request's input, with hand-backs opened
    (only blobs sealed for this owner and this model open)."""
    turns: list[dict] = []
    if body.previous_response_id:
        stored = svc.responses.get(body.previous_response_id, key_id)
        if stored is None:
            raise APIError(404, f"Previous response with id '{body.previous_response_id}' not found.",
                           "previous_response_id", "previous_response_not_found")
        turns = [t for t in stored.conversation if t["role"] != "developer" or not t.get("instructions")]
    if body.instructions:
        # Instructions apply to this request only; they are not carried into the next one.
        turns.insert(0, {"role": "developer", "content": body.instructions, "instructions": True})
    if isinstance(body.input, str):
        return turns + [{"role": "user", "content": body.input}]
    pending_reasoning = ""
    for i, item in enumerate(body.input):
        if isinstance(item, InputReasoning):
            if not item.encrypted_content:
                raise bad_request("A reasoning input item needs its encrypted_content (request it with include: "
                                  "['reasoning.encrypted_content']) or use previous_response_id.",
                                  f"input[{i}].encrypted_content", "missing_required_parameter")
            try:
                sealed = svc.sealer.open(item.encrypted_content, owner=owner, model=svc.model_name)
            except TamperedBlob as error:
                raise bad_request(f"The encrypted content of input[{i}] could not be verified: {error}.",
                                  f"input[{i}].encrypted_content", "invalid_encrypted_content") from None
            pending_reasoning = str(sealed.get("reasoning", ""))
        elif isinstance(item, InputMessage):
            turn = {"role": item.role, "content": item.text()}
            if item.role == "assistant" and pending_reasoning:
                turn["reasoning"] = pending_reasoning
            pending_reasoning = ""
            turns.append(turn)
    return turns


def _reasoning_item(svc: Services, body: ResponsesRequest, ids: dict[str, str], reasoning: str, tokens: int,
                    owner: str) -> dict:
    item = {"type": "reasoning", "id": ids["reasoning"], "summary": _summary(body, reasoning, tokens)}
    if body.include and "reasoning.encrypted_content" in body.include:
        item["encrypted_content"] = svc.sealer.seal({"reasoning": reasoning}, owner=owner, model=svc.model_name)
    return item


def _output(reasoning_item: dict, c: Completion, ids: dict[str, str]) -> list[dict]:
    items = [reasoning_item]
    if c.answer or c.finish_reason == "stop":
        items.append({"type": "message", "id": ids["message"], "status": _status(c), "role": "assistant",
                      "content": [{"type": "output_text", "text": c.answer, "annotations": []}]})
    return items


def _summary(body: ResponsesRequest, reasoning: str, tokens: int) -> list[dict]:
    style = body.reasoning and (body.reasoning.summary or body.reasoning.generate_summary)
    return [{"type": "summary_text", "text": summarize_reasoning(reasoning, style, tokens)}] if style else []


def _status(c: Completion) -> str:
    return "completed" if c.finish_reason == "stop" else "incomplete"


def _response(svc: Services, body: ResponsesRequest, head: dict, prompt_tokens: int, c: Completion | None,
              output: list[dict]) -> dict:
    status = "in_progress" if c is None else _status(c)
    out = {
        **head, "status": status, "output": output,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "usage": None if c is None else {
            "input_tokens": prompt_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": c.completion_tokens, "output_tokens_details": {"reasoning_tokens": c.reasoning_tokens},
            "total_tokens": prompt_tokens + c.completion_tokens,
        },
    }
    return out


async def create_response(request: Request):
    svc: Services = request.app.state.services
    key = svc.authenticate(request)
    svc.check_limits(key)  # before the body is read: a key out of quota costs the server nothing more
    body = await svc.parse(request, ResponsesRequest)
    svc.check_model(body.model)
    effort = body.reasoning.effort if body.reasoning else None
    budget = svc.effort_budget(effort, "reasoning.effort")
    plan = svc.plan(body.strategy, body.strategy_params, effort, 1)
    params = svc.sampling(budget, body.max_output_tokens, body.temperature, body.top_p, body.seed)
    owner = key.id if key else NO_OWNER
    turns = _conversation(svc, body, key.id if key else None, owner)
    prompt = await svc.prompt([(t["role"], t["content"], t.get("reasoning", "")) for t in turns])
    caller = svc.admit(key, prompt, plan, body.max_output_tokens)  # everything refusable was refused above
    prompt_tokens = prompt.tokens
    ids = {"response": new_id("resp_"), "reasoning": new_id("rs_"), "message": new_id("msg_")}
    tally = Tally(svc, caller, ids["response"], ENDPOINT, prompt_tokens, 1)
    # A stream sends the reasoning item (summary, sealed reasoning) before the answer, so the
    # server follows the reasoning text as it comes; it never leaves the server raw.
    [generation] = svc.start(prompt, [params], body.stream, plan, tally)
    head = {
        "id": ids["response"], "object": "response", "created_at": int(time.time()), "model": svc.model_name,
        "error": None, "instructions": body.instructions, "max_output_tokens": body.max_output_tokens,
        "previous_response_id": body.previous_response_id, "store": body.store,
        "reasoning": {"effort": effort or svc.cfg.default_effort, "summary": body.reasoning and body.reasoning.summary},
        "temperature": body.temperature, "top_p": body.top_p, "user": body.user, "metadata": body.metadata or {},
        "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "text": {"format": {"type": "text"}},
        "truncation": "disabled",
    }

    def finish(c: Completion, reasoning_item: dict | None = None) -> dict:
        reasoning_item = reasoning_item or _reasoning_item(svc, body, ids, c.reasoning, c.reasoning_tokens, owner)
        output = _output(reasoning_item, c, ids)
        response = _response(svc, body, head, prompt_tokens, c, output)
        if body.store:
            assistant = {"role": "assistant", "content": c.answer, "reasoning": c.reasoning}
            svc.responses.put(StoredResponse(ids["response"], time.time(), svc.model_name,
                                             turns + [assistant], response, caller.key_id))
        return response

    if body.stream:
        events = _events(svc, body, head, ids, generation, prompt_tokens, finish, owner)
        return StreamingResponse(events, media_type="text/event-stream", headers=caller.headers)
    async for _, event in merged_events([generation]):
        if isinstance(event, Failed):
            raise failure(event.error, ids["response"])
        if isinstance(event, Done):
            return JSONResponse(finish(event.completion), headers=caller.headers)


async def _events(svc: Services, body: ResponsesRequest, head: dict, ids: dict, generation, prompt_tokens: int,
                  finish, owner: str) -> AsyncIterator[str]:
    seq = 0

    def event(kind: str, **data) -> str:
        nonlocal seq
        seq += 1
        return sse({"type": kind, "sequence_number": seq - 1, **data}, event=kind)

    start = _response(svc, body, head, prompt_tokens, None, [])
    yield event("response.created", response=start)
    yield event("response.in_progress", response=start)
    yield event("response.output_item.added", output_index=0, item={"type": "reasoning", "id": ids["reasoning"], "summary": []})
    reasoning_text, reasoning_item, message_open = "", None, False
    message = {"type": "message", "id": ids["message"], "status": "in_progress", "role": "assistant", "content": []}
    text_at = {"item_id": ids["message"], "output_index": 1, "content_index": 0}
    try:
        async for _, ev in merged_events([generation]):
            if isinstance(ev, TextDelta) and ev.kind == "reasoning":
                reasoning_text += ev.text  # server-side only: it feeds the summary and the seal
                continue
            if isinstance(ev, Failed):
                raise ev.error
            if reasoning_item is None:  # the reasoning ends at its tag, at the first answer text, or at the end
                if isinstance(ev, Done):
                    reasoning_text, tokens = ev.completion.reasoning, ev.completion.reasoning_tokens
                else:
                    tokens = ev.tokens if isinstance(ev, ReasoningEnd) else 0  # answer text: budget 0
                reasoning_item = _reasoning_item(svc, body, ids, reasoning_text, tokens, owner)
                for e in _summary_events(event, reasoning_item, ids):
                    yield e
                yield event("response.output_item.done", output_index=0, item=reasoning_item)
            if isinstance(ev, TextDelta):
                if not message_open:
                    message_open = True
                    yield event("response.output_item.added", output_index=1, item=message)
                    yield event("response.content_part.added", **text_at, part={"type": "output_text", "text": "", "annotations": []})
                yield event("response.output_text.delta", **text_at, delta=ev.text, logprobs=[])
            elif isinstance(ev, Done):
                response = finish(ev.completion, reasoning_item)
                if len(response["output"]) > 1:
                    if not message_open:
                        yield event("response.output_item.added", output_index=1, item=message)
                        yield event("response.content_part.added", **text_at, part={"type": "output_text", "text": "", "annotations": []})
                    final = response["output"][1]
                    yield event("response.output_text.done", **text_at, text=final["content"][0]["text"], logprobs=[])
                    yield event("response.content_part.done", **text_at, part=final["content"][0])
                    yield event("response.output_item.done", output_index=1, item=final)
                kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
                yield event(kind, response=response)
    except Exception as error:
        reported = failure_body(error, ids["response"])["error"]
        failed = {**start, "status": "failed", "error": {"code": reported["code"], "message": reported["message"]}}
        yield event("response.failed", response=failed)


def _summary_events(event, reasoning_item: dict, ids: dict):
    for i, part in enumerate(reasoning_item["summary"]):
        common = {"item_id": ids["reasoning"], "output_index": 0, "summary_index": i}
        yield event("response.reasoning_summary_part.added", **common, part={"type": "summary_text", "text": ""})
        yield event("response.reasoning_summary_text.delta", **common, delta=part["text"])
        yield event("response.reasoning_summary_text.done", **common, text=part["text"])
        yield event("response.reasoning_summary_part.done", **common, part=part)


def _owned(request: Request, response_id: str):
    svc: Services = request.app.state.services
    key = svc.authenticate(request)
    return svc, key.id if key else None


async def get_response(response_id: str, request: Request):
    svc, key_id = _owned(request, response_id)
    stored = svc.responses.get(response_id, key_id)
    if stored is None:
        raise APIError(404, f"Response with id '{response_id}' not found.", "response_id", "not_found")
    return JSONResponse(stored.response)


async def delete_response(response_id: str, request: Request):
    svc, key_id = _owned(request, response_id)
    if not svc.responses.delete(response_id, key_id):
        raise APIError(404, f"Response with id '{response_id}' not found.", "response_id", "not_found")
    return {"id": response_id, "object": "response.deleted", "deleted": True}
