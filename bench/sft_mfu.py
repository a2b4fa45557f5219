"""Supervised training utilisation: model FLOPs per second of `ponder train --stage sft` over the
fp32 matmul peak that this script measures on the same CPU, in one run.

Model FLOPs (logged by the trainer per step) are 6 x (non-embedding params + output head) per
real (non-pad) token plus the attention term, as in PaLM's appendix B; the time is the whole
step: data, forward, backward, AdamW.

    python bench/sft_mfu.py [--recipe recipes/default.toml] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from ponder.config import build_config
from ponder.perf import measure_matmul_peak
from ponder.rl.sft import train_sft
from ponder.rl.sft_config import SFTConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/default.toml")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--skip", type=int, default=5, help="warm-up steps left out of the figure")
    args = parser.parse_args()

    peak = measure_matmul_peak()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = build_config(SFTConfig, Path(args.recipe), {
            "steps": args.steps, "out_dir": tmp, "name": "mfu", "eval_every": 0, "eval_problems": 1,
            "checkpoint_every": args.steps,
        })
        train_sft(cfg, progress=False)
        metrics = [json.loads(line) for line in (Path(tmp) / "mfu" / "metrics.jsonl").read_text().splitlines()]
    model_cfg = cfg.model_config()
    steps = metrics[args.skip :]
    seconds = sum(m["step_time_s"] for m in steps)
    tokens = sum(m["tokens"] for m in steps)
    achieved = sum(m["flops"] for m in steps) / seconds
    print(f"CPU threads {torch.get_num_threads()}, fp32 matmul peak {peak / 1e9:.1f} GFLOP/s (2048^3 matmul)")
    print(f"model {model_cfg.num_params() / 1e6:.2f}M params, {len(steps)} steps, {tokens} tokens, {seconds:.1f} s")
    print(f"throughput {tokens / seconds:.0f} tokens/s, {achieved / 1e9:.1f} model GFLOP/s")
    print(f"MFU {achieved / peak:.1%} of the measured fp32 matmul peak")

if __name__ == "__main__":
    main()
