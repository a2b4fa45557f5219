"""Multi-process RL under `torchrun`: which rank draws which groups, sums across ranks, and the
DDP wrapper. One process (no WORLD_SIZE) is the same code with `Dist()`: every call is a no-op.

Rollouts are sharded by prompt (a group never spans ranks, so advantages stay local); sample
seeds come from the global index, so the world size never changes which samples are drawn.
Gradients are reduced by DDP (gloo on CPU, NCCL on GPU), each rank's loss weighted by its share
of the global normaliser, so N processes compute the gradient one process would.

How the policy is spread over ranks is `RLConfig.parallel`: `ddp` keeps a whole copy of the
weights, gradients and optimizer state on every rank (right for the bundled 2.5M-parameter model);
`fsdp` shards all three (`ponder/rl/fsdp.py`, FSDP2), for models whose training state does not
fit one device. Both are reached through the same small `Replicated`/`Sharded` interface, so the
trainer has no branch on the choice.

Leaves out: multi-node rendezvous beyond what torchrun gives.
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")  # where collectives' tensors live (NCCL: the rank's GPU)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> list[int]:
        """This rank's indices of n items (strided: rank, rank + world, ...)."""
        return list(range(self.rank, n, self.world))

    def sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.cpu().tolist()

    def all_true(self, flag: bool) -> bool:
        return self.sum([0.0 if flag else 1.0])[0] == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def broadcast_object(self, value):
        if self.world == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def init_dist(device: torch.device = torch.device("cpu")) -> Dist:
    """Join the process group torchrun set up (RANK/WORLD_SIZE in the environment), if any:
    NCCL when training on GPUs, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), device=device)


class Replicated:
    """A whole copy of the policy on every rank (DDP across ranks, the bare model alone).

    module: what the loss runs through. gathered(): the full weights for local inference
    (rollouts, held-out evals, old log-probs); a copy already has them. full_model() and
    optimizer_state(): what rank 0 saves."""

    def __init__(self, model, d: Dist):
        self.model = model
        self.main = d.main
        if d.world == 1:
            self.module = model
        else:
            from torch.nn.parallel import DistributedDataParallel

            self.module = DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)

    def gathered(self):
        return nullcontext()

    def full_model(self):
        """The policy on rank 0 (which saves it), None elsewhere: the same contract as `Sharded`."""
        return self.model if self.main else None

    def optimizer_state(self, optimizer) -> dict:
        # Keyed by parameter name, as `Sharded` saves it, so either can resume the other's checkpoint.
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(self.model, optimizer, options=StateDictOptions(full_state_dict=True))

    def load_optimizer_state(self, optimizer, state: dict) -> None:
        if all(isinstance(key, int) for key in state["state"]):  # written before states were keyed by name
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(self.model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def wrap(model, d: Dist, parallel: str = "ddp"):
    """The policy (already on the rank's device) spread over the job's ranks as `parallel` says
    (alone, always the bare model)."""
    if parallel == "fsdp" and d.world > 1:
        from ponder.rl.fsdp import Sharded

        return Sharded(model, d)
    return Replicated(model, d)


def close(d: Dist) -> None:
    if d.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def exit_worker(code: int) -> NoReturn:
    """End a torchrun worker process now, skipping interpreter teardown (call it once the
    process group is closed and everything is saved and printed).

    FSDP's DTensor caches keep the device mesh, and with it the gloo process group and its
    threads, alive after `destroy_process_group`; tearing them down at interpreter exit, while
    another rank was still running, aborted a rank about 1 run in 20 ("terminate called without
    an active exception")."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
