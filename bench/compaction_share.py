"""RL rollouts with finished rows dropped from the batch at different shares of it finished
(`ponder.engine.native.COMPACT_SHARE`), alternated in one process on the same problems and seeds.
Every share must draw the same tokens (checked), so only time differs.

    OMP_NUM_THREADS=1 python bench/compaction_share.py [--shares 0.5 0.25 0.125 0.0625] [--rounds 4]
"""

from __future__ import annotations

import argparse
import time

import torch

import ponder.engine.native as native
from ponder.engine.spec import BUNDLED
from ponder.model.checkpoint import load_checkpoint
from ponder.rl.rl_config import RLConfig
from ponder.rl.rollout import draw_groups, step_problems


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shares", type=float, nargs="+", default=[0.5, 0.25, 0.125, 0.0625])
    p.add_argument("--rounds", type=int, default=4, help="rounds of two steps' rollouts per share")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=256)
    args = p.parse_args()
    if any(not 0 < s <= 1 for s in args.shares) or args.rounds < 1:
        p.error("--shares must lie in (0, 1] and --rounds must be at least 1")
    torch.set_num_threads(1)
    model, tok = load_checkpoint(BUNDLED)
    cfg = RLConfig()
    engine = native.NativeEngine(model, tok, max_batch=cfg.rollout_batch)
    times: dict[float, list[float]] = {s: [] for s in args.shares}
    for _ in range(args.rounds):
        for step in (1, 2):
            problems = step_problems(0, step, args.prompts, cfg.families, cfg.min_difficulty, cfg.max_difficulty)
            first = None
            for share in args.shares:
                native.COMPACT_SHARE = share
                started = time.perf_counter()
                out = draw_groups(engine, problems, args.group_size, args.max_tokens, 1.0, 0, step)
                times[share].append(time.perf_counter() - started)
                tokens = [c.token_ids for c in out]
                first = first or tokens
                if tokens != first:
                    raise SystemExit(f"share {share} drew other tokens than share {args.shares[0]}")
    print(f"{'share':>8} {'total s':>8}  per rollout (s)")
    for share, spent in times.items():
        print(f"{share:>8} {sum(spent):>8.2f}  {' '.join(f'{t:.2f}' for t in spent)}")


if __name__ == "__main__":
    main()
