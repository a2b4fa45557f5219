"""API keys, rate limits, quotas and the usage ledger, seen from a client of a real server."""

from __future__ import annotations

import json
import time

import httpx2 as httpx
import openai
import pytest

from ponder.cli import main as ponder
from ponder.serve.keys import KeyLimits
from ponder.serve.limits import DAY, RateLimiter
from ponder.serve.settings import ServeConfig

from tests.serve.fake_clock import FakeClock

from tests.serve.conftest import MODEL, running_server

Q = [{"role": "user", "content": "What is 347 * 29?"}]
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A loopback server whose tests all make keys, so every request to it needs one."""
    db = tmp_path_factory.mktemp("accounts") / "serve.db"
    with running_server(ServeConfig(db=str(db))) as (url, services):
        yield url, services, str(db)


_names = iter(range(10**6))


def new_key(services, **limits) -> tuple[str, object]:
    return services.keys.create(f"test-{next(_names)}", KeyLimits(**limits))


def client(url: str, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)


def ask(api: openai.OpenAI, **kw):
    return api.chat.completions.create(**{"model": MODEL, "messages": Q, "temperature": 0,
                                          "reasoning_effort": "low", **kw})


def ask_raw(api: openai.OpenAI, **kw):
    """The completion and its response headers."""
    raw = api.chat.completions.with_raw_response.create(**{"model": MODEL, "messages": Q, "temperature": 0,
                                                           "reasoning_effort": "low", **kw})
    return raw.parse(), raw.headers


def refused(api: openai.OpenAI, cls=openai.RateLimitError, code="rate_limit_exceeded", **kw):
    with pytest.raises(openai.APIStatusError) as caught:
        ask(api, **kw)
    err = caught.value
    assert type(err) is cls, f"{type(err).__name__}: {err}"
    assert err.code == code and err.param is None
    assert set(err.response.json()["error"]) == {"message", "type", "param", "code"}
    return err




@pytest.fixture
def clock(keyed, monkeypatch):
    _, services, _ = keyed
    fake = FakeClock(time.time())
    monkeypatch.setattr(services, "limiter", RateLimiter(services.conn, clock=fake))
    return fake


# ---- authentication -------------------------------------------------------------------------------

def test_once_a_key_exists_every_request_needs_a_valid_one(keyed):
    url, services, _ = keyed
    secret, _ = new_key(services)
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        r = httpx.post(url + CHAT, json={"model": MODEL, "messages": Q}, headers=headers, timeout=60)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert "API key" in r.json()["error"]["message"]
    for wrong in ("sk-not-ours", "pk-" + "A" * 43, secret[:-1], secret + "x"):
        err = refused(client(url, wrong), openai.AuthenticationError, "invalid_api_key")
        assert wrong not in err.message  # the key is shown masked, never whole
    assert ask(client(url, secret)).choices[0].message.content
    r = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {secret}"}, timeout=60)
    assert r.status_code == 200 and r.json()["data"][0]["id"] == MODEL
    assert httpx.get(url + "/v1/models", timeout=60).status_code == 401
    assert httpx.get(url + "/health", timeout=60).status_code == 200  # health stays open


def test_a_revoked_key_is_refused_at_once(keyed):
    url, services, _ = keyed
    secret, key = new_key(services)
    api = client(url, secret)
    ask(api, max_completion_tokens=4)
    services.keys.revoke(key.id)
    err = refused(api, openai.AuthenticationError, "invalid_api_key", max_completion_tokens=4)
    assert err.status_code == 401


def test_a_key_revoked_from_the_cli_is_refused_by_the_running_server(keyed, capsys):
    url, services, db = keyed
    secret, key = new_key(services)
    api = client(url, secret)
    ask(api, max_completion_tokens=4)
    assert ponder(["keys", "revoke", key.prefix, "--db", db]) == 0
    assert key.id in capsys.readouterr().out
    refused(api, openai.AuthenticationError, "invalid_api_key", max_completion_tokens=4)


def test_responses_and_their_storage_need_the_key_that_made_them(keyed):
    url, services, _ = keyed
    (alice, _), (bob, _) = new_key(services), new_key(services)
    made = client(url, alice).responses.create(model=MODEL, input="What is 2 + 2?", max_output_tokens=8)
    assert client(url, alice).responses.retrieve(made.id).id == made.id
    with pytest.raises(openai.NotFoundError):
        client(url, bob).responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client(url, bob).responses.create(model=MODEL, input="and?", previous_response_id=made.id)
    with pytest.raises(openai.AuthenticationError):
        client(url, "pk-wrong").responses.retrieve(made.id)


# ---- rate limits --------------------------------------------------------------------------------

def test_rpm_refuses_the_third_request_in_a_minute_with_openai_headers(keyed):
    url, services, _ = keyed
    secret, key = new_key(services, rpm=2)
    api = client(url, secret)
    _, first = ask_raw(api, max_completion_tokens=4)
    assert first["x-ratelimit-limit-requests"] == "2"
    assert first["x-ratelimit-remaining-requests"] == "1"
    assert first["x-ratelimit-reset-requests"].endswith("s")
    _, second = ask_raw(api, max_completion_tokens=4)
    assert second["x-ratelimit-remaining-requests"] == "0"
    err = refused(api, max_completion_tokens=4)
    h = err.response.headers
    assert err.status_code == 429 and err.type == "requests"
    assert h["x-ratelimit-limit-requests"] == "2" and h["x-ratelimit-remaining-requests"] == "0"
    assert h["x-ratelimit-reset-requests"].endswith("s") and h["x-ratelimit-reset-requests"] != "0s"
    assert 1 <= int(h["retry-after"]) <= 60
    assert "2 per minute" in err.message
    assert "x-ratelimit-limit-tokens" not in h  # no tpm on this key
    # Refused requests take nothing: still refused, and not billed.
    refused(api, max_completion_tokens=4)
    assert len(services.ledger.rows(key=key.id)) == 2


def test_rpm_window_rolls_with_the_clock(keyed, clock):
    url, services, _ = keyed
    secret, _ = new_key(services, rpm=1)
    api = client(url, secret)
    ask(api, max_completion_tokens=4)
    clock.t += 30
    err = refused(api, max_completion_tokens=4)
    assert err.response.headers["retry-after"] == "30"
    assert err.response.headers["x-ratelimit-reset-requests"] == "30s"
    clock.t += 30.01
    ask(api, max_completion_tokens=4)


def test_tpm_counts_the_hidden_reasoning_tokens(keyed):
    url, services, _ = keyed
    probe_secret, _ = new_key(services)
    probe = ask(client(url, probe_secret))
    total, reasoning = probe.usage.total_tokens, probe.usage.completion_tokens_details.reasoning_tokens
    prompt, bound = probe.usage.prompt_tokens, probe.usage.completion_tokens
    assert reasoning > 0
    tpm = total + 1  # room for exactly one such request
    # Were reasoning tokens left out, the second request would fit: the test can tell.
    assert (total - reasoning) + prompt <= tpm < total + prompt
    secret, _ = new_key(services, tpm=tpm)
    api = client(url, secret)
    # The bound is exactly what the answer takes, so the reservation is exactly what is spent.
    first, headers = ask_raw(api, max_completion_tokens=bound)
    assert first.usage.total_tokens == total
    assert headers["x-ratelimit-limit-tokens"] == str(tpm)
    assert headers["x-ratelimit-remaining-tokens"] == str(tpm - total)  # this request's reservation
    err = refused(api, max_completion_tokens=1)
    h = err.response.headers
    assert h["x-ratelimit-limit-tokens"] == str(tpm)
    assert h["x-ratelimit-remaining-tokens"] == str(tpm - total)
    assert "tokens" in err.message and int(h["retry-after"]) >= 1


def test_a_request_bigger_than_tpm_is_refused_outright(keyed):
    url, services, _ = keyed
    secret, _ = new_key(services, tpm=5)  # the prompt alone is 16 tokens
    err = refused(client(url, secret))
    assert "too large" in err.message


def test_per_week_quota_with_a_clock(keyed, clock):
    url, services, _ = keyed
    secret, _ = new_key(services, per_week=3)
    api = client(url, secret)
    start = clock.t
    for day in range(3):
        clock.t = start + day * DAY
        ask(api, max_completion_tokens=4)
    clock.t = start + 3 * DAY
    err = refused(api, max_completion_tokens=4)
    assert "weekly quota of 3" in err.message
    assert err.response.headers["retry-after"] == str(int(4 * DAY))  # the first request leaves the week then
    clock.t = start + 7 * DAY - 1
    refused(api, max_completion_tokens=4)
    clock.t = start + 7 * DAY + 1
    ask(api, max_completion_tokens=4)
    refused(api, max_completion_tokens=4)  # day 1's and day 2's requests are still in the week


def test_per_day_quota_with_a_clock(keyed, clock):
    url, services, _ = keyed
    secret, _ = new_key(services, per_day=2)
    api = client(url, secret)
    start = clock.t
    ask(api, max_completion_tokens=4)
    clock.t = start + 3600
    ask(api, max_completion_tokens=4)
    clock.t = start + 2 * 3600
    err = refused(api, max_completion_tokens=4)
    assert "daily quota of 2" in err.message
    assert err.response.headers["retry-after"] == str(int(DAY - 2 * 3600))
    clock.t = start + DAY + 1
    ask(api, max_completion_tokens=4)
    refused(api, max_completion_tokens=4)
    clock.t = start + DAY + 3601
    ask(api, max_completion_tokens=4)


def test_limits_apply_to_the_responses_api_too(keyed):
    url, services, _ = keyed
    secret, _ = new_key(services, rpm=1)
    api = client(url, secret)
    raw = api.responses.with_raw_response.create(model=MODEL, input="What is 2 + 2?", max_output_tokens=8)
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as caught:
        api.responses.create(model=MODEL, input="What is 2 + 2?", max_output_tokens=8)
    assert caught.value.code == "rate_limit_exceeded"


# ---- the ledger ----------------------------------------------------------------------------------

def _stream_usage(api, **kw):
    chunks = list(ask(api, stream=True, stream_options={"include_usage": True}, **kw))
    return chunks[0].id, chunks[-1].usage


def _responses_stream(api):
    with api.responses.stream(model=MODEL, input="What is 347 * 29?", temperature=0,
                              reasoning={"effort": "low"}) as stream:
        final = stream.get_final_response()
    return final


def test_the_ledger_has_one_row_per_request_matching_its_usage(keyed, capsys):
    url, services, db = keyed
    secret, key = new_key(services)
    api = client(url, secret)
    seen: dict[str, tuple[int, int, int]] = {}
    for r in (ask(api), ask(api, n=2, temperature=1.0, seed=3), ask(api, reasoning_effort="none"),
              ask(api, max_completion_tokens=20, reasoning_effort="high")):
        seen[r.id] = (r.usage.prompt_tokens, r.usage.completion_tokens,
                      r.usage.completion_tokens_details.reasoning_tokens)
    chunk_id, usage = _stream_usage(api)
    seen[chunk_id] = (usage.prompt_tokens, usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens)
    plain = api.responses.create(model=MODEL, input="What is 347 * 29?", temperature=0, reasoning={"effort": "low"})
    for r in (plain, _responses_stream(api)):
        seen[r.id] = (r.usage.input_tokens, r.usage.output_tokens, r.usage.output_tokens_details.reasoning_tokens)
    with pytest.raises(openai.BadRequestError):  # refused requests are not billed
        ask(api, temperature=5)
    rows = services.ledger.rows(key=key.id)
    assert len(rows) == len(seen) == 7
    assert {row.request_id: (row.prompt_tokens, row.completion_tokens, row.reasoning_tokens) for row in rows} == seen
    assert all(row.key_id == key.id and row.model == MODEL and row.status == "completed" for row in rows)
    assert sorted(row.endpoint for row in rows) == ["chat.completions"] * 5 + ["responses"] * 2
    assert all(row.reasoning_tokens <= row.completion_tokens for row in rows)
    assert sum(row.reasoning_tokens for row in rows) > 0

    capsys.readouterr()
    assert ponder(["usage", "--db", db, "--json"]) == 0
    report = {item["group"]: item for item in json.loads(capsys.readouterr().out)}
    mine = report[key.id]
    assert mine["name"] == key.name and mine["requests"] == 7
    assert mine["prompt_tokens"] == sum(s[0] for s in seen.values())
    assert mine["completion_tokens"] == sum(s[1] for s in seen.values())
    assert mine["reasoning_tokens"] == sum(s[2] for s in seen.values())
    assert ponder(["usage", "--db", db, "--key", key.name, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [mine]


# ---- when keys are required even without any ------------------------------------------------------

def test_a_server_on_a_non_loopback_host_requires_a_key(tmp_path):
    with running_server(ServeConfig(host="0.0.0.0", db=str(tmp_path / "s.db"))) as (url, services):
        assert not services.keys_optional and not services.keys.any_active()
        err = refused(client(url, "pk-anything"), openai.AuthenticationError, "invalid_api_key",
                      max_completion_tokens=4)
        assert err.status_code == 401
        r = httpx.post(url + CHAT, json={"model": MODEL, "messages": Q}, timeout=60)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        secret, _ = new_key(services)
        assert ask(client(url, secret), max_completion_tokens=4).usage.completion_tokens <= 4


def test_require_key_on_loopback_requires_one(tmp_path):
    with running_server(ServeConfig(require_key=True, db=str(tmp_path / "s.db"))) as (url, services):
        r = httpx.post(url + CHAT, json={"model": MODEL, "messages": Q}, timeout=60)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        refused(client(url, "pk-anything"), openai.AuthenticationError, "invalid_api_key")
        secret, _ = new_key(services)
        ask(client(url, secret), max_completion_tokens=4)


def test_a_keyless_loopback_server_needs_no_key_until_one_exists(tmp_path):
    body = {"model": MODEL, "messages": Q, "max_completion_tokens": 4}
    with running_server(ServeConfig(db=str(tmp_path / "s.db"))) as (url, services):
        r = httpx.post(url + CHAT, json=body, timeout=60)
        assert r.status_code == 200
        assert services.ledger.rows()[0].key_id is None
        secret, key = new_key(services)
        assert httpx.post(url + CHAT, json=body, timeout=60).status_code == 401
        services.keys.revoke(key.id)
        # Every key revoked: the server stays locked (on main it reopened to everyone, billed to nobody).
        for auth in ({}, {"Authorization": f"Bearer {secret}"}, {"Authorization": "Bearer pk-bogus"}):
            assert httpx.post(url + CHAT, json=body, headers=auth, timeout=60).status_code == 401
        assert len(services.ledger.rows()) == 1
