"""Every failure is OpenAI-shaped: `{"error": {message, type, param, code}}` with OpenAI's status,
so the official client raises the matching class; nothing a client sends becomes a 5xx.

Requests the client can send go through `openai.OpenAI`; malformed bodies, wrong methods and
unknown URLs go through raw httpx (the `httpx2` package the openai client is built on).
"""

from __future__ import annotations

import json

import httpx2 as httpx
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ponder.serve.protocol import ChatCompletionRequest, ResponsesRequest
from ponder.serve.settings import ServeConfig

from tests.serve.conftest import MODEL, running_server

Q = [{"role": "user", "content": "What is 2 + 2?"}]
CHAT, RESPONSES = "/v1/chat/completions", "/v1/responses"
SEEN: list[tuple[str, int]] = []  # (request, status) of every answer this module received


def _record(response: httpx.Response) -> None:
    SEEN.append((f"{response.request.method} {response.request.url.path}", response.status_code))


@pytest.fixture(autouse=True)
def _never_a_5xx():
    """Whatever a test sends, no answer it gets is a 5xx."""
    start = len(SEEN)
    yield
    bad = [seen for seen in SEEN[start:] if seen[1] >= 500]
    assert not bad, f"server errors: {bad}"


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A second server: small bodies only, max_tokens refused, reasoning never revealed."""
    db = tmp_path_factory.mktemp("strict") / "serve.db"
    with running_server(ServeConfig(db=str(db), max_body_bytes=2048, max_tokens="reject")) as (url, services):
        yield url, services


def _openai(url: str) -> openai.OpenAI:
    http = httpx.Client(timeout=60, event_hooks={"response": [_record]})
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, http_client=http)


@pytest.fixture
def api(server):
    return _openai(server[0])


@pytest.fixture
def raw(server):
    # A real client's header: the keyless server refuses bodies of any other type.
    with httpx.Client(base_url=server[0], timeout=60, event_hooks={"response": [_record]},
                      headers={"Content-Type": "application/json"}) as client:
        yield client


def error_of(response: httpx.Response, status: int, code: str | None = None, param: str | None = "*") -> dict:
    """The error object of an answer that must be `status`, checked for OpenAI's exact shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"].strip()
    assert isinstance(error["type"], str) and error["type"]
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)
    if code is not None:
        assert error["code"] == code, error
    if param != "*":
        assert error["param"] == param, error
    return error


def chat(**fields) -> dict:
    return {"model": MODEL, "messages": Q, **fields}


def raises(cls, call, code: str | None, param: str | None = "*", status: int | None = None):
    """Run an openai client call that must raise `cls` (exactly) with this code and param."""
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    err = caught.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    if status is not None:
        assert err.status_code == status
    error_of(err.response, err.status_code, code, param)
    return err


# ---- bodies that are not a request at all -------------------------------------------------------

@pytest.mark.parametrize("content", [b'{"model": ', b"", b"\xff\xfe{}", b"{'model': 1}", b'{"a": 1} trailing'])
def test_malformed_json_is_400_invalid_json(raw, content):
    error = error_of(raw.post(CHAT, content=content), 400, "invalid_json", None)
    assert error["type"] == "invalid_request_error"
    error_of(raw.post(RESPONSES, content=content), 400, "invalid_json", None)


@pytest.mark.parametrize("content", [b"[]", b'[{"model": "x"}]', b"null", b"3", b'"text"', b"true"])
def test_a_json_body_that_is_not_an_object_is_400(raw, content):
    for path in (CHAT, RESPONSES):
        error = error_of(raw.post(path, content=content), 400, "invalid_type", None)
        assert "object" in error["message"]


# ---- fields ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, param", [
    ({"temperature": "hot"}, "temperature"),
    ({"n": "x"}, "n"),
    ({"messages": "hi"}, "messages"),
    ({"model": 5}, "model"),
    ({"stream": "sometimes"}, "stream"),
    ({"metadata": {"team": 1}}, "metadata.team"),
])
def test_wrong_types_are_400_naming_the_field(raw, fields, param):
    error = error_of(raw.post(CHAT, json=chat(**fields)), 400, None, param)
    assert error["code"] in ("invalid_type", "invalid_value")
    assert param in error["message"]


def test_a_list_where_a_string_belongs_is_invalid_type(raw):
    error_of(raw.post(CHAT, json=chat(messages="hi")), 400, "invalid_type", "messages")


