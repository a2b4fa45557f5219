"""Continuous batching gives each request what the native engine gives it alone, whoever else
joins or leaves the batch, and streams text that adds up to the final Completion."""

import threading

import pytest

from ponder.engine.base import SamplingParams
from ponder.engine.continuous import ContinuousEngine, Done, ReasoningEnd, TextDelta
from ponder.engine.native import NativeEngine
from ponder.errors import UserError
from ponder.model.chat import Message

from tests.engine.test_native import PROMPTS


@pytest.fixture(scope="module")
def native(tiny_model, tok):
    return NativeEngine(tiny_model, tok)


@pytest.fixture
def engine(native):
    engine = ContinuousEngine(native, max_batch=4)
    yield engine
    engine.close()


def conversations(prompts):
    return [[Message("user", p)] for p in prompts]


PARAMS = [
    SamplingParams(max_completion_tokens=30),
    SamplingParams(max_completion_tokens=50, reasoning_budget=7),
    SamplingParams(max_completion_tokens=20, reasoning_budget=0),
    SamplingParams(max_completion_tokens=40, temperature=0.9, top_k=20, seed=3),
    SamplingParams(max_completion_tokens=40, temperature=1.0, top_p=0.8, seed=11, stop=("a", "1")),
    SamplingParams(max_completion_tokens=25, logprobs=True),
    SamplingParams(max_completion_tokens=45, min_reasoning_tokens=30, reasoning_budget=40),
    SamplingParams(max_completion_tokens=45, stop_in_reasoning=("r", "6")),
]


def test_matches_the_native_engine_request_by_request(native, engine):
    # 8 requests through 4 rows: four join as the first ones finish.
    prompts = [*PROMPTS, PROMPTS[0], PROMPTS[0]]
    expected = [native.generate(conversations([p]), params)[0] for p, params in zip(prompts, PARAMS)]
    got = engine.generate(conversations(prompts), PARAMS)
    for e, g in zip(expected, got):
        assert (g.token_ids, g.answer, g.reasoning, g.finish_reason) == (e.token_ids, e.answer, e.reasoning, e.finish_reason)
        assert (g.reasoning_tokens, g.answer_tokens, g.prompt_tokens) == (e.reasoning_tokens, e.answer_tokens, e.prompt_tokens)
    assert got[5].logprobs == pytest.approx(expected[5].logprobs, abs=1e-4)


def test_requests_submitted_while_others_run_get_the_same_result(native, engine):
    # Six different requests (prompt and seed), each from its own thread, so they join a batch that
    # is already running with the others at different positions; each must get what it gets alone.
    requests = [(PROMPTS[i % len(PROMPTS)], SamplingParams(max_completion_tokens=60, temperature=0.8, seed=5 + i))
                for i in range(6)]
    alone = [native.generate(conversations([p]), params)[0] for p, params in requests]
    assert len({c.token_ids for c in alone}) > 1  # the requests really differ
    results: dict[int, object] = {}
    threads = [threading.Thread(target=lambda i=i, p=p, params=params: results.__setitem__(
        i, engine.generate(conversations([p]), params)[0])) for i, (p, params) in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i].token_ids for i in range(6)] == [c.token_ids for c in alone]


def stream(engine, prompt, params, stream_reasoning):
    events, finished = [], threading.Event()

    def sink(event):
        events.append(event)
        if isinstance(event, Done):
            finished.set()

    engine.submit(engine.encode([Message("user", prompt)]), params, sink, stream_reasoning=stream_reasoning)
    assert finished.wait(30)
    return events


@pytest.mark.parametrize("params", PARAMS[:5])
def test_streamed_text_adds_up_to_the_completion(engine, params):
    events = stream(engine, PROMPTS[2], params, stream_reasoning=True)
    completion = events[-1].completion
    text = {"reasoning": "", "answer": ""}
    ends = [e for e in events if isinstance(e, ReasoningEnd)]
    for e in events[:-1]:
        if not isinstance(e, ReasoningEnd):
            assert isinstance(e, TextDelta) and e.text
            text[e.kind] += e.text
    assert text == {"reasoning": completion.reasoning, "answer": completion.answer}
    # The reasoning's end is announced once, with the billed count, before any answer text.
    if params.reasoning_budget != 0 and completion.answer_tokens:
        assert [e.tokens for e in ends] == [completion.reasoning_tokens]
        first_answer = next((i for i, e in enumerate(events) if isinstance(e, TextDelta) and e.kind == "answer"), len(events))
        assert events.index(ends[0]) < first_answer


def test_reasoning_is_not_streamed_unless_asked(engine):
    events = stream(engine, PROMPTS[0], SamplingParams(max_completion_tokens=30), stream_reasoning=False)
    assert not any(isinstance(e, TextDelta) and e.kind == "reasoning" for e in events)


def test_a_prompt_beyond_the_context_is_refused_when_submitted(engine, tok):
    too_long = [Message("user", "1 + 1 " * 200)]
    with pytest.raises(UserError, match="context"):
        engine.submit(engine.encode(too_long), SamplingParams(), lambda e: None)


def test_cancelled_requests_free_their_row_and_report_what_they_spent(engine):
    events, ended = [], threading.Event()

    def sink(event):
        events.append(event)
        if isinstance(event, Done):
            ended.set()

    handle = engine.submit(engine.encode([Message("user", "Hi")]), SamplingParams(max_completion_tokens=100, ignore_eos=True), sink)
    handle.cancel()
    assert ended.wait(30)
    last = events[-1].completion
    assert last.finish_reason == "cancelled" and last.completion_tokens < 100
    assert sum(isinstance(e, Done) for e in events) == 1
    after = engine.generate(conversations(["Hi"]), SamplingParams(max_completion_tokens=5))
    assert after[0].completion_tokens <= 5
