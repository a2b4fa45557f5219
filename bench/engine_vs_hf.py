"""Decode throughput: ponder's engine vs transformers' `generate`, same weights, same CPU, one run.

The HF side runs the `ponder export --format hf` copy of the same checkpoint. Both decode
greedily from the same real task prompts (left-padded) for exactly the same number of new
tokens (ponder: ignore_eos; HF: min_new_tokens), so both do the same work. A second table lets
each stop naturally at the end token, as a rollout would: HF keeps computing finished rows until
the longest is done, ponder drops them from the batch.

    python bench/engine_vs_hf.py [--model SPEC] [--new-tokens 256] [--batches 1,64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from ponder.engine.base import SamplingParams
from ponder.engine.spec import load_engine, resolve_checkpoint
from ponder.model.chat import Message
from ponder.model.export_hf import export_hf
from ponder.tasks.mix import held_out_set


def best_of(repeats: int, fn) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_floor(model, batch: int, repeats: int) -> float:
    """Seconds for just the weight matmuls of one decode step at `batch`: work any engine must do
    with these weights in fp32, so HF's step time over this bounds any engine's speed-up."""
    import torch.nn.functional as F

    cfg = model.cfg
    x, h = torch.randn(batch, cfg.dim), torch.randn(batch, cfg.hidden_dim)

    def step():
        with torch.inference_mode():
            for b in model.blocks:
                F.linear(x, b.qkv.weight), F.linear(x, b.out.weight)
                F.linear(x, b.gate_up.weight), F.linear(h, b.down.weight)
            F.linear(x, model.head.weight)

    return best_of(repeats * 20, step)


def hf_generate(hf, prompts: list[list[int]], pad: int, end: int, new_tokens: int, fixed: bool):
    width = max(map(len, prompts))
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.inference_mode():
        out = hf.generate(
            ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens if fixed else 0,
            do_sample=False, pad_token_id=pad, eos_token_id=end,
        )
    return out[:, width:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from transformers import LlamaForCausalLM

    engine = load_engine(args.model)
    tok = engine.tok
    with tempfile.TemporaryDirectory() as tmp:
        hf = LlamaForCausalLM.from_pretrained(export_hf(resolve_checkpoint(args.model), Path(tmp) / "hf")).eval()
    batches = [int(b) for b in args.batches.split(",")]
    problems = held_out_set(max(batches))
    prompts = [engine.encode([Message("user", p.prompt)]) for p in problems]
    pad, end = tok.special.pad, tok.special.end
    print(f"model {args.model}: {engine.model.cfg.num_params() / 1e6:.2f}M params, torch threads {torch.get_num_threads()}")

    # Same weights: both decode the same greedy tokens from the first prompt.
    ours = engine.generate_ids(prompts[:1], SamplingParams(max_completion_tokens=24, ignore_eos=True))[0].token_ids
    theirs = hf_generate(hf, prompts[:1], pad, end, 24, fixed=True)[0].tolist()
    agree = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b), len(ours))
    print(f"greedy tokens agree for the first {agree} of 24 (first prompt)\n")

    print(f"fixed length: {args.new_tokens} new tokens per row, real task prompts")
    print(f"{'batch':>5} {'ponder tok/s':>13} {'HF tok/s':>10} {'ratio':>7}")
    fixed = SamplingParams(max_completion_tokens=args.new_tokens, ignore_eos=True)
    bounds = []
    for b in batches:
        t_ours = best_of(args.repeats, lambda: engine.generate_ids(prompts[:b], fixed))
        t_hf = best_of(args.repeats, lambda: hf_generate(hf, prompts[:b], pad, end, args.new_tokens, fixed=True))
        n = b * args.new_tokens
        print(f"{b:>5} {n / t_ours:>13.0f} {n / t_hf:>10.0f} {t_hf / t_ours:>6.2f}x")
        floor = matmul_floor(engine.model, b, args.repeats)
        bounds.append((b, t_ours / args.new_tokens, t_hf / args.new_tokens, floor))
    print("\nper decode step: ponder, HF, and the weight matmuls alone (any fp32 engine's floor)")
    for b, ours, theirs, floor in bounds:
        print(f"  batch {b:>3}: ponder {ours * 1e3:.2f} ms, HF {theirs * 1e3:.2f} ms, matmuls {floor * 1e3:.2f} ms"
              f" -> no engine can beat HF by more than {theirs / floor:.1f}x here")

    print("\nnatural stop at the end token (rollout-like), useful tokens per second")
    print(f"{'batch':>5} {'ponder tok/s':>13} {'HF tok/s':>10} {'ratio':>7}")
    natural = SamplingParams(max_completion_tokens=args.new_tokens)
    for b in batches:
        useful = sum(c.completion_tokens for c in engine.generate_ids(prompts[:b], natural))
        t_ours = best_of(args.repeats, lambda: engine.generate_ids(prompts[:b], natural))
        t_hf = best_of(args.repeats, lambda: hf_generate(hf, prompts[:b], pad, end, args.new_tokens, fixed=False))
        print(f"{b:>5} {useful / t_ours:>13.0f} {useful / t_hf:>10.0f} {t_hf / t_ours:>6.2f}x")


if __name__ == "__main__":
    main()
