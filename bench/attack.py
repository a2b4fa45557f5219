"""Attacks on `ponder serve`, one class per line: does the server resist them?

Each class of the security issue is replayed against a real server (the bundled model, uvicorn,
the app `ponder serve` builds) started in this process on a free loopback port with a throwaway
database. Nothing leaves 127.0.0.1; every loop is bounded in count and time.

One line per class:

    class | cases tried | failures (the attack succeeded) | what was checked

then `N passed, M failed` (a class with 0 failures passes). Measurements follow in [brackets],
the cases that failed after FAILED:, and errors the server logged meanwhile (an unhandled
exception) are noted in the class's line. /health is polled from a separate process, since a
stall that holds this process's GIL would stop an in-process poller's clock too. Class 7 adds
one case beyond the issue: the same megabyte as 30k tiny messages. The deploy gate (class 10) is left
to the `ponder card` tests and printed as skipped. This is a measurement, not a test: the script
exits 0 whatever it finds, and 1 only if a server cannot start.

Servers started (lazily, only those the chosen classes need):
  main      keys on, --max-body-bytes 3000000: classes 1 2 4 5 6 7 9 11
  renamed   the same database and sealing key, another --served-model-name: class 2
  locked    its own database, every key revoked: class 3
  edge      its own database, no keys (loopback quick start), --header-timeout 2: class 8

    python bench/attack.py [--only 1,client-code,...] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

try:
    import httpx2 as httpx  # the name this project's environment installs httpx under
except ImportError:  # pragma: no cover
    import httpx
import openai
import uvicorn

from ponder.serve.keys import KeyLimits
from ponder.serve.run import build_app, uvicorn_config
from ponder.serve.settings import ServeConfig

MODEL = "ponder-default"
QUESTION = "What is 347 * 29?"
MAX_BODY = 3_000_000
HEADER_TIMEOUT = 2.0
LEAKS = ("<function", "object at 0x", "Traceback", "<think>", "</think>", "<|assistant|>", 'File "')


# ---- results ---------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    checked: str
    tried: int = 0
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def case(self, ok: bool, label: str) -> bool:
        """One attack tried; `ok` means the server resisted it."""
        self.tried += 1
        if not ok:
            self.failed.append(label)
        return ok

    def line(self) -> str:
        detail = self.checked
        if self.notes:
            detail += " [" + "; ".join(self.notes) + "]"
        if self.failed:
            shown = ", ".join(self.failed[:4]) + (f", +{len(self.failed) - 4} more" if len(self.failed) > 4 else "")
            detail += f" FAILED: {shown}"
        return f"{self.name} | {self.tried} | {len(self.failed)} | {detail}"


def leak_free(text: str | None) -> bool:
    return not any(marker in (text or "") for marker in LEAKS)


def error_code(text: str | None) -> str | None:
    try:
        return json.loads(text or "")["error"].get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def error_type(text: str | None) -> str | None:
    try:
        return json.loads(text or "")["error"].get("type")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class ServerLog(logging.Handler):
    """Keeps the servers' error records (an unhandled exception, a 500) off the table, to be
    reported in the line of the class during which they were logged."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def describe(self, since: int) -> str | None:
        new = self.records[since:]
        if not new:
            return None
        first = new[0]
        what = first.getMessage()[:60]
        if first.exc_info and first.exc_info[0]:
            what += f" ({first.exc_info[0].__name__})"
        return f"server logged {len(new)} error(s), first: {what}"


SERVER_LOG = ServerLog()


# ---- servers ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerError(RuntimeError):
    pass


