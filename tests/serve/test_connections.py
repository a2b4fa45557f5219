"""What a client can do to the server below the API: announce or send a huge body, or open
connections and never finish a request. Raw sockets, since an HTTP client would not misbehave.
Each test failed on the server before body_limit.py and header_deadline.py."""

from __future__ import annotations

import socket
import time

import httpx2 as httpx
import pytest

from ponder.serve.settings import ServeConfig

from tests.serve.conftest import running_server

LIMIT = 100_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    cfg = ServeConfig(db=str(tmp_path_factory.mktemp("conn") / "s.db"), max_body_bytes=LIMIT, header_timeout=1.0)
    with running_server(cfg) as (url, services):
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ")[1])


HEAD = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def test_a_huge_content_length_is_refused_before_reading(server):
    with connect(server) as sock:
        sock.sendall((HEAD + "Content-Length: 300000000\r\n\r\n{\"mo").encode())
        assert read_status(sock) == 413  # answered with 4 of 300 MB sent: nothing was waited for


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    chunk = b"x" * 65_536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with connect(server) as sock:
        sock.sendall((HEAD + "Transfer-Encoding: chunked\r\n\r\n").encode())
        try:
            while sent < 20_000_000:  # of a 100 MB body; the server must stop reading long before
                sock.sendall(frame)
                sent += len(chunk)
        except OSError:  # the server answered and closed
            pass
        sock.settimeout(10)
        assert read_status(sock) == 413
    # What the client got into socket buffers before the close; the server read at most LIMIT.
    assert sent < 10_000_000


def test_a_small_body_still_passes(server):
    r = httpx.post(server + "/v1/chat/completions", json={"model": "ponder-default", "messages": [
        {"role": "user", "content": "What is 2 + 2?"}], "max_completion_tokens": 4}, timeout=60)
    assert r.status_code == 200


def test_connections_that_never_finish_a_request_are_closed(server):
    socks = [connect(server) for _ in range(20)]
    try:
        for i, sock in enumerate(socks):
            # Half a request head, or nothing at all.
            if i % 2:
                sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        time.sleep(2.0)  # header_timeout is 1 s
        for sock in socks:
            sock.settimeout(5)
            assert sock.recv(1024) == b""  # closed by the server
        assert httpx.get(server + "/health", timeout=10).status_code == 200
    finally:
        for sock in socks:
            sock.close()


def test_a_body_that_stops_arriving_gets_a_408(server):
    with connect(server) as sock:
        sock.sendall((HEAD + "Content-Length: 1000\r\n\r\n{\"model\"").encode())
        sock.settimeout(10)
        assert read_status(sock) == 408


def test_an_answer_before_the_body_closes_the_connection(tmp_path):
    """A 401 sent before the body was read must not leave the server waiting for that body: else
    one byte at a time holds the connection forever, and enough of them fill --max-connections."""
    with running_server(ServeConfig(db=str(tmp_path / "s.db"), header_timeout=5.0)) as (url, services):
        services.keys.create("someone")  # keys exist: a request without one is refused at once
        with connect(url) as sock:
            sock.sendall((HEAD + "Content-Length: 90000\r\n\r\n{").encode())
            sock.settimeout(3)  # well inside header_timeout: only an explicit close ends it this soon
            answer = b""
            while chunk := sock.recv(4096):  # raises socket.timeout if the server keeps waiting
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 401") and b"connection: close" in answer.lower()


def test_a_body_trickled_a_byte_at_a_time_gets_a_408(tmp_path):
    with running_server(ServeConfig(db=str(tmp_path / "s.db"), header_timeout=0.5)) as (url, _):
        with connect(url) as sock:
            sock.sendall((HEAD + "Content-Length: 1000\r\n\r\n").encode())
            started = time.monotonic()
            try:
                while time.monotonic() - started < 10:  # each byte within the 0.5 s pause allowed
                    sock.sendall(b" ")
                    time.sleep(0.3)
            except OSError:  # closed after the 408
                pass
            sock.settimeout(10)
            assert read_status(sock) == 408
            assert time.monotonic() - started < 5  # the whole body had 6 x 0.5 s
