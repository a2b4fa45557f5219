"""A real `ponder serve` (uvicorn, the bundled model) on a loopback port, driven by the official
`openai` client."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import replace

import openai
import pytest
import torch
import uvicorn

from ponder.serve.db import connect
from ponder.serve.run import build_app, uvicorn_config
from ponder.serve.settings import ServeConfig

MODEL = "ponder-default"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(cfg: ServeConfig):
    """Serve `cfg` in a thread; yields (base_url, services)."""
    cfg = replace(cfg, port=free_port())
    threads = torch.get_num_threads()  # build_app may set the engine's threads; the suite keeps its own
    app, services = build_app(cfg)
    server = uvicorn.Server(uvicorn_config(app, cfg, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{cfg.port}", services
    finally:
        server.should_exit = True
        thread.join(10)
        services.close()
        torch.set_num_threads(threads)


@pytest.fixture
def conn(tmp_path):
    """A fresh accounts database (keys, limits, ledger, stored responses)."""
    conn = connect(tmp_path / "serve.db")
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One keyless loopback server for the module; reasoning may be revealed on request."""
    db = tmp_path_factory.mktemp("serve") / "serve.db"
    with running_server(ServeConfig(db=str(db), allow_reasoning=True)) as (url, services):
        yield url, services


@pytest.fixture
def client(server):
    url, _ = server
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
