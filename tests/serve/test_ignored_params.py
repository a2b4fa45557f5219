"""OpenAI parameters that SDKs and frameworks send, through the official client: the ones ponder
ignores get a 200, the ones it can't honour a 400 naming them, a misspelt one a 400
`unknown_parameter`; and docs/api-parameters.md lists every parameter the server knows."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest

from ponder.serve.protocol import ChatCompletionRequest, ResponsesRequest

from tests.serve.conftest import MODEL

Q = [{"role": "user", "content": "What is 2 + 2?"}]
DOC = Path(__file__).parents[2] / "docs" / "api-parameters.md"

# Fast requests: no reasoning, a few tokens.
CHAT_BASE = {"model": MODEL, "messages": Q, "reasoning_effort": "none", "max_completion_tokens": 8}
RESPONSES_BASE = {"model": MODEL, "input": "What is 2 + 2?", "reasoning": {"effort": "none"}, "max_output_tokens": 8}

CHAT_IGNORED = [
    {"service_tier": "flex"},
    {"service_tier": "priority"},
    {"prompt_cache_key": "tenant-42"},
    {"prompt_cache_retention": "24h"},
    {"prompt_cache_options": {"mode": "explicit", "ttl": "30m"}},
    {"safety_identifier": "user-5f2b"},
    {"verbosity": "low"},
    {"parallel_tool_calls": False},
    {"prediction": {"type": "content", "content": "4"}},
    {"store": True, "metadata": {"team": "a"}, "user": "u1"},
    # What a refused parameter's default looks like: it asks for nothing.
    {"tools": [], "tool_choice": "none", "functions": [], "function_call": "auto"},
    {"modalities": ["text"], "audio": None, "response_format": {"type": "text"}},
    {"logit_bias": {}, "frequency_penalty": 0, "presence_penalty": 0.0, "logprobs": False},
    # null means the default, as with OpenAI.
    {"temperature": None, "top_p": None, "n": None, "stream": None},
]

RESPONSES_IGNORED = [
    {"service_tier": "ultrafast"},
    {"prompt_cache_key": "tenant-42", "prompt_cache_retention": "in_memory"},
    {"prompt_cache_options": {"mode": "implicit", "ttl": "12h", "prewarm": False}},
    {"safety_identifier": "user-5f2b"},
    {"text": {"format": {"type": "text"}, "verbosity": "high"}},
    {"parallel_tool_calls": True, "max_tool_calls": 2, "tools": [], "tool_choice": "auto"},
    {"reasoning": {"effort": "none", "context": "all_turns", "mode": "standard"}},
    {"background": False, "background_options": {"completion_window": "soonest"}, "truncation": "disabled"},
    {"access_programs": {"cyber": "standard"}, "image": {"context_compression": "auto"}},
    {"context_management": [], "conversation": None, "prompt": None, "moderation": None},
    {"temperature": None, "top_p": None, "store": None, "stream": None},
]


def _call(create, base: dict, fields: dict):
    """The base request with `fields` set or replaced, each through the SDK's own keyword argument
    (the SDK knows them all), as an application would send them."""
    return create(**{**base, **fields})


@pytest.mark.parametrize("fields", CHAT_IGNORED, ids=lambda f: ",".join(f))
def test_chat_accepts_and_ignores(client, fields):
    r = _call(client.chat.completions.create, CHAT_BASE, fields)
    assert r.choices[0].message.content is not None and r.usage.completion_tokens > 0
    assert r.service_tier == "default"  # one tier here, whatever was asked


@pytest.mark.parametrize("fields", RESPONSES_IGNORED, ids=lambda f: ",".join(f))
def test_responses_accepts_and_ignores(client, fields):
    r = _call(client.responses.create, RESPONSES_BASE, fields)
    assert r.status in ("completed", "incomplete") and r.usage.output_tokens > 0


def test_stream_obfuscation_is_accepted_and_no_padding_is_sent(client):
    chunks = list(client.chat.completions.create(**CHAT_BASE, stream=True,
                                                 stream_options={"include_obfuscation": True, "include_usage": True}))
    assert chunks[-1].usage is not None
    assert not any("obfuscation" in (c.model_extra or {}) for c in chunks)
    events = list(client.responses.create(**RESPONSES_BASE, stream=True, stream_options={"include_obfuscation": False}))
    assert events[-1].type in ("response.completed", "response.incomplete")


def _refused(call, param: str, code: str = "invalid_value") -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as caught:
        call()
    error = caught.value.body
    assert (error["param"], error["code"]) == (param, code), error
    assert caught.value.response.json()["error"]["message"].strip()
    return caught.value


TOOL = {"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize("fields, param, says", [
    ({"tools": [TOOL]}, "tools", "tools"),
    ({"tool_choice": "required"}, "tool_choice", "tools"),
    ({"functions": [TOOL["function"]]}, "functions", "tools"),
    ({"function_call": {"name": "add"}}, "function_call", "tools"),
    ({"audio": {"voice": "alloy", "format": "wav"}}, "audio", "text"),
    ({"modalities": ["text", "audio"]}, "modalities", "text"),
    ({"logit_bias": {"50": 10}}, "logit_bias", "logit_bias"),
    ({"frequency_penalty": 0.5}, "frequency_penalty", "frequency_penalty"),
    ({"presence_penalty": -1}, "presence_penalty", "presence_penalty"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
     "response_format.type", "structured outputs"),
    ({"response_format": {"type": "json_object"}}, "response_format.type", "structured outputs"),
    ({"web_search_options": {"search_context_size": "low"}}, "web_search_options", "web search"),
    ({"moderation": {"model": "omni-moderation-latest"}}, "moderation", "moderat"),
])
def test_chat_refuses_what_it_cannot_honour(client, fields, param, says):
    err = _refused(lambda: _call(client.chat.completions.create, CHAT_BASE, fields), param)
    assert says in err.message and param.split(".")[0] in err.message


def test_chat_refuses_logprobs(client):
    _refused(lambda: client.chat.completions.create(**CHAT_BASE, logprobs=True), "logprobs", "unsupported_parameter")


@pytest.mark.parametrize("fields, param, says", [
    ({"tools": [{"type": "web_search"}]}, "tools", "tools"),
    ({"tool_choice": {"type": "function", "name": "add"}}, "tool_choice", "tools"),
    ({"text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}, "strict": True}}},
     "text.format.type", "structured outputs"),
    ({"truncation": "auto"}, "truncation", "context_length_exceeded"),
    ({"background": True}, "background", "background"),
    ({"conversation": "conv_123"}, "conversation", "previous_response_id"),
    ({"context_management": [{"type": "compaction", "compact_threshold": 1000}]}, "context_management", "compaction"),
    ({"prompt": {"id": "pmpt_123"}}, "prompt", "prompt"),
    ({"prompt_cache_options": {"prewarm": True}}, "prompt_cache_options.prewarm", "prewarm"),
    ({"include": ["message.output_text.logprobs"]}, "include[0]", None),
])
def test_responses_refuse_what_they_cannot_honour(client, fields, param, says):
    err = _refused(lambda: _call(client.responses.create, RESPONSES_BASE, fields), param)
    assert says is None or says in err.message


@pytest.mark.parametrize("path, fields, param", [
    ("chat", {"service_tier": "turbo"}, "service_tier"),
    ("chat", {"service_tier": "ultrafast"}, "service_tier"),  # a Responses-only tier
    ("chat", {"verbosity": "max"}, "verbosity"),
    ("chat", {"prompt_cache_retention": "1h"}, "prompt_cache_retention"),
    ("chat", {"prompt_cache_options": {"ttl": "12h"}}, "prompt_cache_options.ttl"),  # Responses-only
    ("chat", {"safety_identifier": "x" * 129}, "safety_identifier"),
    ("chat", {"prediction": {"type": "diff", "content": "4"}}, "prediction.type"),
    ("responses", {"text": {"verbosity": "loud"}}, "text.verbosity"),
    ("responses", {"reasoning": {"context": "everything"}}, "reasoning.context"),
    ("responses", {"access_programs": {"cyber": "red"}}, "access_programs.cyber"),
    ("responses", {"max_tool_calls": -1}, "max_tool_calls"),
])
def test_ignored_parameters_still_have_their_values_checked(client, path, fields, param):
    create, base = ((client.chat.completions.create, CHAT_BASE) if path == "chat"
                    else (client.responses.create, RESPONSES_BASE))
    err = _refused(lambda: _call(create, base, fields), param)
    assert param in err.message


@pytest.mark.parametrize("path, fields, param", [
    ("chat", {"stream_options": {"include_obfuscation": "no"}}, "stream_options.include_obfuscation"),
    ("chat", {"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ("chat", {"prompt_cache_key": 42}, "prompt_cache_key"),
    ("responses", {"stream_options": {"include_obfuscation": 1}}, "stream_options.include_obfuscation"),
    ("responses", {"background": "false"}, "background"),
])
def test_ignored_parameters_still_have_their_types_checked(client, path, fields, param):
    create, base = ((client.chat.completions.create, CHAT_BASE) if path == "chat"
                    else (client.responses.create, RESPONSES_BASE))
    _refused(lambda: create(**base, extra_body=fields), param, "invalid_type")


@pytest.mark.parametrize("path, fields, param", [
    ("chat", {"service_teir": "flex"}, "service_teir"),
    ("chat", {"prompt_cache_keys": "k"}, "prompt_cache_keys"),
    ("chat", {"verbocity": "low"}, "verbocity"),
    ("chat", {"stream_options": {"include_obfuscatoin": False}}, "stream_options.include_obfuscatoin"),
    ("chat", {"top_logprobs": 0}, "top_logprobs"),
    ("responses", {"safety_identifer": "u"}, "safety_identifer"),
    ("responses", {"verbosity": "low"}, "verbosity"),  # it lives under text. in the Responses API
    ("responses", {"text": {"verbosty": "low"}}, "text.verbosty"),
    ("responses", {"stream_options": {"include_usage": True}}, "stream_options.include_usage"),  # chat only
])
def test_a_misspelt_parameter_is_still_a_400_naming_it(client, path, fields, param):
    create, base = ((client.chat.completions.create, CHAT_BASE) if path == "chat"
                    else (client.responses.create, RESPONSES_BASE))
    err = _refused(lambda: create(**base, extra_body=fields), param, "unknown_parameter")
    assert param.split(".")[-1] in err.message


def _documented(endpoint: str) -> set[str]:
    """The top-level names in the doc's table rows for `endpoint`."""
    names = set()
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1] == endpoint:
            names |= {re.split(r"[.\[]", name)[0] for name in re.findall(r"`([^`]+)`", cells[0])}
    return names


@pytest.mark.parametrize("endpoint, model", [("chat", ChatCompletionRequest), ("responses", ResponsesRequest)])
def test_every_parameter_the_server_knows_is_documented(endpoint, model):
    known = set(model.model_fields)
    documented = _documented(endpoint)
    assert known - documented == set(), "add these to docs/api-parameters.md"
    # The only documented names the model lacks are the ones refused as unknown.
    assert documented - known == {"top_logprobs"}
