"""The hidden reasoning never leaves the server: every body, every raw SSE stream and every
INFO-or-louder log line is scanned for it, and none holds it.

For each request the test re-runs the same conversation and settings straight through the
engine (temperature 0, or the same seeds) to learn the reasoning the server hid, checks the
token counts agree (so it is the very reasoning that was hidden), and looks for it with
`summary.leaks` (any 12+ character stretch) and line by line (any line of 8+ characters).
A server that may reveal reasoning, asked to, is the positive control: there the scan finds it.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx2 as httpx
import pytest

from ponder.engine.base import Completion, SamplingParams
from ponder.model.chat import Message
from ponder.serve.settings import EFFORT_TO_BUDGET, ServeConfig
from ponder.serve.summary import leaks

from tests.serve.conftest import MODEL, running_server

PROMPT = "What is 347 * 29?"
FOLLOW_UP = "What is 58 * 73?"
CHAT, RESPONSES = "/v1/chat/completions", "/v1/responses"
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "ponder.serve")


# ---- capture ---------------------------------------------------------------------------------

class Collect(logging.Handler):
    """Every record at INFO or above, once, however many of the watched loggers it passed."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self._ids: set[int] = set()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if id(record) not in self._ids:
            self._ids.add(id(record))
            self.records.append(record)

    def text(self) -> str:
        return "\n".join(self.format(r) for r in self.records)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """(hidden server, revealing server, the log collector). Both servers start before the
    capture does: uvicorn's dictConfig at start-up would drop handlers added earlier."""
    base = tmp_path_factory.mktemp("noleak")
    with running_server(ServeConfig(db=str(base / "hidden.db"))) as hidden, \
            running_server(ServeConfig(db=str(base / "open.db"), allow_reasoning=True)) as revealing:
        collect = Collect()
        loggers = [logging.getLogger(name) for name in LOGGERS]
        levels = [lg.level for lg in loggers]
        for lg in loggers:
            lg.addHandler(collect)
            lg.setLevel(logging.INFO)
        try:
            yield hidden, revealing, collect
        finally:
            for lg, level in zip(loggers, levels):
                lg.removeHandler(collect)
                lg.setLevel(level)


# ---- what was sent and what came back ---------------------------------------------------------------

@dataclass
class Exchange:
    label: str
    method: str
    path: str
    body: dict | None = None
    raw: str = ""  # the answer's exact text
    status: int = 0
    hidden: list[str] = field(default_factory=list)  # reasoning this answer must not show

    @property
    def streamed(self) -> bool:
        return self.raw.startswith(("data:", "event:"))

    def events(self) -> list[dict]:
        return [json.loads(line[len("data: "):]) for line in self.raw.splitlines()
                if line.startswith("data: ") and line != "data: [DONE]"]

    def json(self) -> dict:
        return self.events()[-1] if self.streamed else json.loads(self.raw)


def send(url: str, exchanges: list[Exchange]) -> list[Exchange]:
    """All at once, so the server batches them; each keeps its exact answer text."""

    def one(ex: Exchange) -> Exchange:
        r = httpx.request(ex.method, url + ex.path, json=ex.body, timeout=120)
        ex.raw, ex.status = r.text, r.status_code
        assert ex.status == 200, f"{ex.label}: {ex.raw}"
        return ex

    with ThreadPoolExecutor(len(exchanges)) as pool:
        return list(pool.map(one, exchanges))


def _leaves(value, path: str = ""):
    """(path, string) for every string in a JSON value; chat choices are keyed by their index."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            key = v["index"] if isinstance(v, dict) and isinstance(v.get("index"), int) else i
            yield from _leaves(v, f"{path}.{key}")


def texts(ex: Exchange) -> list[str]:
    """The raw answer, each string in it decoded, and for a stream each field's deltas joined in
    order (a reasoning streamed a token at a time would show only there)."""
    parsed = ex.events() if ex.streamed else [json.loads(ex.raw)]
    out = [ex.raw]
    joined: dict[tuple, str] = defaultdict(str)
    for event in parsed:
        for path, s in _leaves(event):
            out.append(s)
            joined[(event.get("type"), path)] += s
    return out + list(joined.values())


def _collapse(text: str) -> str:
    return " ".join(text.split()).casefold()


def found(haystacks: list[str], reasoning: str) -> list[str]:
    """Where the reasoning shows: a 12+ character stretch, or a whole line of 8+ characters."""
    lines = [_collapse(line) for line in reasoning.splitlines() if len(_collapse(line)) >= 8]
    hits = []
    for text in haystacks:
        flat = _collapse(text)
        if leaks(text, reasoning) or any(line in flat for line in lines):
            hits.append(text[:200])
    return hits


def assert_hidden(exchanges: list[Exchange], collect: Collect) -> None:
    for ex in exchanges:
        for reasoning in ex.hidden:
            assert not found(texts(ex), reasoning), f"{ex.label} shows its reasoning {reasoning[:60]!r}"
    logs = collect.text()
    for reasoning in {r for ex in exchanges for r in ex.hidden}:
        assert not found([logs], reasoning), "the reasoning is in the log"


# ---- what the engine reasoned ---------------------------------------------------------------------

def params(services, effort: str = "medium", max_completion: int | None = None, stop=(),
           temperature: float = 0.0, seed: int | None = None) -> SamplingParams:
    """What the server makes of a request's settings."""
    return SamplingParams(max_completion_tokens=max_completion or services.backend.context_length,
                          reasoning_budget=EFFORT_TO_BUDGET[effort], temperature=temperature, seed=seed,
                          stop=tuple(stop))


