"""What every attack class shares: the in-process servers it attacks and the tools it attacks with.

`Result` is one class's line of the table; `leak_free`, `error_code` and `error_type` read an error
body; `Server` runs `ponder serve` in a thread on a free loopback port and `Servers` starts the
named ones lazily; `api`/`chat` wrap one openai-client call; `raw_exchange` and `request_head`
speak HTTP over a bare socket, for what a client library will not send; `HealthPoller` times
/health from another process. No attack lives here.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import subprocess
import sys
import threading
import time
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


# ---- /health from another process ----------------------------------------------------------

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
