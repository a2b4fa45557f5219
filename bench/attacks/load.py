"""Attacks on the server's time: work left running, a blocked event loop, connections held open
(classes 6-8).

6. abandoned strategy streams: a closed stream cancels its samples, bills what they spent, and
   leaves no slowdown behind.
7. event-loop stalls: a megabyte prompt is refused fast while /health keeps answering.
8. body size and slow connections: oversized, chunked, stalled and slowloris requests are cut
   off by the body limit and header timeout while /health keeps answering.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import statistics
import time

from ponder.serve.keys import KeyLimits

from .harness import (HEADER_TIMEOUT, MAX_BODY, MODEL, QUESTION, HealthPoller, RawResult, Result, Server, Servers,
                      chat, error_code, httpx, raw_exchange, request_head)


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