class Server:
    """`ponder serve` in a thread on a free loopback port."""

    def __init__(self, cfg: ServeConfig, setup: Callable | None = None):
        self.port = free_port()
        self.cfg = replace(cfg, port=self.port, host="127.0.0.1")
        try:
            self.app, self.services = build_app(self.cfg)
        except Exception as error:
            raise ServerError(f"the server could not be built: {type(error).__name__}: {error}") from None
        self.keys: dict[str, tuple[str, object]] = {}  # name -> (secret, ApiKey)
        if setup:
            setup(self)
        self.server = uvicorn.Server(uvicorn_config(self.app, self.cfg, log_level="error", log_config=None))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.services.close()
                raise ServerError(f"the server ({self.cfg.served_model_name or 'main'}) did not start")
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"
        self.model = self.services.model_name

    def key(self, name: str, limits: KeyLimits = KeyLimits()) -> str:
        """The secret of a key named `name`, made on first use."""
        if name not in self.keys:
            self.keys[name] = self.services.keys.create(name, limits)
        return self.keys[name][0]

    def key_id(self, name: str) -> str:
        return self.keys[name][1].id

    def client(self, secret: str | None, timeout: float = 60) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=secret or "", max_retries=0, timeout=timeout)

    def post(self, path: str, body: dict | bytes, secret: str | None = None, timeout: float = 60) -> httpx.Response:
        headers = {"authorization": f"Bearer {secret}"} if secret else {}
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["content-type"] = "application/json"
        return httpx.post(self.url + path, content=content, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.services.close()


class Servers:
    def __init__(self, root: Path):
        self.root = root
        self._started: dict[str, Server] = {}

    def get(self, name: str) -> Server:
        if name not in self._started:
            self._started[name] = self._start(name)
        return self._started[name]

    def _start(self, name: str) -> Server:
        main_db = str(self.root / "main" / "serve.db")
        if name == "main":
            return Server(ServeConfig(db=main_db, max_body_bytes=MAX_BODY),
                          setup=lambda s: (s.key("alice"), s.key("bob")))  # the db has keys before it serves
        if name == "renamed":
            return Server(ServeConfig(db=main_db, served_model_name="ponder-renamed", max_body_bytes=MAX_BODY))
        if name == "locked":
            return Server(ServeConfig(db=str(self.root / "locked" / "serve.db")))
        if name == "edge":
            return Server(ServeConfig(db=str(self.root / "edge" / "serve.db"), max_body_bytes=MAX_BODY,
                                      header_timeout=HEADER_TIMEOUT))
        raise KeyError(name)

    def close(self) -> None:
        for server in self._started.values():
            server.close()


def api(call: Callable, **kwargs) -> tuple[int, str | None, object]:
    """(status, error body, result) of one openai-client call."""
    try:
        return 200, None, call(**kwargs)
    except openai.APIStatusError as error:
        return error.status_code, error.response.text, None
    except openai.APIConnectionError as error:
        return 0, f"connection error: {error}", None


def chat(client: openai.OpenAI, model: str = MODEL, content: str = "Hi", **kwargs):
    kwargs.setdefault("max_completion_tokens", 16)
    return api(client.chat.completions.create, model=model, messages=[{"role": "user", "content": content}], **kwargs)


# ---- raw HTTP --------------------------------------------------------------------------------

@dataclass
class RawResult:
    status: int | None  # None: no response, the connection was closed or timed out
    body: bytes
    sent: int  # body bytes the client got out before the response began (or the socket broke)
    elapsed: float
    closed: bool  # the server closed or reset the connection


def raw_exchange(port: int, head: bytes, chunks: Iterable[bytes], timeout: float) -> RawResult:
    """Send a request head and body chunks, stopping as soon as the server answers or hangs up;
    then read its response (until Content-Length is met, EOF or `timeout`)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # so `sent` is close to what the server took
    sock.setblocking(False)
    start = time.monotonic()
    deadline = start + timeout
    sent, received, closed = 0, b"", False
    pending = head
    counting = False  # the head is not counted in `sent`
    chunk_iter = iter(chunks)
    try:
        while time.monotonic() < deadline and not closed:
            if not pending:
                nxt = next(chunk_iter, None)
                if nxt is None:
                    break
                pending, counting = nxt, True
            readable, writable, _ = select.select([sock], [sock], [], max(0.0, deadline - time.monotonic()))
            if readable:
                break
            if writable:
                try:
                    n = sock.send(pending[:65536])
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                pending = pending[n:]
                sent += n if counting else 0
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                break
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                closed = True
                break
            if not data:
                closed = True
                break
            received += data
            if _complete(received):
                break
    finally:
        sock.close()
    status = None
    if received.startswith(b"HTTP/"):
        status = int(received.split(b" ", 2)[1])
    body = received.partition(b"\r\n\r\n")[2]
    return RawResult(status, body, sent, time.monotonic() - start, closed)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def request_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


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


# ---- 6. abandoned strategy streams -----------------------------------------------------------

def abandoned_streams(servers: Servers, quick: bool) -> Result:
    r = Result("abandoned strategy streams", "self_consistency k=8 streams closed after the first chunk "
               "(at once, and 0.5 s later): ledger rows 'cancelled', completion_tokens > 0, within 5 s; a plain "
               "request right after is <= 2x baseline + 0.1 s")
    srv = servers.get("main")
    secret = srv.key("c6")
    plain = {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], "reasoning_effort": "low",
             "temperature": 0, "max_completion_tokens": 64}

    def latency() -> float:
        t = time.monotonic()
        srv.post("/v1/chat/completions", plain, secret)
        return time.monotonic() - t

    def abandon(hold: float) -> tuple[str | None, float]:
        """Stream, read the first chunk, keep the connection `hold` s, close it; the request id."""
        request_id = None
        with httpx.Client(timeout=30) as http:
            with http.stream("POST", srv.url + "/v1/chat/completions", json=body,
                             headers={"authorization": f"Bearer {secret}"}) as resp:
                r.case(resp.status_code == 200, f"stream -> {resp.status_code}")
                lines = resp.iter_lines()  # held: closing this generator closes the connection
                for line in lines:
                    if line.startswith("data: {"):
                        request_id = json.loads(line[6:]).get("id")
                        break
                time.sleep(hold)
        return request_id, time.monotonic()

    def ledger_row(request_id: str | None, closed: float):
        while request_id and time.monotonic() - closed < 5:
            row = next((x for x in srv.services.ledger.rows(key=srv.key_id("c6")) if x.request_id == request_id),
                       None)
            if row is not None:
                return row, time.monotonic() - closed
            time.sleep(0.05)
        return None, time.monotonic() - closed

    body = {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}], "reasoning_effort": "high",
            "stream": True, "strategy": "self_consistency", "strategy_params": {"k": 8}}
    before = statistics.median(latency() for _ in range(3))
    for hold in (0.0, 0.5):  # closed at once, and once its samples are well under way
        request_id, closed = abandon(hold)
        after = latency() if hold else None  # at once: samples still running would slow it down
        row, waited = ledger_row(request_id, closed)
        label = f"closed after {hold:g} s"
        if r.case(row is not None, f"{label}: no ledger row {waited:.1f} s after the close"):
            r.notes.append(f"{label}: {row.status}, {row.completion_tokens} tokens, by {waited:.2f} s")
            r.case(row.status == "cancelled", f"{label}: row status {row.status!r}")
            r.case(row.completion_tokens > 0, f"{label}: row bills 0 completion tokens")
    r.notes.append(f"plain latency {before:.2f} s before, {after:.2f} s right after")
    r.case(after <= 2 * before + 0.1, f"plain latency {after:.2f} s after vs {before:.2f} s before")
    return r


# ---- 7. event-loop stalls --------------------------------------------------------------------

POLLER = r"""
import http.client, json, select, sys, time
host, port, every = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
lat, failures, conn = [], 0, None
due = time.monotonic()
while not select.select([sys.stdin], [], [], 0)[0]:
    for attempt in (0, 1):  # a keep-alive connection the server closed is reopened once, not a failure
        try:
            conn = conn or http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/health")
            resp = conn.getresponse(); resp.read()
            ok = resp.status == 200
            break
        except (OSError, http.client.HTTPException):
            conn, ok = None, False
    # From when the poll was due, not when it went out: a stalled poller is not a fast server.
    lat.append(time.monotonic() - due); failures += not ok
    due = max(due + every, time.monotonic())
    time.sleep(max(0.0, due - time.monotonic()))
print(json.dumps({"latencies": lat, "failures": failures}))
"""


class HealthPoller:
    """GET /health every `every` seconds from another process (this one's threads share the
    server's GIL, so a stall that holds it would also stop an in-process poller's clock)."""

    def __init__(self, port: int, every: float):
        self.port, self.every = port, every
        self.latencies: list[float] = []
        self.failures = 0

    def __enter__(self):
        self._proc = subprocess.Popen([sys.executable, "-c", POLLER, "127.0.0.1", str(self.port), str(self.every)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)  # its start-up, then a few polls before the attack
        return self

    def __exit__(self, *exc):
        time.sleep(0.3)
        try:
            out, _ = self._proc.communicate("stop\n", timeout=15)
            found = json.loads(out)
            self.latencies, self.failures = found["latencies"], found["failures"]
        except (subprocess.TimeoutExpired, ValueError):
            self._proc.kill()
            self._proc.wait()
            self.failures += 1


def event_loop_stalls(servers: Servers, quick: bool) -> Result:
    r = Result("event-loop stalls", f"1 MB prompts (x{1 if quick else 3}) get 400 context_length_exceeded "
               "in < 0.5 s, and 429 in "
               "< 0.5 s for a key over rpm, while /health polled every 10 ms (another process) stays < 100 ms; "
               "also 1 MB as 30k messages")
    srv = servers.get("main")
    secret = srv.key("c7")
    limited = srv.key("c7rpm", KeyLimits(rpm=1))
    huge = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "a" * 1_000_000}],
                       "max_completion_tokens": 16}).encode()
    status, _, _ = chat(srv.client(limited))  # uses up the minute's one request
    r.case(status == 200, f"control: rpm key's first request -> {status}")

    def send(key: str, body: bytes) -> RawResult:
        head = request_head("/v1/chat/completions", {"Authorization": f"Bearer {key}",
                                                     "Content-Type": "application/json",
                                                     "Content-Length": str(len(body))})
        return raw_exchange(srv.port, head, [body], timeout=20)

    with HealthPoller(srv.port, 0.01) as poller:
        for i in range(1 if quick else 3):
            res = send(secret, huge)
            code = error_code(res.body.decode(errors="replace"))
            r.case(res.status == 400 and code == "context_length_exceeded" and res.elapsed < 0.5,
                   f"1 MB prompt {i + 1} -> {res.status} {code} in {res.elapsed:.2f} s")
        res = send(limited, huge)
        r.case(res.status == 429 and res.elapsed < 0.5, f"1 MB over rpm -> {res.status} in {res.elapsed:.2f} s")
    worst = max(poller.latencies, default=float("inf"))
    r.case(worst < 0.1, f"/health took {worst * 1000:.0f} ms")
    r.case(poller.failures == 0, f"{poller.failures} /health failures")
    # Beyond the case: the same megabyte as 30k tiny messages, which is cheap to send and
    # costs the server a JSON parse and a validation of 30k objects.
    many = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "a"}] * 30_000}).encode()
    with HealthPoller(srv.port, 0.01) as many_poller:
        res = send(secret, many)
    many_worst = max(many_poller.latencies, default=float("inf"))
    r.case(res.status == 400 and many_worst < 0.1,
           f"1 MB as 30k messages -> {res.status} in {res.elapsed:.2f} s, /health {many_worst * 1000:.0f} ms")
    r.notes.append(f"worst /health {worst * 1000:.0f} ms over {len(poller.latencies)} polls (one 1 MB message), "
                   f"{many_worst * 1000:.0f} ms (30k messages)")
    return r


# ---- 8. body size and slow connections -------------------------------------------------------

def slow_connections(servers: Servers, quick: bool) -> Result:
    stalled = 50 if quick else 200
    r = Result("body size and slow connections", f"Content-Length 300 MB: 413 before 1 KB sent; chunked 100 MB: "
               f"413 near {MAX_BODY} B; stalled body: 408/closed; {stalled} stalled/trickling heads closed within "
               f"header_timeout {HEADER_TIMEOUT:g} s + 3 s while /health answers")
    srv = servers.get("edge")
    path, ctype = "/v1/chat/completions", {"Content-Type": "application/json"}
    res = raw_exchange(srv.port, request_head(path, {**ctype, "Content-Length": "300000000"}),
                       [b'{"model": "ponder-default", '], timeout=5)
    r.case(res.status == 413 and res.sent < 1024, f"declared 300 MB -> {res.status} after {res.sent} B sent")
    chunk = b"x" * 65536
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    res = raw_exchange(srv.port, request_head(path, {**ctype, "Transfer-Encoding": "chunked"}),
                       (framed for _ in range(100_000_000 // len(chunk))), timeout=30)
    r.notes.append(f"chunked: {res.status} after {res.sent / 1e6:.1f} MB sent")
    r.case(res.status == 413 and res.sent <= MAX_BODY + 8 * 2**20,
           f"chunked 100 MB -> {res.status} after {res.sent / 1e6:.1f} MB")
    res = raw_exchange(srv.port, request_head(path, {**ctype, "Content-Length": "100"}), [b'{"model": '],
                       timeout=HEADER_TIMEOUT + 5)
    r.case((res.status == 408 or res.closed) and res.elapsed <= HEADER_TIMEOUT + 3,
           f"stalled body -> {res.status} in {res.elapsed:.1f} s")
    r.case(*slowloris(srv, stalled, r))
    return r


def slowloris(srv: Server, count: int, r: Result) -> tuple[bool, str]:
    """`count` connections send part of a request head: most then stall, one in ten trickles a
    byte every 0.5 s (which an idle timeout alone never closes)."""
    partial = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl"
    socks, opened = [], time.monotonic()
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(partial)
        s.setblocking(False)
        socks.append(s)
    trickling = set(socks[::10])
    open_, closed_at = set(socks), []
    next_trickle = time.monotonic() + 0.5
    limit = HEADER_TIMEOUT + 3
    try:
        with HealthPoller(srv.port, 0.2) as poller:
            while open_ and time.monotonic() - opened < limit + 2:
                readable, _, _ = select.select(list(open_), [], [], 0.1)
                for s in readable:
                    try:
                        data = s.recv(4096)
                    except (ConnectionResetError, OSError):
                        data = b""
                    if not data:  # a response (408/400) followed by a close counts at the close
                        open_.discard(s)
                        closed_at.append(time.monotonic() - opened)
                if time.monotonic() >= next_trickle:
                    next_trickle += 0.5
                    for s in trickling & open_:
                        with contextlib.suppress(OSError):
                            s.send(b"x")
    finally:
        for s in socks:
            s.close()
    latest = max(closed_at, default=float("inf"))
    r.notes.append(f"{len(closed_at)}/{count} heads closed, last at {latest:.1f} s; /health {len(poller.latencies)} "
                   f"polls, {poller.failures} failed, worst {max(poller.latencies, default=0) * 1000:.0f} ms")
    ok = not open_ and latest <= limit and poller.failures == 0
    return ok, f"{len(open_)} of {count} stalled heads still open, last close {latest:.1f} s, " \
               f"{poller.failures} /health failures"


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


# ---- 11. OpenAI parameters -------------------------------------------------------------------

def openai_params(servers: Servers, quick: bool) -> Result:
    r = Result("OpenAI params", "service_tier=auto, prompt_cache_key, safety_identifier, verbosity=low are 200 "
               "on chat and responses; bogus_param is 400 naming it")
    srv = servers.get("main")
    client = srv.client(srv.key("c11"))
    accepted = {"service_tier=auto": dict(service_tier="auto"),
                "prompt_cache_key+safety_identifier": dict(extra_body={"prompt_cache_key": "x",
                                                                       "safety_identifier": "u1"}),
                "verbosity=low": dict(verbosity="low")}
    for label, kwargs in accepted.items():
        status, body, _ = chat(client, max_completion_tokens=8, **kwargs)
        r.case(status == 200, f"chat {label} -> {status} {error_code(body)}")
    status, body, _ = api(client.responses.create, model=MODEL, input="Hi", max_output_tokens=8, service_tier="auto",
                          prompt_cache_key="x", safety_identifier="u1", text={"verbosity": "low"})
    r.case(status == 200, f"responses with all four -> {status} {error_code(body)}")
    status, body, _ = chat(client, extra_body={"bogus_param": 1})
    r.case(status == 400 and "bogus_param" in (body or ""), f"chat bogus_param -> {status}")
    status, body, _ = api(client.responses.create, model=MODEL, input="Hi", max_output_tokens=8,
                          extra_body={"bogus_param": 1})
    r.case(status == 400 and "bogus_param" in (body or ""), f"responses bogus_param -> {status}")
    return r


# ---- main ------------------------------------------------------------------------------------

CLASSES: list[tuple[str, str, Callable | None]] = [
    ("1", "client-code", client_code),
    ("2", "sealed-replay", sealed_replay),
    ("3", "revoked-keys", revoked_keys),
    ("4", "rejected-quota", rejected_quota),
    ("5", "tpm-burst", tpm_burst),
    ("6", "abandoned-streams", abandoned_streams),
    ("7", "event-loop", event_loop_stalls),
    ("8", "slow-connections", slow_connections),
    ("9", "amplification", amplification),
    ("10", "deploy-gate", None),
    ("11", "openai-params", openai_params),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="classes: " + ", ".join(f"{n}={slug}" for n, slug, _ in CLASSES))
    parser.add_argument("--only", default="",
                        help="comma-separated classes to run, by number or name (e.g. 1,tpm-burst)")
    parser.add_argument("--quick", action="store_true", help="fewer cases per class (smaller bursts, fewer scorers)")
    args = parser.parse_args(argv)
    wanted = {w.strip() for w in args.only.split(",") if w.strip()}
    unknown = wanted - {n for n, _, _ in CLASSES} - {s for _, s, _ in CLASSES}
    if unknown:
        parser.error(f"unknown class {', '.join(sorted(unknown))}; choose from "
                     + ", ".join(f"{n}={s}" for n, s, _ in CLASSES))
    for name in ("ponder", "uvicorn"):  # the servers' log lines would interleave with the table
        logging.getLogger(name).addHandler(SERVER_LOG)
        logging.getLogger(name).propagate = False
    passed = failed = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ponder-attack-") as root:
        servers = Servers(Path(root))
        try:
            for number, slug, run in CLASSES:
                if wanted and number not in wanted and slug not in wanted:
                    continue
                if run is None:
                    print("deploy gate | - | - | skipped here: the `ponder card` / gate tests cover it", flush=True)
                    continue
                logged = len(SERVER_LOG.records)
                try:
                    result = run(servers, args.quick)
                except ServerError:
                    raise
                except Exception as error:  # a broken harness is reported, not hidden
                    result = Result(slug.replace("-", " "), "harness error")
                    result.case(False, f"{type(error).__name__}: {str(error)[:160]}")
                if (errors := SERVER_LOG.describe(logged)) is not None:
                    result.notes.append(errors)
                print(result.line(), flush=True)
                passed += not result.failed
                failed += bool(result.failed)
        except ServerError as error:
            print(f"attack: {error}", file=sys.stderr)
            return 1
        finally:
            servers.close()
    print(f"{passed} passed, {failed} failed ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