# Was invalid_value: pydantic's float_parsing/int_parsing were not mapped to invalid_type.
@pytest.mark.parametrize("fields", [{"temperature": "hot"}, {"n": "x"}])
def test_an_unparsable_string_for_a_number_is_invalid_type(raw, fields):
    error_of(raw.post(CHAT, json=chat(**fields)), 400, "invalid_type", next(iter(fields)))


# Was a 200: lax pydantic coercion took true or "0.5" for a number, where OpenAI answers 400.
@pytest.mark.parametrize("fields", [{"temperature": True}, {"temperature": "0.5"}, {"n": "1"}])
def test_a_bool_or_numeric_string_for_a_number_is_refused(raw, fields):
    error_of(raw.post(CHAT, json=chat(max_completion_tokens=4, **fields)), 400, "invalid_type", next(iter(fields)))


# Was param 'messages.0.content.str', 'stop.str', 'input.str': the union member pydantic tried.
@pytest.mark.parametrize("path, body, params", [
    (CHAT, chat(messages=[{"role": "user", "content": 5}]), ("messages.0.content", "messages[0].content")),
    (CHAT, chat(stop=7), ("stop",)),
    (RESPONSES, {"model": MODEL, "input": 5}, ("input",)),
])
def test_a_wrong_type_in_a_union_names_the_field(raw, path, body, params):
    assert error_of(raw.post(path, json=body), 400)["param"] in params


def test_unknown_fields_are_400_unknown_parameter_naming_them(api, raw):
    err = raises(openai.BadRequestError, lambda: api.chat.completions.create(
        model=MODEL, messages=Q, extra_body={"frobnicate": 1}), "unknown_parameter", "frobnicate")
    assert "frobnicate" in err.message
    error_of(raw.post(CHAT, json=chat(top_logprobs=2)), 400, "unknown_parameter", "top_logprobs")
    error_of(raw.post(RESPONSES, json={"model": MODEL, "input": "hi", "verbosity": "low"}),
             400, "unknown_parameter", "verbosity")
    nested = error_of(raw.post(CHAT, json=chat(messages=[{"role": "user", "content": "hi", "mood": "x"}])),
                      400, "unknown_parameter")
    assert "mood" in nested["param"]


@pytest.mark.parametrize("path, body, param", [
    (CHAT, {"model": MODEL}, "messages"),
    (CHAT, {"messages": Q}, "model"),
    (RESPONSES, {"model": MODEL}, "input"),
    (RESPONSES, {"input": "hi"}, "model"),
    # Only an assistant turn may leave its content out, as OpenAI answers.
    (CHAT, {"model": MODEL, "messages": [{"role": "user"}]}, "messages[0].content"),
    (CHAT, {"model": MODEL, "messages": [{"role": "developer", "content": None}, *Q]}, "messages[0].content"),
])
def test_missing_required_fields_are_400(raw, path, body, param):
    error = error_of(raw.post(path, json=body), 400, "missing_required_parameter", param)
    assert param in error["message"]


@pytest.mark.parametrize("fields, param", [
    ({"temperature": 3}, "temperature"),
    ({"temperature": -0.1}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"n": 0}, "n"),
    ({"n": 17}, "n"),
    ({"max_completion_tokens": 0}, "max_completion_tokens"),
    ({"max_tokens": -1}, "max_tokens"),
    ({"messages": []}, "messages"),
])
def test_out_of_range_values_are_400_invalid_value(api, fields, param):
    raises(openai.BadRequestError, lambda: api.chat.completions.create(**{"model": MODEL, "messages": Q, **fields}),
           "invalid_value", param)


def test_out_of_range_values_on_responses(raw):
    for fields, param in (({"temperature": 2.5}, "temperature"), ({"max_output_tokens": 0}, "max_output_tokens"),
                          ({"top_p": 0}, "top_p")):
        error_of(raw.post(RESPONSES, json={"model": MODEL, "input": "hi", **fields}), 400, "invalid_value", param)


def test_an_unknown_role_is_400_naming_the_role(api):
    err = raises(openai.BadRequestError, lambda: api.chat.completions.create(
        model=MODEL, messages=[{"role": "robot", "content": "hi"}]), "invalid_value")
    assert err.param.startswith("messages") and err.param.endswith("role")
    assert "'user'" in err.message


