"""Admission: a request is refused for every cheap reason before it costs its key anything, a
burst cannot take more tokens than the key's tpm, and a huge prompt is refused without being
tokenized on the event loop. Each test failed on the server before these rules."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import openai
import pytest

from ponder.serve.keys import KeyLimits
from ponder.serve.settings import ServeConfig

from tests.serve.conftest import MODEL, running_server

Q = [{"role": "user", "content": "What is 347 * 29?"}]
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    db = tmp_path_factory.mktemp("admission") / "serve.db"
    with running_server(ServeConfig(db=str(db), max_body_bytes=3_000_000)) as (url, services):
        yield url, services


_names = iter(range(10**6))


def client_for(url, services, **limits) -> tuple[openai.OpenAI, object]:
    secret, key = services.keys.create(f"adm-{next(_names)}", KeyLimits(**limits))
    return openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0), key


def ask(api, **kw):
    return api.chat.completions.create(**{"model": MODEL, "messages": Q, "temperature": 0,
                                          "reasoning_effort": "low", **kw})


def events_of(services, key) -> int:
    return services.conn.execute("SELECT COUNT(*) FROM rate_events WHERE key_id = ?", (key.id,)).fetchone()[0]


@pytest.mark.parametrize("bad", [
    {"extra_body": {"strategy": "telepathy"}},
    {"extra_body": {"strategy": "self_consistency", "strategy_params": {"k": 0}}},
    {"temperature": 5},
    {"model": "gpt-nope"},
    {"messages": [{"role": "user", "content": "x" * 20_000}]},  # beyond the context
])
def test_refused_requests_use_no_quota(keyed, bad):
    url, services = keyed
    api, key = client_for(url, services, per_day=2)
    for _ in range(5):
        with pytest.raises((openai.BadRequestError, openai.NotFoundError)):
            ask(api, **bad)
    assert events_of(services, key) == 0
    assert [ask(api, max_completion_tokens=8).usage.total_tokens > 0 for _ in range(2)] == [True, True]
    with pytest.raises(openai.RateLimitError) as err:
        ask(api, max_completion_tokens=8)
    assert err.value.body["type"] == "requests_per_day"
    assert err.value.response.headers["x-ratelimit-exhausted"] == "requests_per_day"
    assert len(services.ledger.rows(key.id)) == 2  # the ledger and the quota agree


def test_a_burst_cannot_take_more_than_tpm(keyed):
    url, services = keyed
    api, key = client_for(url, services, tpm=300)
    bound = 16

    def one(_):
        try:
            return ask(api, max_completion_tokens=bound).usage
        except openai.RateLimitError as error:
            return error

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(one, range(50)))
    admitted = [o for o in outcomes if not isinstance(o, Exception)]
    refusals = [o for o in outcomes if isinstance(o, Exception)]
    reservation = admitted[0].prompt_tokens + bound
    assert len(admitted) == 300 // reservation  # every reservation counted as it was admitted
    assert sum(u.total_tokens for u in admitted) <= 300
    assert {r.body["type"] for r in refusals} == {"tokens"}
    assert {r.response.headers["x-ratelimit-exhausted"] for r in refusals} == {"tokens"}


def test_a_strategy_reserves_every_sample(keyed):
    url, services = keyed
    probe, _ = client_for(url, services)
    prompt = ask(probe, max_completion_tokens=1).usage.prompt_tokens
    strategy = {"strategy": "self_consistency", "strategy_params": {"k": 4}}
    tight, _ = client_for(url, services, tpm=prompt + 4 * 20 - 1)
    with pytest.raises(openai.RateLimitError, match="request too large: up to"):
        ask(tight, max_completion_tokens=20, extra_body=strategy)
    enough, key = client_for(url, services, tpm=prompt + 4 * 20)
    usage = ask(enough, max_completion_tokens=20, extra_body=strategy).usage
    assert usage.completion_tokens <= 4 * 20
    # Settled: the key's minute now holds what was spent, not what was reserved.
    spent = services.conn.execute("SELECT SUM(tokens) FROM rate_events WHERE key_id = ?", (key.id,)).fetchone()[0]
    assert spent == usage.total_tokens


class CountingEncode:
    """Wraps the backend's tokenizer call to count how often, and on how many characters, it ran."""

    def __init__(self, backend):
        self.backend, self.inner, self.calls = backend, backend.encode, []

    def __enter__(self):
        self.backend.encode = self
        return self

    def __call__(self, messages):
        self.calls.append(sum(len(m.content) for m in messages))
        return self.inner(messages)

    def __exit__(self, *exc):
        del self.backend.encode


