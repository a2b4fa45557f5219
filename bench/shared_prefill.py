"""RL rollouts with each group's prompt prefilled once (the engine's way) against once per row, in
one process on the same problems and seeds: the two give the same samples, so only time differs.

    OMP_NUM_THREADS=1 python bench/shared_prefill.py [--prompts 8] [--group-size 8] [--max-tokens 256] [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from ponder.engine.native import NativeEngine
from ponder.engine.spec import BUNDLED
from ponder.model.checkpoint import load_checkpoint
from ponder.model.gpt import KVCache
from ponder.rl.rollout import draw_groups, step_problems


class PerRowPrefill(NativeEngine):
    """The engine as it was: every row's prompt computed, repeated or not."""

    def _prefill(self, tokens, positions, mask, slots, device):
        cache = KVCache(self.model.cfg, len(tokens), slots, device=device)
        logits = self.model(tokens.to(device), positions.to(device), cache, 0, mask.to(device), last_only=True)
        return cache, logits[:, -1].float().cpu()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--rounds", type=int, default=4, help="alternating timed rollouts per engine")
    args = p.parse_args()
    torch.set_num_threads(1)
    model, tok = load_checkpoint(BUNDLED)
    engines = {"shared": NativeEngine(model, tok), "per row": PerRowPrefill(model, tok)}
    times: dict[str, list[float]] = {name: [] for name in engines}
    for step in range(args.rounds):  # alternate, so drift in machine load hits both alike
        problems = step_problems(0, step, args.prompts, ("arithmetic", "word_problems"), 4, 5)
        outs = {}
        for name, engine in engines.items():
            started = time.perf_counter()
            outs[name] = draw_groups(engine, problems, args.group_size, args.max_tokens, 1.0, 0, step)
            times[name].append(time.perf_counter() - started)
        same = [a.token_ids == b.token_ids for a, b in zip(outs["shared"], outs["per row"])]
        print(f"round {step}: shared {times['shared'][-1]:.2f} s, per row {times['per row'][-1]:.2f} s, "
              f"{sum(same)}/{len(same)} samples identical")
    shared, per_row = statistics.median(times["shared"]), statistics.median(times["per row"])
    print(f"{args.prompts} prompts x {args.group_size} samples, <= {args.max_tokens} tokens: median rollout "
          f"{shared:.2f} s shared against {per_row:.2f} s per row: {per_row / shared:.2f}x")


if __name__ == "__main__":
    main()