def test_a_stop_list_of_five_is_400(api):
    err = raises(openai.BadRequestError, lambda: api.chat.completions.create(
        model=MODEL, messages=Q, stop=["a", "b", "c", "d", "e"]), "invalid_value", "stop")
    assert "4" in err.message
    raises(openai.BadRequestError, lambda: api.chat.completions.create(model=MODEL, messages=Q, stop=""),
           "invalid_value", "stop")


def test_reasoning_effort_xhigh_is_unsupported_and_bogus_is_invalid(api, raw):
    err = raises(openai.BadRequestError, lambda: api.chat.completions.create(
        model=MODEL, messages=Q, reasoning_effort="xhigh"), "unsupported_value", "reasoning_effort")
    assert "'high'" in err.message
    raises(openai.BadRequestError, lambda: api.chat.completions.create(
        model=MODEL, messages=Q, reasoning_effort="bogus"), "invalid_value", "reasoning_effort")
    raises(openai.BadRequestError, lambda: api.responses.create(
        model=MODEL, input="hi", reasoning={"effort": "xhigh"}), "unsupported_value", "reasoning.effort")
    error_of(raw.post(RESPONSES, json={"model": MODEL, "input": "hi", "reasoning": {"effort": "bogus"}}),
             400, "invalid_value", "reasoning.effort")


def test_logprobs_are_unsupported(api):
    err = raises(openai.BadRequestError, lambda: api.chat.completions.create(model=MODEL, messages=Q, logprobs=True),
                 "unsupported_parameter", "logprobs")
    assert "logprobs" in err.message


def test_both_max_tokens_and_max_completion_tokens_is_400(api):
    err = raises(openai.BadRequestError, lambda: api.chat.completions.create(
        model=MODEL, messages=Q, max_tokens=5, max_completion_tokens=5), "invalid_value", "max_tokens")
    assert "max_completion_tokens" in err.message


def test_max_tokens_is_refused_when_configured(strict):
    api = _openai(strict[0])
    err = raises(openai.BadRequestError, lambda: api.chat.completions.create(model=MODEL, messages=Q, max_tokens=5),
                 "unsupported_parameter", "max_tokens")
    assert "max_completion_tokens" in err.message
    ok = api.chat.completions.create(model=MODEL, messages=Q, max_completion_tokens=5)
    assert ok.usage.completion_tokens <= 5


def test_include_reasoning_is_403_where_not_allowed(strict):
    api = _openai(strict[0])
    raises(openai.PermissionDeniedError, lambda: api.chat.completions.create(
        model=MODEL, messages=Q, extra_body={"include_reasoning": True}), "reasoning_not_allowed",
           "include_reasoning")


# ---- models, URLs, methods, sizes -------------------------------------------------------------------

def test_an_unknown_model_is_404_model_not_found(api):
    err = raises(openai.NotFoundError, lambda: api.chat.completions.create(model="gpt-9", messages=Q),
                 "model_not_found", "model")
    assert "gpt-9" in err.message and MODEL in err.message
    raises(openai.NotFoundError, lambda: api.responses.create(model="gpt-9", input="hi"), "model_not_found", "model")
    raises(openai.NotFoundError, lambda: api.models.retrieve("gpt-9"), "model_not_found", "model")
    assert api.models.retrieve(MODEL).id == MODEL


@pytest.mark.parametrize("method, path", [("GET", "/v1/nope"), ("POST", "/v1/completions"), ("GET", "/"),
                                          ("POST", "/v1/chat/completions/extra")])
def test_an_unknown_url_is_404(raw, method, path):
    error = error_of(raw.request(method, path), 404, "unknown_url", None)
    assert path in error["message"]


@pytest.mark.parametrize("method, path", [("GET", CHAT), ("PUT", CHAT), ("GET", RESPONSES),
                                          ("PATCH", "/v1/responses/resp_1"), ("POST", "/v1/models")])
def test_a_wrong_method_is_405(raw, method, path):
    error_of(raw.request(method, path), 405, "method_not_allowed", None)


def test_an_oversized_body_is_413(strict):
    api = _openai(strict[0])
    big = [{"role": "user", "content": "x" * 4000}]
    err = raises(openai.APIStatusError, lambda: api.chat.completions.create(model=MODEL, messages=big),
                 "request_too_large", None, status=413)
    assert "2048" in err.message
    with httpx.Client(base_url=strict[0], timeout=60, event_hooks={"response": [_record]}) as raw:
        error_of(raw.post(RESPONSES, json={"model": MODEL, "input": "x" * 4000}), 413, "request_too_large", None)