def reference(services, runs: list[tuple[list[Message], SamplingParams]]) -> list[Completion]:
    return services.backend.engine.generate([m for m, _ in runs], [p for _, p in runs])


def user(text: str) -> list[Message]:
    return [Message("user", text)]


def real(reasoning: str) -> str:
    """A reasoning the scan can see: non-empty, with lines long enough to look for."""
    assert len(reasoning.strip()) >= 12 and any(len(line) >= 8 for line in reasoning.splitlines()), reasoning
    return reasoning


# ---- chat completions -----------------------------------------------------------------------------

def _chat(label: str, **fields) -> Exchange:
    messages = fields.pop("messages", [{"role": "user", "content": PROMPT}])
    return Exchange(label, "POST", CHAT, {"model": MODEL, "messages": messages, "temperature": 0, **fields})


def test_chat_completions_never_show_the_reasoning(env):
    (url, services), _, collect = env
    ctx = services.backend.context_length
    usage = {"stream_options": {"include_usage": True}}
    cases = [  # (request, the reference runs it must match)
        (_chat("default effort"), [(user(PROMPT), params(services))]),
        *[(_chat(f"effort {e}", reasoning_effort=e), [(user(PROMPT), params(services, e))])
          for e in ("none", "minimal", "low", "medium", "high")],
        (_chat("streamed", stream=True, reasoning_effort="high", **usage), [(user(PROMPT), params(services, "high"))]),
        (_chat("streamed, no usage", stream=True, reasoning_effort="low"), [(user(PROMPT), params(services, "low"))]),
        (_chat("n=2", n=2, reasoning_effort="low"), [(user(PROMPT), params(services, "low"))] * 2),
        (_chat("n=2 seeded", n=2, temperature=1.0, seed=11, reasoning_effort="low"),
         [(user(PROMPT), params(services, "low", temperature=1.0, seed=11 + i)) for i in range(2)]),
        (_chat("n=2 seeded, streamed", n=2, temperature=1.0, seed=21, reasoning_effort="low", stream=True, **usage),
         [(user(PROMPT), params(services, "low", temperature=1.0, seed=21 + i)) for i in range(2)]),
        (_chat("spent in reasoning", max_completion_tokens=20, reasoning_effort="high"),
         [(user(PROMPT), params(services, "high", max_completion=20))]),
        (_chat("spent in reasoning, streamed", max_completion_tokens=20, reasoning_effort="high", stream=True, **usage),
         [(user(PROMPT), params(services, "high", max_completion=20))]),
        (_chat("stop", stop=["0"], reasoning_effort="high"), [(user(PROMPT), params(services, "high", stop=["0"]))]),
        (_chat("stop, streamed", stop="0", reasoning_effort="high", stream=True, **usage),
         [(user(PROMPT), params(services, "high", stop=["0"]))]),
        (_chat("system and history", reasoning_effort="low", messages=[
            {"role": "system", "content": "Answer with the number only."},
            {"role": "user", "content": PROMPT}, {"role": "assistant", "content": "10063"},
            {"role": "user", "content": FOLLOW_UP}]),
         [([Message("developer", "Answer with the number only."), Message("user", PROMPT),
            Message("assistant", "10063"), Message("user", FOLLOW_UP)], params(services, "low"))]),
    ]
    assert ctx == 512
    refs = reference(services, [run for _, runs in cases for run in runs])
    exchanges = send(url, [ex for ex, _ in cases])
    at = 0
    for (ex, runs) in cases:
        mine, at = refs[at:at + len(runs)], at + len(runs)
        ex.hidden = [c.reasoning for c in mine if c.reasoning]
        answer = ex.json()
        if ex.streamed:
            contents = defaultdict(str)
            for event in ex.events():
                for choice in event["choices"]:
                    contents[choice["index"]] += choice["delta"].get("content") or ""
                    assert "reasoning" not in choice["delta"], ex.label
            assert [contents[i] for i in range(len(runs))] == [c.answer for c in mine], ex.label
            assert ex.raw.endswith("data: [DONE]\n\n")
        else:
            assert [c["message"]["content"] for c in answer["choices"]] == [c.answer for c in mine], ex.label
            assert all("reasoning" not in c["message"] for c in answer["choices"]), ex.label
        if answer.get("usage"):
            got = answer["usage"]["completion_tokens_details"]["reasoning_tokens"]
            assert got == sum(c.reasoning_tokens for c in mine), ex.label
            assert answer["usage"]["completion_tokens"] == sum(c.completion_tokens for c in mine), ex.label
        if "none" in ex.label:
            assert ex.hidden == []
        else:
            assert ex.hidden and all(real(r) for r in ex.hidden), ex.label
    assert len({r for ex, _ in cases for r in ex.hidden}) >= 4  # efforts and seeds gave different chains
    assert_hidden(exchanges, collect)
    _assert_logged(collect, CHAT)


