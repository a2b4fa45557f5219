"""Held-out pass@1, greedy and sampled, for models side by side.

RL trains on samples drawn at temperature 1, and held-out pass@1 is usually read greedy. A policy
update that only sharpens the distribution toward answers greedy decoding already gives raises the
sampled accuracy and leaves the greedy one where it was, so this prints both through `train_rl`'s
own `evaluate`, with the default recipe's evaluation settings (the whole held-out mix, a set at
the hardest level, 512 completion tokens).

    python bench/sampled_pass.py --model default runs/rl_default/final [--n 200] [--k 4]
"""

from __future__ import annotations

import argparse

import torch

from ponder.devices import autocast
from ponder.engine.spec import resolve_checkpoint
from ponder.errors import UserError
from ponder.model.checkpoint import load_checkpoint
from ponder.rl.grpo import evaluate
from ponder.rl.rl_config import RLConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", nargs="+", default=["default"], help="model specs to compare")
    p.add_argument("--n", type=int, default=200, help="held-out problems per set")
    p.add_argument("--k", type=int, default=4, help="samples per problem")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--difficulty", type=int, default=5, help="the hardest level's set")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    for flag, value in (("--n", args.n), ("--k", args.k), ("--threads", args.threads)):
        if value < 1:
            p.error(f"{flag} must be at least 1, got {value}")
    try:
        cfg = RLConfig(eval_problems=args.n, eval_samples=args.k, temperature=args.temperature,
                       eval_difficulty=args.difficulty, precision=args.precision)
        checkpoints = [resolve_checkpoint(spec) for spec in args.model]  # every spec, before any is scored
    except (ValueError, UserError) as e:
        p.error(str(e))
    torch.set_num_threads(args.threads)
    d = f"d{args.difficulty}"
    print(f"held-out pass@1, {args.n} problems per set; sampled: {args.k} per problem at T={args.temperature}, "
          f"seeded; {args.precision}")
    print(f"{'model':<32} {'mix greedy':>10} {'sampled':>8} {d + ' greedy':>10} {'sampled':>8}")
    for spec, checkpoint in zip(args.model, checkpoints):
        model, tok = load_checkpoint(checkpoint)
        with autocast(torch.device("cpu"), args.precision):
            r = evaluate(model, tok, cfg)
        hard = f"heldout_pass1_{d}"
        print(f"{spec:<32} {r['heldout_pass1']:>10.3f} {r['heldout_pass1_sampled']:>8.3f} {r[hard]:>10.3f} "
              f"{r[hard + '_sampled']:>8.3f}", flush=True)


if __name__ == "__main__":
    main()
