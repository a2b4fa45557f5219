"""Attacks on what a key may spend: quota, token rate and sample count (classes 4, 5 and 9).

4. rejected requests use quota: invalid requests cost a per_day key nothing; the ledger bills
   only what was admitted.
5. TPM bursts: concurrent requests cannot spend past a tpm limit by more than one reservation,
   and 429s say which limit ran out.
9. strategy amplification: n x samples past max_samples is refused unbilled; within it, every
   sample is billed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ponder.serve.keys import KeyLimits

from .harness import MODEL, Result, Servers, chat, error_code, error_type, httpx


# ---- 4. rejected requests use quota ----------------------------------------------------------

def rejected_quota(servers: Servers, quick: bool) -> Result:
    r = Result("rejected requests use quota", "per_day=3 key: 11 invalid requests are 400/404, then 3 valid "
               "ones are 200, a 4th is 429, and the ledger has exactly the 3")
    srv = servers.get("main")
    secret = srv.key("c4", KeyLimits(per_day=3))
    client = srv.client(secret)
    invalid = [
        ("temperature=5", dict(temperature=5)),
        ("unknown model", dict(model="no-such-model")),
        ("bad strategy", dict(extra_body={"strategy": "no_such_strategy"})),
        ("n=100", dict(n=100)),
        ("max_completion_tokens=0", dict(max_completion_tokens=0)),
        ("bogus param", dict(extra_body={"bogus_param": 1})),
        ("effort xhigh", dict(reasoning_effort="xhigh")),
        ("too many samples", dict(extra_body={"strategy": "self_consistency", "strategy_params": {"k": 64}})),
        ("prompt over context", dict(content="seven " * 1000)),
        ("scorer path", dict(extra_body={"strategy": "best_of_n", "strategy_params": {"scorer": "os:getcwd"}})),
    ]
    for label, kwargs in invalid:
        status, body, _ = chat(client, **kwargs)
        r.case(status in (400, 404), f"{label} -> {status}")
    resp = srv.post("/v1/chat/completions", b'{"model": "ponder-default", "messages": [', secret)
    r.case(resp.status_code == 400, f"invalid JSON -> {resp.status_code}")
    for i in range(3):
        status, body, _ = chat(client, max_completion_tokens=8)
        r.case(status == 200, f"valid request {i + 1} -> {status} {error_code(body)}")
    status, _, _ = chat(client, max_completion_tokens=8)
    r.case(status == 429, f"4th valid request -> {status}")
    rows = srv.services.ledger.rows(key=srv.key_id("c4"))
    r.case(len(rows) == 3, f"ledger has {len(rows)} rows, not 3")
    return r


# ---- 5. TPM bursts ---------------------------------------------------------------------------

def tpm_burst(servers: Servers, quick: bool) -> Result:
    burst = 20 if quick else 50
    r = Result("TPM bursts", f"tpm=300 key, {burst} concurrent requests (max_completion_tokens=16): tokens "
               "of admitted <= 300 + one reservation; 429s typed tokens/requests with x-ratelimit-exhausted")
    srv = servers.get("main")
    secret = srv.key("c5", KeyLimits(tpm=300))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 16}
    with httpx.Client(limits=httpx.Limits(max_connections=burst), timeout=60) as http:
        def one(_):
            try:
                return http.post(srv.url + "/v1/chat/completions", json=body,
                                 headers={"authorization": f"Bearer {secret}"})
            except httpx.HTTPError as error:
                return error
        with ThreadPoolExecutor(burst) as pool:
            answers = list(pool.map(one, range(burst)))
    errors = [a for a in answers if isinstance(a, Exception)]
    answers = [a for a in answers if not isinstance(a, Exception)]
    r.case(not errors, f"{len(errors)} transport errors")
    ok = [a for a in answers if a.status_code == 200]
    limited = [a for a in answers if a.status_code == 429]
    r.case(len(ok) + len(limited) == len(answers),
           f"statuses {sorted({a.status_code for a in answers} - {200, 429})}")
    spent = sum(a.json()["usage"]["total_tokens"] for a in ok)
    prompt = ok[0].json()["usage"]["prompt_tokens"] if ok else 0
    reservation = prompt + 16
    r.notes.append(f"admitted {len(ok)}/{burst}, {spent} tokens spent, reservation {reservation}")
    r.case(spent <= 300 + reservation, f"{spent} tokens admitted > 300 + {reservation}")
    r.case(bool(ok), "nothing admitted")
    if r.case(bool(limited), "no 429 in the burst"):
        a = limited[0]
        r.case(error_type(a.text) == "tokens" and a.headers.get("x-ratelimit-exhausted") == "tokens",
               f"token 429 typed {error_type(a.text)!r}, exhausted={a.headers.get('x-ratelimit-exhausted')!r}")
    big = srv.post("/v1/chat/completions", {**body, "max_completion_tokens": 400}, secret)
    r.case(big.status_code == 429 and error_type(big.text) == "tokens",
           f"one request over tpm -> {big.status_code} {error_type(big.text)!r}")
    rpm = srv.key("c5rpm", KeyLimits(rpm=2))
    last = None
    for _ in range(3):
        last = srv.post("/v1/chat/completions", {**body, "max_completion_tokens": 4}, rpm)
    r.case(last.status_code == 429 and error_type(last.text) == "requests"
           and last.headers.get("x-ratelimit-exhausted") == "requests",
           f"rpm 429 -> {last.status_code} typed {error_type(last.text)!r}, "
           f"exhausted={last.headers.get('x-ratelimit-exhausted')!r}")
    return r


# ---- 9. strategy amplification ---------------------------------------------------------------

def amplification(servers: Servers, quick: bool) -> Result:
    r = Result("strategy amplification", "n x samples over max_samples=16 is 400 (and unbilled); n=2 x k=4 "
               "self_consistency is 200 and billed for every sample")
    srv = servers.get("main")
    client = srv.client(srv.key("c9"))
    over = [(16, "self_consistency", {"k": 256}), (2, "self_consistency", {"k": 16}),
            (1, "self_consistency", {"k": 17}),
            (4, "best_of_n", {"n": 8}), (1, "adaptive", {"max_k": 32}), (2, "weighted_best_of_n", {"n": 9}),
            (1, "beam", {"beams": 4, "expansions": 4, "max_steps": 2})]
    for n, strategy, params in over:
        status, body, _ = chat(client, n=n, extra_body={"strategy": strategy, "strategy_params": params})
        r.case(status == 400, f"n={n} {strategy} {params} -> {status}")
    status, body, out = chat(client, n=2, max_completion_tokens=16, reasoning_effort="low",
                             extra_body={"strategy": "self_consistency", "strategy_params": {"k": 4}})
    if r.case(status == 200, f"n=2 k=4 -> {status} {error_code(body)}"):
        billed = out.usage.completion_tokens
        rows = srv.services.ledger.rows(key=srv.key_id("c9"))
        row = next((x for x in rows if x.request_id == out.id), None)
        r.notes.append(f"within the cap: {billed} completion tokens billed for 8 samples")
        r.case(row is not None and row.completion_tokens == billed and billed >= 8,
               f"ledger {row and row.completion_tokens} vs usage {billed}")
        r.case(len(rows) == 1, f"{len(rows)} ledger rows for 1 admitted request")
    return r