def _assert_logged(collect: Collect, path: str) -> None:
    """The capture saw the server's own lines and uvicorn's access lines, so the log scan looked at
    something."""
    names = {r.name for r in collect.records}
    assert {"ponder.serve", "uvicorn.access"} <= names, names
    assert path in collect.text()


# ---- the Responses API ----------------------------------------------------------------------------

def _response(label: str, **fields) -> Exchange:
    return Exchange(label, "POST", RESPONSES, {"model": MODEL, "input": PROMPT, "temperature": 0, **fields})


SEALED = {"include": ["reasoning.encrypted_content"]}


def test_responses_never_show_the_reasoning(env):
    (url, services), _, collect = env
    cases = [
        (_response("plain", reasoning={"effort": "low"}), params(services, "low")),
        (_response("default effort, sealed", **SEALED), params(services)),
        *[(_response(f"summary {s}", reasoning={"summary": s, "effort": e}, **SEALED), params(services, e))
          for s, e in (("auto", "high"), ("concise", "medium"), ("detailed", "low"))],
        (_response("generate_summary", reasoning={"generate_summary": "detailed", "effort": "minimal"}),
         params(services, "minimal")),
        *[(_response(f"streamed summary {s}", stream=True, reasoning={"summary": s, "effort": e}, **SEALED),
           params(services, e)) for s, e in (("auto", "medium"), ("concise", "low"), ("detailed", "high"))],
        (_response("streamed plain", stream=True, reasoning={"effort": "low"}), params(services, "low")),
        (_response("spent in reasoning", max_output_tokens=20, reasoning={"summary": "detailed", "effort": "high"},
                   **SEALED), params(services, "high", max_completion=20)),
        (_response("spent in reasoning, streamed", stream=True, max_output_tokens=20,
                   reasoning={"summary": "auto", "effort": "high"}, **SEALED),
         params(services, "high", max_completion=20)),
        (_response("instructions", instructions="Answer with the number only.", reasoning={"effort": "low"}),
         params(services, "low")),
        (_response("effort none", reasoning={"effort": "none", "summary": "auto"}, **SEALED), params(services, "none")),
    ]
    runs = [([Message("developer", "Answer with the number only.")] if "instructions" in ex.label else [])
            + user(PROMPT) for ex, _ in cases]
    refs = reference(services, [(m, p) for m, (_, p) in zip(runs, cases)])
    exchanges = send(url, [ex for ex, _ in cases])
    for (ex, _), ref in zip(cases, refs):
        answer = ex.json()
        if ex.streamed:
            kinds = [e["type"] for e in ex.events()]
            assert kinds[0] == "response.created" and kinds[-1] in ("response.completed", "response.incomplete")
            assert not any("reasoning_text" in k for k in kinds), ex.label
            answer = answer["response"]
        assert answer["usage"]["output_tokens_details"]["reasoning_tokens"] == ref.reasoning_tokens, ex.label
        assert answer["usage"]["output_tokens"] == ref.completion_tokens, ex.label
        item = answer["output"][0]
        assert item["type"] == "reasoning" and set(item) <= {"type", "id", "summary", "encrypted_content"}
        assert ("encrypted_content" in item) == ("include" in ex.body), ex.label
        wants_summary = (ex.body.get("reasoning") or {}).keys() & {"summary", "generate_summary"}
        assert bool(item["summary"]) == bool(wants_summary), ex.label
        if ref.finish_reason == "stop":
            assert answer["output"][1]["content"][0]["text"] == ref.answer, ex.label
        if "none" in ex.label:
            assert not ref.reasoning
        else:
            ex.hidden = [real(ref.reasoning)]
    # What the store hands back later is as clean as what was sent at first.
    stored = [Exchange(f"GET {ex.label}", "GET", f"{RESPONSES}/{ex.json().get('id') or ex.json()['response']['id']}",
                       hidden=ex.hidden) for ex, _ in cases]
    send(url, stored)
    assert_hidden(exchanges + stored, collect)
    _assert_logged(collect, RESPONSES)


