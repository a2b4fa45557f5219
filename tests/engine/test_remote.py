"""RemoteEngine against a real `ponder serve` on a loopback port: what comes back over HTTP must be
what the server's own engine makes of the same request, token counts included."""

from __future__ import annotations

import pytest

from ponder.engine.base import SamplingParams
from ponder.engine.remote import RemoteEngine, effort_for, parse_remote_spec
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.serve.settings import ServeConfig

from tests.serve.conftest import MODEL, free_port, running_server

Q = [Message("user", "What is 347 * 29?")]
GREEDY = SamplingParams(max_completion_tokens=400)


@pytest.fixture(autouse=True)
def no_key_in_env(monkeypatch):
    for var in ("PONDER_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("remote") / "s.db"
    with running_server(ServeConfig(db=str(db), allow_reasoning=True)) as (url, services):
        yield f"{url}/v1", services.backend.engine


def remote(url, **kw) -> RemoteEngine:
    return RemoteEngine(MODEL, url, **kw)


# ---- specs and efforts (no server) ------------------------------------------------------------

def test_parse_remote_spec(monkeypatch):
    assert parse_remote_spec("openai:ponder-default@http://127.0.0.1:8000/v1") == (
        "ponder-default", "http://127.0.0.1:8000/v1")
    assert parse_remote_spec("openai:a@b@https://h/v1") == ("a@b", "https://h/v1")
    assert parse_remote_spec("openai:gpt-5") == ("gpt-5", "https://api.openai.com/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://box:9000/v1")
    assert parse_remote_spec("openai:m") == ("m", "http://box:9000/v1")
    for bad in ("openai:", "openai:@http://h/v1", "openai:m@localhost:8000", "hf:m"):
        with pytest.raises(UserError, match="openai:MODEL|http"):
            parse_remote_spec(bad)


def test_budget_maps_to_the_cheapest_effort_that_covers_it():
    got = {b: effort_for(b) for b in (0, 1, 16, 17, 64, 100, 160, 161, None)}
    assert got == {0: "none", 1: "minimal", 16: "minimal", 17: "low", 64: "low", 100: "medium",
                   160: "medium", 161: "high", None: "high"}


def test_engine_only_params_are_refused_before_sending():
    engine = remote("http://127.0.0.1:9/v1")
    for params in (SamplingParams(logprobs=True), SamplingParams(top_k=5), SamplingParams(stop=tuple("abcde"))):
        with pytest.raises(UserError, match="logprobs|top_k|4 stop"):
            engine.generate([Q], params)
    with pytest.raises(UserError, match="http://"):
        RemoteEngine(MODEL, "127.0.0.1:8000/v1")


# ---- against the server -----------------------------------------------------------------------

def test_answer_and_token_counts_match_the_servers_engine(server):
    url, local = server
    got = remote(url).generate([Q], GREEDY)[0]
    want = local.generate([Q], GREEDY)[0]
    assert got.answer == want.answer == "10063" and got.finish_reason == "stop"
    assert (got.prompt_tokens, got.reasoning_tokens, got.answer_tokens) == (
        want.prompt_tokens, want.reasoning_tokens, want.answer_tokens)
    assert got.reasoning_tokens > 0 and got.reasoning == ""  # counted, not shown: it was not asked for


def test_reasoning_text_comes_back_when_requested(server):
    url, local = server
    got = remote(url, request_reasoning=True).generate([Q], GREEDY)[0]
    assert got.reasoning == local.generate([Q], GREEDY)[0].reasoning and "10063" in got.reasoning


def test_budgets_travel_as_efforts(server):
    url, local = server
    engine = remote(url)
    # 0 -> none: no reasoning at all; 16 -> minimal: exactly 16; 100 -> medium: rounded up to 160.
    budgets = [0, 16, 100]
    got = engine.generate([Q] * 3, [SamplingParams(max_completion_tokens=400, reasoning_budget=b) for b in budgets])
    want = local.generate([Q] * 3, [SamplingParams(max_completion_tokens=400, reasoning_budget=b)
                                    for b in (0, 16, 160)])
    assert got[0].reasoning_tokens == 0
    assert [(c.answer, c.reasoning_tokens) for c in got] == [(c.answer, c.reasoning_tokens) for c in want]


def test_many_prompts_at_once_come_back_in_order(server):
    url, local = server
    prompts = [[Message("user", f"What is {a} * {b}?")] for a, b in zip(range(12, 24), range(31, 43))]
    params = SamplingParams(max_completion_tokens=200)
    got = remote(url, concurrency=5).generate(prompts, params)
    assert [c.answer for c in got] == [c.answer for c in local.generate(prompts, params)]
    assert got[0].answer == str(12 * 31) and got[-1].answer == str(23 * 42)


def test_seeds_reproduce(server):
    url, local = server
    engine = remote(url)
    seeded = [SamplingParams(max_completion_tokens=200, temperature=1.0, seed=s) for s in (7, 7, 2**64 - 3)]
    a, b, big = engine.generate([Q] * 3, seeded)
    assert (a.reasoning_tokens, a.answer) == (b.reasoning_tokens, b.answer)
    want = local.generate([Q], seeded[2])[0]  # a seed past int64 still reaches the engine as itself
    assert (big.reasoning_tokens, big.answer) == (want.reasoning_tokens, want.answer)


def test_stop_strings_and_length(server):
    url, local = server
    stopped = SamplingParams(max_completion_tokens=400, stop=("06",))
    got, short = remote(url).generate([Q, Q], [stopped, SamplingParams(max_completion_tokens=20)])
    assert got.answer == local.generate([Q], stopped)[0].answer == "10" and got.finish_reason == "stop"
    assert short.finish_reason == "length" and short.completion_tokens == 20


def test_server_refusals_pass_through_with_its_message(server):
    url, _ = server
    with pytest.raises(UserError, match=r"refused the request \(400\).*temperature"):
        remote(url).generate([Q], SamplingParams(temperature=3.0))


def test_unknown_model_is_named_with_what_the_server_serves(server):
    url, _ = server
    with pytest.raises(UserError, match=f"'nope' is not served at {url}; it serves: {MODEL}"):
        RemoteEngine("nope", url).generate([Q], GREEDY)


def test_unreachable_server_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(UserError, match=f"cannot reach {url}: Connection refused"):
        remote(url).generate([Q], GREEDY)


def test_keyed_server_refuses_a_wrong_key_and_says_which_to_set(tmp_path, monkeypatch):
    with running_server(ServeConfig(db=str(tmp_path / "s.db"))) as (base, services):
        secret, _ = services.keys.create("t")
        url = f"{base}/v1"
        with pytest.raises(UserError, match="wants an API key and none was set: set PONDER_API_KEY"):
            remote(url).generate([Q], GREEDY)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-but-long-enough")
        with pytest.raises(UserError, match="refused the API key from OPENAI_API_KEY: set OPENAI_API_KEY"):
            remote(url).generate([Q], GREEDY)
        monkeypatch.setenv("PONDER_API_KEY", secret)  # PONDER_API_KEY wins over OPENAI_API_KEY
        assert remote(url).generate([Q], GREEDY)[0].answer == "10063"
        # This server keeps reasoning hidden: asking for it is its 403, passed on as it worded it.
        with pytest.raises(UserError, match=r"\(403\).*--allow-reasoning"):
            remote(url, request_reasoning=True).generate([Q], GREEDY)