def test_a_prompt_beyond_the_context_is_400_context_length_exceeded(api):
    long = [{"role": "user", "content": "1 + 2 " * 200}]  # about 1000 tokens; the context is 512
    err = raises(openai.BadRequestError, lambda: api.chat.completions.create(model=MODEL, messages=long),
                 "context_length_exceeded", "messages")
    assert "512" in err.message
    raises(openai.BadRequestError, lambda: api.responses.create(model=MODEL, input="1 + 2 " * 200),
           "context_length_exceeded", "messages")


# ---- the Responses API ----------------------------------------------------------------------------

def test_an_unknown_previous_response_id_is_404(api, raw):
    err = raises(openai.NotFoundError, lambda: api.responses.create(
        model=MODEL, input="hi", previous_response_id="resp_nope"), "previous_response_not_found",
        "previous_response_id")
    assert "resp_nope" in err.message
    raises(openai.NotFoundError, lambda: api.responses.retrieve("resp_nope"), "not_found", "response_id")
    error_of(raw.delete("/v1/responses/resp_nope"), 404, "not_found", "response_id")


def _tamper_middle(blob: str) -> str:
    i = len(blob) // 2
    return blob[:i] + ("A" if blob[i] != "A" else "B") + blob[i + 1:]


@pytest.mark.parametrize("tamper", [
    _tamper_middle,
    lambda blob: blob[:-6],
    lambda blob: blob + "AAAA",
    lambda blob: "ponder0:" + blob.split(":", 1)[1],
    lambda blob: blob.replace("ponder1:", "ponder1:!"),
    lambda blob: "",
], ids=["flipped", "truncated", "extended", "prefix", "alphabet", "empty"])
def test_tampered_encrypted_content_is_400(api, tamper):
    first = api.responses.create(model=MODEL, input="What is 2 + 2?", temperature=0, max_output_tokens=24,
                                 reasoning={"effort": "minimal"}, include=["reasoning.encrypted_content"])
    item = next(o for o in first.output if o.type == "reasoning")
    answer = next(o for o in first.output if o.type == "message")
    blob = tamper(item.encrypted_content)
    turn = [{"type": "reasoning", "id": item.id, "summary": [], "encrypted_content": blob},
            {"role": "assistant", "content": answer.content[0].text}, {"role": "user", "content": "And 3 + 3?"}]
    code = "missing_required_parameter" if not blob else "invalid_encrypted_content"
    err = raises(openai.BadRequestError, lambda: api.responses.create(model=MODEL, input=turn),
                 code, "input[0].encrypted_content")
    # The untampered blob goes through.
    turn[0]["encrypted_content"] = item.encrypted_content
    assert api.responses.create(model=MODEL, input=turn, max_output_tokens=8).status in ("completed", "incomplete")
    assert err.status_code == 400


def test_tools_are_refused(api):
    tool = {"type": "function", "name": "add", "parameters": {"type": "object", "properties": {}}}
    err = raises(openai.BadRequestError, lambda: api.responses.create(model=MODEL, input="hi", tools=[tool]),
                 "invalid_value", "tools")
    assert "tools" in err.message


def test_a_bad_reasoning_summary_is_400(api, raw):
    raises(openai.BadRequestError,
           lambda: api.responses.create(model=MODEL, input="hi", reasoning={"summary": "verbose"}),
           "invalid_value", "reasoning.summary")
    error_of(raw.post(RESPONSES, json={"model": MODEL, "input": "hi", "reasoning": {"generate_summary": 1}}),
             400, None, "reasoning.generate_summary")
    error_of(raw.post(RESPONSES, json={"model": MODEL, "input": "hi", "include": ["file_search_call.results"]}),
             400, "invalid_value")


# ---- bodies that once made a 5xx -------------------------------------------------------------------

def _fresh_post(url: str, path: str, **kw) -> httpx.Response:
    # A new connection each time: after a 500 uvicorn drops the connection it came on.
    response = httpx.post(url + path, timeout=60, headers={"Content-Type": "application/json"}, **kw)
    _record(response)
    return response