def test_a_huge_prompt_is_refused_untokenized(keyed):
    url, services = keyed
    api, _ = client_for(url, services)
    auth = {"Authorization": f"Bearer {api.api_key}"}
    huge = {"model": MODEL, "messages": [{"role": "user", "content": "What is 347 * 29? " * 55_000}]}  # ~1 MB
    with CountingEncode(services.backend) as encode:
        r = httpx.post(url + CHAT, json=huge, headers=auth, timeout=60)
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
        assert "at least" in r.json()["error"]["message"]
        assert encode.calls == []
        ok = httpx.post(url + CHAT, json={"model": MODEL, "messages": Q, "max_completion_tokens": 4}, headers=auth,
                        timeout=60)
        assert ok.status_code == 200 and encode.calls == [len(Q[0]["content"])]


def test_a_key_over_its_limit_is_refused_before_its_prompt_is_read(keyed):
    url, services = keyed
    api, key = client_for(url, services, rpm=1)
    ask(api, max_completion_tokens=4)
    huge = {"model": MODEL, "messages": [{"role": "user", "content": "x" * 1_000_000}]}
    with CountingEncode(services.backend) as encode:
        r = httpx.post(url + CHAT, json=huge, headers={"Authorization": f"Bearer {api.api_key}"}, timeout=60)
    assert r.status_code == 429 and r.json()["error"]["type"] == "requests" and encode.calls == []


@pytest.mark.parametrize("path, body", [
    (CHAT, {"model": MODEL, "messages": [{"role": "user", "content": "x"}] * 2049}),
    (CHAT, {"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}] * 2049}]}),
    ("/v1/responses", {"model": MODEL, "input": [{"role": "user", "content": "x"}] * 2049}),
])
def test_lists_are_capped_so_validation_stays_short(keyed, path, body):
    url, services = keyed
    api, _ = client_for(url, services)
    r = httpx.post(url + path, json=body, headers={"Authorization": f"Bearer {api.api_key}"}, timeout=60)
    assert r.status_code == 400 and "at most 2048 items" in r.json()["error"]["message"]


def test_the_longest_token_bounds_the_characters(keyed):
    _, services = keyed
    backend = services.backend
    vocab = backend.engine.tok.backend.get_vocab()
    assert backend.max_prompt_chars == backend.context_length * max(map(len, vocab))


def test_a_keyless_server_answers_only_local_json_requests(tmp_path):
    """A web page cannot drive a keyless quick start: not by a text/plain POST (no preflight),
    not through DNS rebinding (its own Host), not through a proxy in front."""
    with running_server(ServeConfig(db=str(tmp_path / "s.db"))) as (url, _):
        ok = {"model": MODEL, "messages": Q, "max_completion_tokens": 4}
        assert httpx.post(url + CHAT, json=ok, timeout=60).status_code == 200
        plain = httpx.post(url + CHAT, content=json.dumps(ok), headers={"Content-Type": "text/plain"}, timeout=60)
        assert plain.status_code == 415
        for headers in ({"Host": "attacker.example"}, {"Host": "attacker.example:8000"},
                        {"X-Forwarded-For": "203.0.113.9"}):
            r = httpx.post(url + CHAT, json=ok, headers=headers, timeout=60)
            assert r.status_code == 403 and r.json()["error"]["code"] == "keyless_local_only"
        assert httpx.get(url + "/v1/models", headers={"Host": "attacker.example"}, timeout=60).status_code == 403
