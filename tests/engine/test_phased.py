"""The phased reasoning driver that vLLM runs on, checked on a real model: a greedy id-level
completer over the bundled GPT (stop strings on decoded text, as vLLM matches them) must give
what the native engine gives, budgets, budget forcing and reasoning-step stops included.

vLLM itself needs a GPU: its test is skipped without one (and without vllm installed)."""

from __future__ import annotations

import pytest
import torch

from ponder.engine.base import SamplingParams
from ponder.engine.phased import RawOutput, phased_generate
from ponder.engine.spec import load_engine
from ponder.errors import UserError
from ponder.model.chat import Message


class GreedyGPT:
    """A RawBackend over the bundled model: greedy, whole-sequence recompute per token."""

    def __init__(self, engine):
        self.model, self.tok = engine.model, engine.tok

    def encode(self, text: str) -> list[int]:
        tags = {"<think>": self.tok.special.think_open, "</think>": self.tok.special.think_close}
        return [tags[text]] if text in tags else self.tok.encode(text)

    @torch.inference_mode()
    def complete(self, requests):
        outs = []
        for r in requests:
            ids, new = list(r.prompt_ids), []
            ended, matched = "length", None
            banned = [i for text in r.banned for i in self.encode(text)] + [self.tok.special.bos, self.tok.special.pad]
            if not r.allow_eos:
                banned.append(self.tok.special.end)  # as the native engine: reasoning must close first
            while len(new) < r.max_tokens:
                logits = self.model(torch.tensor([ids]))[0, -1]
                logits[banned] = -float("inf")
                token = int(logits.argmax())
                ids.append(token)
                new.append(token)
                if token == self.tok.special.end:
                    ended = "eos"
                    break
                text = self.tok.decode(new)
                matched = next((s for s in r.stop if s in text), None)
                if matched:
                    ended = "stop"
                    break
            text = self.tok.decode(new[:-1] if ended == "eos" else new)
            if matched:
                text = text[: text.index(matched) + len(matched)]
            outs.append(RawOutput(tuple(new[:-1] if ended == "eos" else new), text, ended, matched))
        return outs


@pytest.fixture(scope="module")
def native():
    return load_engine("default")


PROMPTS = [[Message("user", "What is 12 + 30?")], [Message("user", "What is 347 * 29?")]]


@pytest.mark.parametrize("params", [
    SamplingParams(max_completion_tokens=200),
    SamplingParams(max_completion_tokens=200, reasoning_budget=12),
    SamplingParams(max_completion_tokens=200, reasoning_budget=0),
    SamplingParams(max_completion_tokens=20),
    SamplingParams(max_completion_tokens=200, min_reasoning_tokens=40, reasoning_budget=120),
    SamplingParams(max_completion_tokens=200, stop_in_reasoning=("\n",)),
], ids=["free", "budget12", "budget0", "length", "forcing", "step"])
def test_phased_matches_native_engine(native, params):
    backend = GreedyGPT(native)
    got = phased_generate(backend, [native.encode(p) for p in PROMPTS], [params] * len(PROMPTS),
                          ("<think>", "</think>"))
    want = native.generate(PROMPTS, params)
    for g, w in zip(got, want):
        # Phased strips the answer's outer whitespace (a backend's text arrives in chunks); the
        # native engine keeps an answer cut off by length exactly as decoded, trailing space and all.
        assert (g.reasoning, g.answer) == (w.reasoning, w.answer.strip())
        assert g.reasoning_tokens == w.reasoning_tokens
        assert g.finish_reason == w.finish_reason
        if params.reasoning_budget is not None:
            assert g.reasoning_tokens <= params.reasoning_budget


def test_vllm_spec_without_vllm_names_the_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_vllm(name, *args, **kwargs):
        if name == "vllm":
            raise ImportError("No module named 'vllm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_vllm)
    with pytest.raises(UserError, match="needs vLLM, which is not installed here: pip install vllm"):
        load_engine("vllm:Qwen/Qwen3-0.6B")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM needs a CUDA GPU")
def test_vllm_engine_on_gpu(tmp_path):
    pytest.importorskip("vllm")
    from ponder.model.export_hf import export_hf
    from ponder.engine.spec import BUNDLED

    engine = load_engine(f"vllm:{export_hf(BUNDLED, tmp_path / 'hf')}")
    out = engine.generate(PROMPTS, SamplingParams(max_completion_tokens=200, reasoning_budget=64))
    assert out[0].answer.strip().endswith("42") and out[0].reasoning_tokens <= 64