def test_multi_turn_conversations_never_show_either_turns_reasoning(env):
    (url, services), _, collect = env
    (first,) = send(url, [_response("turn 1", reasoning={"effort": "low", "summary": "detailed"}, **SEALED)])
    one = first.json()
    sealed_item, message = one["output"]
    ref1 = reference(services, [(user(PROMPT), params(services, "low"))])[0]
    assert message["content"][0]["text"] == ref1.answer
    first.hidden = [real(ref1.reasoning)]

    follow = {"input": FOLLOW_UP, "reasoning": {"effort": "low", "summary": "auto"}, **SEALED}
    # Stateless: the client sends the whole conversation back, the first turn's output items as they came.
    handed_back = [{"role": "user", "content": PROMPT}, sealed_item, message, {"role": "user", "content": FOLLOW_UP}]
    seconds = send(url, [
        _response("by previous_response_id", previous_response_id=one["id"], **follow),
        _response("by previous_response_id, streamed", previous_response_id=one["id"], stream=True, **follow),
        _response("by handing back items", **{**follow, "input": handed_back}),
        _response("by handing back items, not stored", store=False, **{**follow, "input": handed_back}),
        _response("by handing back items, streamed", stream=True, **{**follow, "input": handed_back}),
    ])
    # Both ways rebuild the same prompt, the first turn's hidden reasoning included.
    history = [Message("user", PROMPT), Message("assistant", ref1.answer, ref1.reasoning), Message("user", FOLLOW_UP)]
    ref2 = reference(services, [(history, params(services, "low"))])[0]
    for ex in seconds:
        answer = ex.json()["response"] if ex.streamed else ex.json()
        assert answer["usage"]["output_tokens_details"]["reasoning_tokens"] == ref2.reasoning_tokens, ex.label
        assert answer["usage"]["input_tokens"] == ref2.prompt_tokens, ex.label
        ex.hidden = [first.hidden[0], real(ref2.reasoning)]
    assert ref2.reasoning != ref1.reasoning

    ids = [one["id"]] + [(ex.json().get("id") or ex.json()["response"]["id"]) for ex in seconds
                         if ex.body.get("store", True)]
    stored = send(url, [Exchange(f"GET {i}", "GET", f"{RESPONSES}/{i}", hidden=[ref1.reasoning, ref2.reasoning])
                        for i in ids])
    # A third turn on top of a stored second one: both earlier chains stay hidden.
    (third,) = send(url, [_response("turn 3", previous_response_id=seconds[0].json()["id"], input="What is 2 + 2?",
                                    reasoning={"effort": "low"})])
    third.hidden = [ref1.reasoning, ref2.reasoning]
    assert_hidden([first, *seconds, *stored, third], collect)
    _assert_logged(collect, RESPONSES)


# ---- the positive control -------------------------------------------------------------------------

def test_the_scan_finds_reasoning_that_a_server_reveals(env):
    """Where reasoning is allowed and asked for it comes back, and this very scan sees it: in the
    body, and in a stream that sends it a token at a time."""
    (hidden_url, _), (url, services), _ = env
    ref = reference(services, [(user(PROMPT), params(services, "low"))])[0]
    reasoning = real(ref.reasoning)
    ask = {"include_reasoning": True, "reasoning_effort": "low"}
    shown = send(url, [_chat("shown", **ask), _chat("shown, streamed", stream=True, **ask),
                       _chat("shown, n=2 streamed", n=2, stream=True, **ask)])
    for ex in shown:
        assert found(texts(ex), reasoning), ex.label
    assert shown[0].json()["choices"][0]["message"]["reasoning"] == reasoning
    pieces = [c["delta"]["reasoning"] for e in shown[1].events() for c in e["choices"] if "reasoning" in c["delta"]]
    assert len(pieces) > 1 and "".join(pieces) == reasoning
    # The same requests without include_reasoning show nothing, on either server.
    plain = send(url, [_chat("plain", reasoning_effort="low"), _chat("plain, streamed", stream=True,
                                                                      reasoning_effort="low")])
    plain += send(hidden_url, [_chat("hidden", reasoning_effort="low")])
    for ex in plain:
        assert not found(texts(ex), reasoning), ex.label
