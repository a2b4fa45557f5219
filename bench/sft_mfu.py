"""Supervised training utilisation: model FLOPs per second of `ponder train --stage sft` over the
matmul peak that this script measures on the same CPU, in one run; with several precisions,
their throughput side by side and as a ratio to the first.

Model FLOPs (logged by the trainer per step) are 6 x (non-embedding params + output head) per
real (non-pad) token plus the attention term, as in PaLM's appendix B; the time is the whole
step: data, forward, backward, AdamW. bf16 is mixed precision (bf16 matmuls under autocast, fp32
weights); it pays on CPUs with native bf16 matmuls (AVX512-BF16, AMX) and costs elsewhere.

    python bench/sft_mfu.py [--recipe recipes/default.toml] [--steps 40] [--precisions fp32 bf16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch

from ponder.config import build_config
from ponder.perf import measure_matmul_peak
from ponder.rl.sft import train_sft
from ponder.rl.sft_config import SFTConfig

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def measure(recipe: Path, precision: str, steps: int, skip: int) -> dict:
    """Tokens/s, model FLOP/s and the last loss of `steps` SFT steps (the first `skip` left out)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = build_config(SFTConfig, recipe, {
            "steps": steps, "out_dir": tmp, "name": "mfu", "eval_every": 0, "eval_problems": 1,
            "checkpoint_every": steps, "precision": precision,
        })
        train_sft(cfg, progress=False)
        metrics = [json.loads(line) for line in (Path(tmp) / "mfu" / "metrics.jsonl").read_text().splitlines()]
    rows = [m for m in metrics if "loss" in m][skip:]
    seconds = sum(m["step_time_s"] for m in rows)
    return {"params": cfg.model_config().num_params(), "steps": len(rows), "seconds": seconds,
            "tokens_per_s": sum(m["tokens"] for m in rows) / seconds,
            "flops_per_s": sum(m["flops"] for m in rows) / seconds,
            "median_step_s": statistics.median(m["step_time_s"] for m in rows), "last_loss": rows[-1]["loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/default.toml")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the figure")
    parser.add_argument("--precisions", nargs="+", choices=list(DTYPES), default=["fp32"])
    args = parser.parse_args()

    results = {}
    for precision in args.precisions:
        peak = measure_matmul_peak(dtype=DTYPES[precision])
        result = results[precision] = measure(Path(args.recipe), precision, args.steps, args.skip)
        print(f"{precision}: CPU threads {torch.get_num_threads()}, {precision} matmul peak {peak / 1e9:.1f} GFLOP/s "
              f"(2048^3 matmul)")
        print(f"  model {result['params'] / 1e6:.2f}M params, {result['steps']} steps, {result['seconds']:.1f} s, "
              f"median step {result['median_step_s']:.3f} s, loss at step {args.steps} {result['last_loss']:.4f}")
        print(f"  throughput {result['tokens_per_s']:.0f} tokens/s, {result['flops_per_s'] / 1e9:.1f} model GFLOP/s, "
              f"MFU {result['flops_per_s'] / peak:.1%} of the measured {precision} matmul peak")
    first = args.precisions[0]
    for precision in args.precisions[1:]:
        ratio = results[precision]["tokens_per_s"] / results[first]["tokens_per_s"]
        print(f"{precision} / {first}: {ratio:.2f}x the tokens per second")


if __name__ == "__main__":
    main()
