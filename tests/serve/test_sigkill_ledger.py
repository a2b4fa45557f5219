"""SIGKILL a real `ponder serve` under load, then audit the ledger it leaves behind.

The server is a subprocess (the only way to SIGKILL it), driven by the official `openai` client.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai

from ponder.tasks.mix import held_out_set

MODEL = "ponder-default"
N_REQUESTS = 24
KILL_AFTER = 4  # completed responses before the kill
# Mixed efforts, so requests finish at different times and many are mid-generation at the kill.
EFFORTS = ("none", "low", "medium", "high")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ponder_serve(db: Path, log: Path):
    """`ponder serve` on a free port over `db`; yields (process, base_url) once /health answers."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ponder", "serve", "--port", str(port), "--db", str(db)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"ponder serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"ponder serve never became healthy:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(10)


def ledger(db: Path) -> dict[str, tuple[int, str]]:
    """request_id -> (completion_tokens, status), after checking that no id is there twice."""
    conn = sqlite3.connect(db)
    try:
        repeated = conn.execute("SELECT request_id FROM usage GROUP BY request_id HAVING COUNT(*) > 1").fetchall()
        assert repeated == [], f"request ids recorded more than once: {repeated}"
        rows = conn.execute("SELECT request_id, completion_tokens, status FROM usage").fetchall()
        return {rid: (tokens, status) for rid, tokens, status in rows}
    finally:
        conn.close()


def test_sigkill_under_load_leaves_one_row_per_completed_response(tmp_path):
    """The server writes a request's ledger row before sending the response's bytes, so:

    - every response a client received whole has exactly one row (with the tokens the client
      was told it used), however abruptly the server dies afterwards;
    - a row with no completed client response is possible but bounded: the server recorded the
      request and was killed before the bytes reached the client. Only a request that was still
      in flight at the kill can be such a row, so there are at most as many of them as requests
      that failed on the client side (which are at most those in flight when the kill was sent);
    - synchronous=FULL plus WAL leaves a file that passes integrity_check and that the next
      server opens and appends to, with none of the earlier rows lost.
    """
    db, log = tmp_path / "serve.db", tmp_path / "server.log"
    prompts = [p.prompt for p in held_out_set(N_REQUESTS)]
    completed: dict[int, tuple[str, int]] = {}  # request index -> (response id, completion tokens)
    failed: dict[int, BaseException] = {}
    done = threading.Condition()

    with ponder_serve(db, log) as (proc, url):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)

        def send(i: int) -> None:
            try:
                r = client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": prompts[i]}],
                    reasoning_effort=EFFORTS[i % len(EFFORTS)], max_completion_tokens=400, temperature=0,
                )
                outcome = (r.id, r.usage.completion_tokens)
            except Exception as error:  # the kill: recorded and checked below
                with done:
                    failed[i] = error
                    done.notify_all()
                return
            with done:
                completed[i] = outcome
                done.notify_all()

        threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(N_REQUESTS)]
        for t in threads:
            t.start()
        with done:
            assert done.wait_for(lambda: len(completed) + len(failed) >= KILL_AFTER, timeout=20), \
                "requests did not complete before the kill"
            assert not failed, f"a request failed before the kill: {next(iter(failed.values()))!r}"
            in_flight_at_kill = N_REQUESTS - len(completed)
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        for t in threads:
            t.join(35)
        client.close()

    assert len(completed) + len(failed) == N_REQUESTS, "a client thread never returned"
    assert failed, "every request finished before the kill, so the kill tested nothing; send more or heavier ones"
    for i, error in failed.items():
        assert isinstance(error, openai.APIConnectionError) and not isinstance(error, openai.APITimeoutError), \
            f"request {i} failed with {error!r}, not a dropped connection"

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    rows = ledger(db)
    for i, (response_id, tokens) in completed.items():
        assert rows.get(response_id) == (tokens, "completed"), f"request {i} ({response_id}) is not billed as sent"
    orphans = set(rows) - {rid for rid, _ in completed.values()}
    assert len(orphans) <= len(failed) <= in_flight_at_kill, (
        f"{len(orphans)} rows without a completed response, but only {len(failed)} requests were cut off"
    )

    with ponder_serve(db, log) as (_, url):
        with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30) as client:
            r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": prompts[0]}],
                                               reasoning_effort="low", max_completion_tokens=400)
    after = ledger(db)
    assert set(after) == set(rows) | {r.id}, "the restarted server lost rows or did not record its request"
    assert after[r.id] == (r.usage.completion_tokens, "completed")
