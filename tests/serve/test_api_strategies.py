"""What a client may ask of test-time strategies: names from the operator's lists (never code or
a path), at most the operator's samples per request, and a strategy stream that is abandoned
stops and is billed. Each test failed on the server before these rules."""

from __future__ import annotations

import sys
import time

import httpx2 as httpx
import openai
import pytest

from ponder.serve.settings import ServeConfig

from tests.serve.conftest import MODEL, running_server

Q = [{"role": "user", "content": "What is 347 * 29?"}]


def ask(client, **kw):
    return client.chat.completions.create(**{"model": MODEL, "messages": Q, "temperature": 0,
                                          "reasoning_effort": "low", **kw})


def refused(client, **kw) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as err:
        ask(client, **kw)
    return err.value


@pytest.fixture(scope="module")
def offered(tmp_path_factory):
    """A server that offers one operator function as a scorer, by name."""
    cfg = ServeConfig(db=str(tmp_path_factory.mktemp("strategies") / "s.db"),
                      api_scorers=("confidence", "countdown", "mine=ponder.think.scorers:countdown"))
    with running_server(cfg) as (url, services):
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0), services


# The first two are modules nothing else here imports, so their import would show in sys.modules.
@pytest.mark.parametrize("scorer", ["tabnanny:check", "this:x", "os:getcwd", "ponder.serve.sealed:load_or_create_key"])
def test_a_request_cannot_name_code_as_a_scorer(offered, scorer):
    client, _ = offered
    module = scorer.partition(":")[0]
    was_imported = module in sys.modules
    err = refused(client, extra_body={"strategy": "best_of_n", "strategy_params": {"n": 2, "scorer": scorer}})
    assert err.body["param"] == "strategy_params" and err.body["code"] == "unsupported_value"
    assert "offered: confidence, countdown, mine" in err.message
    assert (module in sys.modules) == was_imported  # nothing was imported on the client's say-so


def test_the_operator_offers_its_own_function_under_a_name(offered):
    client, _ = offered
    answer = ask(client, extra_body={"strategy": "best_of_n", "strategy_params": {"n": 2, "scorer": "mine"}})
    assert answer.choices[0].message.content.isdigit()


def test_a_request_cannot_point_the_server_at_a_directory(offered):
    client, _ = offered
    words = {refused(client, extra_body={"strategy": "beam", "strategy_params": {"prm": path}}).body["message"]
             for path in ("/etc", "/no/such/dir", "")}
    # The same words whether the path exists or not: the server is no file-existence oracle.
    assert len(words) == 1 and "/etc" not in words.pop()


def test_the_operators_prm_path_is_not_told(offered, monkeypatch):
    client, _ = offered
    err = refused(client, extra_body={"strategy": "beam"})  # no PRM here: beam is not offered at all
    assert err.body["param"] == "strategy" and "runs/prm" not in err.message and "PONDER_PRM" not in err.message


def test_the_prm_path_is_for_the_operator_only():
    from ponder.serve.thinking import StrategyPolicy, _check_requested
    from ponder.serve.errors import APIError

    with pytest.raises(APIError, match="can only be set by the server's operator"):
        _check_requested("beam", {"prm": "/etc"}, StrategyPolicy(("beam",), (), 1000))


def test_strategies_not_offered_are_refused(tmp_path):
    cfg = ServeConfig(db=str(tmp_path / "s.db"), api_strategies=("single", "self_consistency"))
    with running_server(cfg) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        err = refused(client, extra_body={"strategy": "best_of_n"})
        assert err.body["param"] == "strategy" and "offered: single, self_consistency" in err.message


def test_operator_settings_are_checked_at_start():
    from ponder.errors import UserError
    from ponder.serve.thinking import make_policy

    with pytest.raises(UserError, match="api_strategies: unknown 'telepathy'"):
        make_policy(("telepathy",), (), 16)
    with pytest.raises(UserError, match="needs a plain name"):
        make_policy(("single",), ("os:getcwd",), 16)


@pytest.mark.parametrize("n, k", [(16, 256), (2, 16), (1, 17)])
def test_samples_per_request_are_capped(offered, n, k):
    client, services = offered
    before = len(services.ledger.rows())
    err = refused(client, n=n, extra_body={"strategy": "self_consistency", "strategy_params": {"k": k}})
    assert err.body["code"] == "too_many_samples" and f"may draw {n * k} samples" in err.message
    assert len(services.ledger.rows()) == before  # refused before anything ran


def test_plain_n_counts_against_the_cap_too(tmp_path):
    with running_server(ServeConfig(db=str(tmp_path / "s.db"), max_samples=4)) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        assert len(ask(client, n=4).choices) == 4
        assert refused(client, n=5).body["param"] == "n"


def test_an_abandoned_strategy_stream_stops_and_is_billed(offered):
    client, services = offered
    url = str(client.base_url).rstrip("/")
    body = {"model": MODEL, "messages": Q, "stream": True, "reasoning_effort": "high", "temperature": 0.8,
            "strategy": "self_consistency", "strategy_params": {"k": 8}}
    before = {r.request_id for r in services.ledger.rows()}
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=60) as response:
        first = next(response.iter_lines())  # the role chunk; then the client goes away
        assert first.startswith("data: ")
    deadline = time.monotonic() + 30
    rows = []
    while time.monotonic() < deadline and not rows:
        rows = [r for r in services.ledger.rows() if r.request_id not in before]
        time.sleep(0.05)
    assert len(rows) == 1 and rows[0].status == "cancelled"
    assert rows[0].completion_tokens > 0  # what the samples wrote before they were stopped is billed
    # Stopped, not run to the end: the same request read whole writes far more.
    whole = httpx.post(f"{url}/chat/completions", json={**body, "stream": False}, timeout=60).json()
    assert rows[0].completion_tokens < whole["usage"]["completion_tokens"] / 2
