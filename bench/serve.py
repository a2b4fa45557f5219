"""Serving throughput under concurrency: `ponder serve` with 1 streaming client, then with C.

The target (from the serving issue): with 32 concurrent streaming clients, aggregate output
tokens/s is at least 8x a single client's, with zero errors; p50 and p99 time-to-first-token are
reported.

The script starts a real `ponder serve` subprocess (free port, throwaway database), waits for
/health, warms it up, and runs two phases with the official `openai` client (AsyncOpenAI,
stream=True, stream_options include_usage):

  single      one client sends requests back to back for --duration seconds
  concurrent  --clients clients each send requests back to back for --duration seconds

Both phases cycle through the same held-out task prompts from the start, at temperature 0, with
the same reasoning_effort and max_completion_tokens 400. A client starts no request after the
deadline but finishes the one in flight, and the phase's time runs until the last one ends.

How to read the table:
  out tok/s   completion tokens (hidden reasoning included, from the final usage chunk) of all
              completed requests, over the phase's wall time: the server's aggregate output rate
  ttft        seconds from sending a request to its first chunk with visible answer text, the
              latency a user sees, since reasoning is hidden and streams nothing; a request whose
              answer is empty has no ttft and is counted under "no answer"
  1st chunk   seconds to the first chunk of any kind (the role chunk): HTTP plus admission
  client cpu  CPU the benchmark's own clients used, as a share of one core over the phase
  ratio       concurrent out tok/s over single out tok/s; the target is >= 8

The client runs on the same machine as the server and takes CPU from it, so on a small machine
the ratio is a lower bound. The script exits 1 if any request failed (an exception, an in-band
error, or a stream without its usage chunk) or if the ledger's row count disagrees with the
requests that completed.

    python bench/serve.py [--clients 32] [--duration 20] [--effort medium] [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import openai

from ponder.tasks.mix import held_out_set

MODEL = "ponder-default"
EFFORTS = ("none", "minimal", "low", "medium", "high")
MAX_COMPLETION_TOKENS = 400
N_PROMPTS = 200
WARMUP_REQUESTS = 2


@dataclass
class Phase:
    """What the clients of one phase saw."""

    name: str
    clients: int
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0  # CPU this process spent as the clients: taken from the server's cores
    requests: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    ttft: list[float] = field(default_factory=list)  # to the first visible answer text
    first_chunk: list[float] = field(default_factory=list)  # to the first chunk of any kind
    no_answer: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.elapsed_s if self.elapsed_s else 0.0


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks; nan for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# ---- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, db: Path, log: Path, server_args: list[str]) -> subprocess.Popen:
    # --allow-undeployable: a benchmark measures speed, not whether the model may ship. Without it,
    # once `ponder card` has stored a failing card for the model (the bundled one fails on min_n),
    # the server refuses to start and the benchmark with it.
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "ponder", "serve", "--port", str(port), "--db", str(db), "--allow-undeployable",
             *server_args],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )


def wait_healthy(proc: subprocess.Popen, url: str, log: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ponder serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"ponder serve was not healthy after {timeout_s:.0f}s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ledger_rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM usage").fetchone()[0]


# ---- the clients --------------------------------------------------------------------------------


async def one_request(client: openai.AsyncOpenAI, prompt: str, effort: str, phase: Phase) -> None:
    sent = time.perf_counter()
    first_chunk = ttft = None
    usage = None
    try:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True,
            stream_options={"include_usage": True}, temperature=0, reasoning_effort=effort,
            max_completion_tokens=MAX_COMPLETION_TOKENS,
        )
        async for chunk in stream:
            now = time.perf_counter()
            if first_chunk is None:
                first_chunk = now - sent
            if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                ttft = now - sent
            if chunk.usage is not None:
                usage = chunk.usage
    except Exception as error:  # a benchmark counts failures; it does not stop at the first
        phase.errors.append(f"{type(error).__name__}: {error}")
        return
    if usage is None:
        phase.errors.append("stream ended without a usage chunk")
        return
    phase.requests += 1
    phase.output_tokens += usage.completion_tokens
    details = usage.completion_tokens_details
    phase.reasoning_tokens += (details.reasoning_tokens or 0) if details else 0
    phase.first_chunk.append(first_chunk)
    if ttft is None:
        phase.no_answer += 1
    else:
        phase.ttft.append(ttft)


async def run_phase(client: openai.AsyncOpenAI, name: str, clients: int, duration_s: float,
                    prompts: list[str], effort: str) -> Phase:
    phase = Phase(name, clients)
    queue = itertools.cycle(prompts)  # shared: the phase walks the list in order, whatever the clients
    start, cpu = time.perf_counter(), time.process_time()
    deadline = start + duration_s

    async def client_loop() -> None:
        while time.perf_counter() < deadline:
            await one_request(client, next(queue), effort, phase)

    await asyncio.gather(*(client_loop() for _ in range(clients)))
    phase.elapsed_s = time.perf_counter() - start
    phase.client_cpu_s = time.process_time() - cpu
    return phase


async def measure(url: str, clients: int, duration_s: float, effort: str) -> tuple[Phase, Phase, int]:
    prompts = [p.prompt for p in held_out_set(N_PROMPTS)]
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120) as client:
        warmup = Phase("warmup", 1)
        for prompt in prompts[:WARMUP_REQUESTS]:
            await one_request(client, prompt, effort, warmup)
        if warmup.errors:
            raise RuntimeError(f"warm-up request failed: {warmup.errors[0]}")
        single = await run_phase(client, "single", 1, duration_s, prompts, effort)
        concurrent = await run_phase(client, "concurrent", clients, duration_s, prompts, effort)
    return single, concurrent, warmup.requests


# ---- the report ---------------------------------------------------------------------------------


def report(single: Phase, concurrent: Phase, effort: str) -> None:
    print(f"\nreasoning_effort={effort}  max_completion_tokens={MAX_COMPLETION_TOKENS}  temperature=0\n")
    head = (f"{'phase':<11} {'clients':>7} {'requests':>8} {'errors':>6} {'secs':>6} {'out tok':>8} "
            f"{'out tok/s':>9} {'tok/req':>7} {'ttft p50':>8} {'ttft p99':>8} {'1st p50':>7} {'1st p99':>7} "
            f"{'no answer':>9} {'client cpu':>10}")
    print(head)
    print("-" * len(head))
    for p in (single, concurrent):
        per_request = p.output_tokens / p.requests if p.requests else 0.0
        print(f"{p.name:<11} {p.clients:>7} {p.requests:>8} {len(p.errors):>6} {p.elapsed_s:>6.1f} "
              f"{p.output_tokens:>8} {p.tokens_per_s:>9.1f} {per_request:>7.1f} "
              f"{percentile(p.ttft, 50):>8.3f} {percentile(p.ttft, 99):>8.3f} "
              f"{percentile(p.first_chunk, 50):>7.3f} {percentile(p.first_chunk, 99):>7.3f} "
              f"{p.no_answer:>9} {p.client_cpu_s / p.elapsed_s:>10.0%}")
    ratio = concurrent.tokens_per_s / single.tokens_per_s if single.tokens_per_s else float("nan")
    verdict = "meets" if ratio >= 8 else "misses"
    print(f"\nconcurrent/single aggregate out tok/s: {ratio:.2f}x ({verdict} the 8x target)")
    for p in (single, concurrent):
        for message, count in _tally(p.errors):
            print(f"error in {p.name} ({count}x): {message}")


def _tally(errors: list[str]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for e in errors:
        counts[e] = counts.get(e, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients in the second phase")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds each phase sends requests")
    parser.add_argument("--effort", default="medium", choices=EFFORTS, help="reasoning_effort of every request")
    parser.add_argument("--port", type=int, default=0, help="port for the server; 0 = a free one")
    parser.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    parser.add_argument("--threads", type=int, default=0, help="the server's --threads (0 = its auto choice)")
    args = parser.parse_args()
    if args.clients < 1 or args.duration <= 0:
        parser.error("--clients must be at least 1 and --duration above 0")

    port = args.port or free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="ponder-bench-serve-") as tmp:
        db, log = Path(tmp) / "serve.db", Path(tmp) / "server.log"
        proc = start_server(port, db, log, ["--threads", str(args.threads)])
        try:
            wait_healthy(proc, url, log)
            single, concurrent, warmed = asyncio.run(measure(url, args.clients, args.duration, args.effort))
        finally:
            stop_server(proc)
        report(single, concurrent, args.effort)
        expected = warmed + single.requests + concurrent.requests
        rows = ledger_rows(db)
        print(f"ledger: {rows} rows for {expected} completed requests")
    if args.json:
        print(json.dumps({p.name: {"clients": p.clients, "requests": p.requests, "errors": len(p.errors),
                                   "elapsed_s": round(p.elapsed_s, 3), "output_tokens": p.output_tokens,
                                   "tokens_per_s": round(p.tokens_per_s, 2),
                                   "ttft_p50": percentile(p.ttft, 50), "ttft_p99": percentile(p.ttft, 99),
                                   "first_chunk_p50": percentile(p.first_chunk, 50),
                                   "first_chunk_p99": percentile(p.first_chunk, 99)}
                          for p in (single, concurrent)}))
    return 1 if single.errors or concurrent.errors or rows != expected else 0


if __name__ == "__main__":
    sys.exit(main())
