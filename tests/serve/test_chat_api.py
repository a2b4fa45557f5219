"""/v1/chat/completions through the official openai client against a real server."""

import pytest

from ponder.serve.settings import ServeConfig

from tests.serve.conftest import MODEL, running_server

Q = [{"role": "user", "content": "What is 347 * 29?"}]


def ask(client, **kw):
    return client.chat.completions.create(**{"model": MODEL, "messages": Q, "temperature": 0, **kw})


def test_plain_completion_answers_and_bills_hidden_reasoning(client, server):
    _, services = server
    r = ask(client, reasoning_effort="high")
    choice = r.choices[0]
    assert choice.message.content == "10063" and choice.finish_reason == "stop"
    assert r.object == "chat.completion" and r.model == MODEL
    reasoning = r.usage.completion_tokens_details.reasoning_tokens
    # What the engine produced for the same request, token for token.
    engine = services.backend.engine
    from ponder.engine.base import SamplingParams
    from ponder.model.chat import Message
    direct = engine.generate([[Message("user", Q[0]["content"])]], SamplingParams(max_completion_tokens=engine.context_length))[0]
    assert reasoning == direct.reasoning_tokens > 0
    assert r.usage.completion_tokens == direct.completion_tokens == reasoning + direct.answer_tokens
    assert r.usage.prompt_tokens == direct.prompt_tokens
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert getattr(choice.message, "reasoning", None) is None  # hidden unless asked for


def test_streamed_completion_with_usage_chunk(client):
    plain = ask(client)
    chunks = list(ask(client, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == plain.usage.completion_tokens
    assert last.usage.completion_tokens_details.reasoning_tokens == plain.usage.completion_tokens_details.reasoning_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_sends_no_usage(client):
    chunks = list(ask(client, stream=True))
    assert all(c.usage is None and c.choices for c in chunks)


def test_max_completion_tokens_spent_on_reasoning_gives_length_and_empty_content(client):
    r = ask(client, max_completion_tokens=20, reasoning_effort="high")
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.content == ""
    assert r.usage.completion_tokens == 20 == r.usage.completion_tokens_details.reasoning_tokens


def test_max_tokens_is_an_alias_by_default(client):
    r = ask(client, max_tokens=20, reasoning_effort="high")
    assert r.usage.completion_tokens == 20


def test_effort_changes_reasoning_length(client):
    tokens = {e: ask(client, reasoning_effort=e).usage.completion_tokens_details.reasoning_tokens
              for e in ("none", "minimal", "low", "high")}
    assert tokens["none"] == 0
    assert tokens["minimal"] <= 16 and tokens["low"] <= 64
    assert tokens["none"] < tokens["minimal"] < tokens["low"] < tokens["high"]


def test_n_choices_with_a_seed_are_the_requests_seeded_seed_plus_index(client):
    kw = dict(temperature=2.0, reasoning_effort="low")
    both = ask(client, n=3, seed=7, **kw)
    alone = [ask(client, n=1, seed=7 + i, extra_body={"include_reasoning": True}, **kw) for i in range(3)]
    assert [c.index for c in both.choices] == [0, 1, 2]
    assert [c.message.content for c in both.choices] == [a.choices[0].message.content for a in alone]
    assert both.usage.completion_tokens == sum(a.usage.completion_tokens for a in alone)
    assert both.usage.prompt_tokens == alone[0].usage.prompt_tokens  # the prompt is billed once
    # Seeds 7, 8 and 9 sample different chains, so the choices are not copies of one sample.
    assert len({a.choices[0].message.reasoning for a in alone}) > 1


def test_developer_and_system_messages_are_accepted(client):
    for role in ("developer", "system"):
        r = client.chat.completions.create(model=MODEL, temperature=0, messages=[
            {"role": role, "content": "Answer with the number only."}, *Q])
        assert r.choices[0].message.content


def test_stop_user_and_metadata(client):
    r = ask(client, stop=["0"], user="alice", metadata={"team": "ponder"})
    assert r.choices[0].message.content == "1"  # "10063" cut at the first "0"
    assert r.choices[0].finish_reason == "stop"


def test_streamed_n_choices_interleave_and_each_finish(client):
    chunks = list(ask(client, n=2, seed=1, temperature=1.0, stream=True, reasoning_effort="low"))
    finished = sorted(c.choices[0].index for c in chunks if c.choices and c.choices[0].finish_reason)
    assert finished == [0, 1]


def test_reasoning_is_returned_only_when_allowed_and_asked(client, tmp_path):
    r = ask(client, extra_body={"include_reasoning": True})
    assert "347" in r.choices[0].message.reasoning
    chunks = list(ask(client, stream=True, extra_body={"include_reasoning": True}))
    streamed = "".join(getattr(c.choices[0].delta, "reasoning", None) or "" for c in chunks if c.choices)
    assert streamed == r.choices[0].message.reasoning
    import openai
    with running_server(ServeConfig(db=str(tmp_path / "s.db"))) as (url, _):
        strict = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.PermissionDeniedError, match="allow-reasoning"):
            ask(strict, extra_body={"include_reasoning": True})


def test_a_stream_the_client_abandons_is_still_billed_for_what_it_generated(client, server):
    import time

    _, services = server
    stream = ask(client, stream=True, reasoning_effort="high", max_completion_tokens=400,
                 messages=[{"role": "user", "content": "What is 98765 * 4321?"}])
    first = next(iter(stream))
    stream.close()
    deadline = time.time() + 10
    while not (rows := [r for r in services.ledger.rows() if r.request_id == first.id]) and time.time() < deadline:
        time.sleep(0.05)
    assert len(rows) == 1
    assert rows[0].status in ("cancelled", "completed")  # it may finish before the server notices
    assert rows[0].completion_tokens >= rows[0].reasoning_tokens > 0


def test_threads_auto_picks_one_for_a_tiny_model_and_respects_an_explicit_count(tiny_model, tok):
    import torch

    from ponder.engine.native import NativeEngine
    from ponder.serve.run import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(0, NativeEngine(tiny_model, tok))
        assert torch.get_num_threads() == 1
        set_threads(2, NativeEngine(tiny_model, tok))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        ServeConfig(threads=-1)
