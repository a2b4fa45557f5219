"""Test-time strategies through the API: named per request, or mapped from an effort level;
every sample drawn is billed."""

import openai
import pytest

from ponder.serve.settings import ServeConfig

from tests.serve.conftest import MODEL, running_server

Q = [{"role": "user", "content": "What is 347 * 29?"}]


def ask(client, **kw):
    return client.chat.completions.create(**{"model": MODEL, "messages": Q, "temperature": 0, **kw})


def test_a_named_strategy_bills_every_sample(client, server):
    one = ask(client, reasoning_effort="high", temperature=0.8, seed=1)
    voted = ask(client, reasoning_effort="high", temperature=0.8, seed=1,
                extra_body={"strategy": "self_consistency", "strategy_params": {"k": 4}})
    assert voted.choices[0].message.content == "10063"
    # Four samples of about one sample's length each, all of them billed and in the ledger.
    assert voted.usage.completion_tokens > 2 * one.usage.completion_tokens
    assert voted.usage.completion_tokens_details.reasoning_tokens > 2 * one.usage.completion_tokens_details.reasoning_tokens
    rows = [r for r in server[1].ledger.rows() if r.request_id == voted.id]
    assert [(r.completion_tokens, r.reasoning_tokens) for r in rows] == [
        (voted.usage.completion_tokens, voted.usage.completion_tokens_details.reasoning_tokens)]


def test_a_strategy_streams_its_answer_and_usage(client):
    kw = dict(reasoning_effort="high", temperature=0.8, seed=2,
              extra_body={"strategy": "self_consistency", "strategy_params": {"k": 3}})
    whole = ask(client, **kw)
    chunks = list(ask(client, stream=True, stream_options={"include_usage": True}, **kw))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_responses_take_a_strategy_too(client):
    r = client.responses.create(model=MODEL, input=Q[0]["content"], temperature=0.8,
                                reasoning={"effort": "high", "summary": "concise"},
                                extra_body={"seed": 3, "strategy": "adaptive", "strategy_params": {"max_k": 8}})
    assert r.output_text == "10063" and r.output[0].summary


@pytest.mark.parametrize("extra, param", [
    ({"strategy": "telepathy"}, "strategy"),
    ({"strategy": "self_consistency", "strategy_params": {"k": 0}}, "strategy_params"),
    ({"strategy": "self_consistency", "strategy_params": {"kk": 2}}, "strategy_params"),
    ({"strategy_params": {"k": 2}}, "strategy_params"),
])
def test_invalid_strategies_are_400s_naming_the_field(client, extra, param):
    with pytest.raises(openai.BadRequestError) as err:
        ask(client, extra_body=extra)
    assert err.value.body["param"] == param


def test_an_effort_level_can_map_to_a_strategy(tmp_path):
    cfg = ServeConfig(db=str(tmp_path / "s.db"), efforts=("low", "medium", "high", "xhigh"),
                      effort_strategies=("xhigh=self_consistency:k=3,temperature=0.8",))
    with running_server(cfg) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        high, xhigh = ask(client, reasoning_effort="high"), ask(client, reasoning_effort="xhigh")
        assert xhigh.choices[0].message.content == "10063"
        assert xhigh.usage.completion_tokens > 2 * high.usage.completion_tokens


def test_a_bad_effort_strategy_setting_stops_the_server_at_start(tmp_path):
    from ponder.errors import UserError

    with pytest.raises(UserError, match="telepathy"):
        with running_server(ServeConfig(db=str(tmp_path / "s.db"), effort_strategies=("xhigh=telepathy",))):
            pass
