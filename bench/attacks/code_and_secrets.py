"""Attacks on what a client may name: code, sealed reasoning and keys (classes 1-3).

1. client-chosen code: module:function scorers and strategies, and prm paths, are refused with
   400, import nothing and leak no reprs or reasoning.
2. sealed reasoning replay: encrypted reasoning replays only for the key and model that sealed it.
3. revoked keys: revoked, bogus, malformed and missing keys get 401 everywhere.
"""

from __future__ import annotations

import sys

from .harness import MODEL, QUESTION, Result, Servers, api, chat, error_code, httpx, leak_free


# ---- 1. client-chosen code -------------------------------------------------------------------

SCORERS = ("os:getcwd", "builtins:print", "ponder.serve.sealed:load_or_create_key", "this:x", "antigravity:geohash",
           "tabnanny:check", "subprocess:getoutput", "os.path:exists", "ponder.think.scorers:confidence",
           "../../etc/passwd", "confidence:x")
FRESH = {"this", "antigravity", "tabnanny"}  # modules nothing here imports: their import is the attack


def client_code(servers: Servers, quick: bool) -> Result:
    r = Result("client-chosen code", "module:function scorers/strategies are 400 and import nothing; "
               "beam prm path is 400 with one body for existing and missing paths; no reprs/reasoning in errors")
    srv = servers.get("main")
    client = srv.client(srv.key("c1"))
    fresh_before = {m for m in FRESH if m in sys.modules}
    scorers = SCORERS[:6] if quick else SCORERS
    for strategy in ("best_of_n",) if quick else ("best_of_n", "weighted_best_of_n"):
        for scorer in scorers:
            status, body, _ = chat(client, extra_body={"strategy": strategy,
                                                       "strategy_params": {"n": 2, "scorer": scorer}})
            r.case(status == 400 and leak_free(body), f"{strategy} scorer={scorer} -> {status}")
    for strategy in ("os:system", "ponder.think.best_of_n:BestOfN", "this:x"):
        status, body, _ = chat(client, extra_body={"strategy": strategy})
        r.case(status == 400 and leak_free(body), f"strategy={strategy} -> {status}")
    for module in sorted(FRESH - fresh_before):
        r.case(module not in sys.modules, f"module {module} was imported")
    if fresh_before:
        r.notes.append(f"import check skipped for already imported {sorted(fresh_before)}")
    bodies = {}
    for path in ("/etc", "/nonexistent-ponder-attack", "/etc/passwd", "runs/prm/final"):
        status, body, _ = chat(client, extra_body={"strategy": "beam", "strategy_params": {"prm": path}})
        r.case(status == 400 and leak_free(body), f"beam prm={path} -> {status}")
        bodies[path] = body
    r.case(len(set(bodies.values())) == 1, "beam prm errors differ between existing and missing paths")
    return r


# ---- 2. sealed reasoning replay --------------------------------------------------------------

def sealed_replay(servers: Servers, quick: bool) -> Result:
    r = Result("sealed reasoning replay", "B replays A's encrypted reasoning: 400; A replays to a server with "
               "another model name (same sealing key): 400; tampered blob: 400; A's own replay: 200")
    srv = servers.get("main")
    alice, bob = srv.client(srv.key("alice")), srv.client(srv.key("bob"))
    status, body, out = api(alice.responses.create, model=MODEL, input=QUESTION,
                            include=["reasoning.encrypted_content"], store=False, max_output_tokens=200)
    items = [i for i in (out.output if out else []) if i.type == "reasoning" and i.encrypted_content]
    if not r.case(status == 200 and bool(items), f"A's first request gave no sealed reasoning ({status})"):
        return r
    item = items[0]

    def replay(client, blob: str, model: str = MODEL):
        return api(client.responses.create, model=model, store=False, max_output_tokens=16, input=[
            {"type": "reasoning", "id": item.id, "summary": [], "encrypted_content": blob},
            {"role": "user", "content": "next?"}])

    status, body, _ = replay(bob, item.encrypted_content)
    r.case(status == 400 and leak_free(body), f"B replayed A's blob -> {status}")
    blob = item.encrypted_content
    middle = len(blob) // 2
    tampered = blob[:middle] + ("A" if blob[middle] != "A" else "B") + blob[middle + 1:]
    status, body, _ = replay(alice, tampered)
    r.case(status == 400 and leak_free(body), f"tampered blob -> {status}")
    status, body, _ = replay(alice, blob)
    r.case(status == 200, f"A's own replay -> {status} {error_code(body)}")
    renamed = servers.get("renamed")
    other = renamed.client(srv.key("alice"))
    status, body, _ = api(other.responses.create, model=renamed.model, input="Hi", store=False, max_output_tokens=8)
    if r.case(status == 200, f"control: A on the renamed server -> {status}"):
        status, body, _ = replay(other, blob, model=renamed.model)
        r.case(status == 400 and leak_free(body), f"A's blob on model {renamed.model} -> {status}")
    return r


# ---- 3. revoked keys -------------------------------------------------------------------------

def revoked_keys(servers: Servers, quick: bool) -> Result:
    r = Result("revoked keys", "after every key is revoked: revoked, bogus, malformed and missing keys "
               "get 401 on models, chat and responses")
    srv = servers.get("locked")
    secrets = [srv.key("k1"), srv.key("k2")]
    status, _, _ = api(srv.client(secrets[0]).models.list)
    r.case(status == 200, f"control: an active key -> {status}")
    for name in ("k1", "k2"):
        srv.services.keys.revoke(srv.key_id(name))
    cases = (("revoked k1", f"Bearer {secrets[0]}"), ("revoked k2", f"Bearer {secrets[1]}"),
             ("pk-bogus", "Bearer pk-bogus"), ("sk-style", "Bearer sk-" + "x" * 40), ("empty bearer", "Bearer"),
             ("basic scheme", f"Basic {secrets[0]}"), ("no key", None))
    chat_body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": 8}
    with httpx.Client(timeout=30) as http:
        for label, header in cases:
            headers = {"authorization": header} if header is not None else {}
            for what, method, path, body in (("models", "GET", "/v1/models", None),
                                             ("chat", "POST", "/v1/chat/completions", chat_body),
                                             ("responses", "POST", "/v1/responses",
                                              {"model": MODEL, "input": "Hi", "max_output_tokens": 8})):
                resp = http.request(method, srv.url + path, json=body, headers=headers)
                r.case(resp.status_code == 401, f"{label} on {what} -> {resp.status_code}")
    return r