# Was a 500: a seed beyond [-2**63, 2**64-1] (or seed+i, for the i-th of n choices) reached
# torch.Generator.manual_seed.
@pytest.mark.parametrize("path, body", [
    (CHAT, chat(seed=2**70, max_completion_tokens=4)),
    (CHAT, chat(seed=-(2**64), max_completion_tokens=4)),
    (CHAT, chat(seed=2**64 - 1, n=2, max_completion_tokens=4)),
    (RESPONSES, {"model": MODEL, "input": "hi", "seed": 2**70, "max_output_tokens": 4}),
], ids=["chat-huge", "chat-negative", "chat-n-overflow", "responses-huge"])
def test_an_out_of_range_seed_is_not_a_server_error(server, path, body):
    response = _fresh_post(server[0], path, json=body)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        error_of(response, 400, None, "seed")


# Was a 500: json.loads raises RecursionError on deep nesting and ValueError on an integer of over
# 4300 digits, and Services.parse caught only JSONDecodeError and UnicodeDecodeError.
@pytest.mark.parametrize("content", [b"[" * 100_000, b'{"model": "x", "seed": 1' + b"0" * 5000 + b"}"],
                         ids=["deep", "long-int"])
def test_json_the_parser_cannot_take_is_400(server, content):
    error_of(_fresh_post(server[0], CHAT, content=content), 400)


# Was a 500: a lone surrogate escape reached the tokenizer (content, input: TypeError), the JSON
# encoder of the 404 body (model) or ResponseStore.put after the ledger row was written (metadata).
@pytest.mark.parametrize("path, content", [
    (CHAT, b'{"model": "ponder-default", "messages": [{"role": "user", "content": "\\ud800"}]}'),
    (CHAT, b'{"model": "ponder-default\\ud800", "messages": [{"role": "user", "content": "hi"}]}'),
    (RESPONSES, b'{"model": "ponder-default", "input": "\\udfff", "max_output_tokens": 4}'),
    (RESPONSES, b'{"model": "ponder-default", "input": "hi", "metadata": {"k": "\\ud800"}, "max_output_tokens": 4}'),
], ids=["chat-content", "chat-model", "responses-input", "responses-metadata"])
def test_a_lone_surrogate_is_not_a_server_error(server, path, content):
    response = _fresh_post(server[0], path, content=content)
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        error_of(response, 400)


# ---- anything at all ------------------------------------------------------------------------------

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-(2**80), 2**80) | st.floats()
           | st.text(max_size=12))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=10)
# Valid but cheap, so a fuzzed body that stays valid generates only a few tokens.
BASES = {CHAT: chat(max_completion_tokens=4, reasoning_effort="none"),
         RESPONSES: {"model": MODEL, "input": "What is 2 + 2?", "max_output_tokens": 4,
                     "reasoning": {"effort": "none"}}}
FIELDS = {CHAT: sorted(ChatCompletionRequest.model_fields), RESPONSES: sorted(ResponsesRequest.model_fields)}


@st.composite
def requests(draw):
    path = draw(st.sampled_from([CHAT, RESPONSES]))
    kind = draw(st.sampled_from(["json", "bytes", "fields"]))
    if kind == "bytes":
        return path, draw(st.binary(max_size=48))
    if kind == "json":
        value = draw(JSON)
    else:  # a valid request with a few fields replaced by anything
        changes = draw(st.dictionaries(st.sampled_from(FIELDS[path] + ["unknown"]), JSON, min_size=1, max_size=3))
        value = {**BASES[path], **changes}
    return path, json.dumps(value, allow_nan=True).encode()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests())
def test_any_body_gets_a_4xx_or_200_of_the_right_shape(server, request_):
    path, content = request_
    response = httpx.post(server[0] + path, content=content, headers={"Content-Type": "application/json"}, timeout=60)
    _record(response)
    assert response.status_code == 200 or 400 <= response.status_code < 500, response.text
    if response.status_code != 200:
        error_of(response, response.status_code)
    elif response.headers["content-type"].startswith("text/event-stream"):
        events = [json.loads(line[6:]) for line in response.text.splitlines()
                  if line.startswith("data: ") and line != "data: [DONE]"]
        assert events and all("error" not in e for e in events)
        if path == CHAT:
            assert response.text.endswith("data: [DONE]\n\n")
        else:
            assert events[-1]["type"] in ("response.completed", "response.incomplete")
    else:
        body = response.json()
        assert body["object"] == ("chat.completion" if path == CHAT else "response")
        assert body["usage"]
