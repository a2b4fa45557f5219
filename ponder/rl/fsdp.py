"""The policy sharded over ranks with FSDP2 (`torch.distributed.fsdp.fully_shard`): each rank
holds 1/world of the weights, gradients and AdamW state, so a model whose training state does
not fit one device still trains. Every transformer block is its own shard group, then the root
(embeddings, final norm, head), as the FSDP2 examples do.

RL also generates with the policy. Decoding one token at a time through sharded weights would
all-gather every block at every step, so `gathered()` unshards every group once, keeps the
weights whole through the rollout (or eval), and reshards after: one all-gather per phase.
Inside it, forwards are local, so ranks may run different numbers of them (rank 0 alone runs
the held-out eval). The update's forwards and backwards go through the sharded module and are
collective: every rank runs the same number of them (the trainer already does, for DDP).

Checkpoints hold full, unsharded tensors (gathered to rank 0), so a checkpoint is the same
whether it was written by 1, 2 or N ranks, and an FSDP run resumes on any world size.
"""

from __future__ import annotations

from contextlib import contextmanager

from ponder.rl.distributed import Dist


class Sharded:
    def __init__(self, model, d: Dist):
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import FSDPModule, fully_shard

        mesh = init_device_mesh(d.device.type, (d.world,))
        for block in model.blocks:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        self.model = self.module = model
        self.cfg = model.cfg
        self.groups = [m for m in model.modules() if isinstance(m, FSDPModule)]
        self.main = d.main

    @contextmanager
    def gathered(self):
        """Whole weights on every rank until the block ends (collective on entry)."""
        for group in self.groups:
            group.set_reshard_after_forward(False, recurse=False)
        for group in self.groups:
            group.unshard()
        try:
            yield
        finally:
            for group in self.groups:
                group.reshard()
                # FSDP2's own settings back: blocks reshard after forward; the root does not, since
                # backward needs its weights at once.
                group.set_reshard_after_forward(group is not self.model, recurse=False)

    def full_model(self):
        """A plain model with the full weights on rank 0, None elsewhere (collective)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        from ponder.model.gpt import GPT

        state = get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if not self.main:
            return None
        plain = GPT(self.cfg)
        plain.load_state_dict(state)  # tied head/embedding: the one tensor is loaded under both names
        return plain.eval()

    def optimizer_state(self, optimizer) -> dict | None:
        """The full AdamW state keyed by parameter name, on rank 0 (collective)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        state = get_optimizer_state_dict(self.model, optimizer,
                                         options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return state if self.main else None

    def load_optimizer_state(self, optimizer, state: dict) -> None:
        """Every rank passes the same full state (each read the checkpoint); each keeps its shard."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(self.model, optimizer, state, options=StateDictOptions(full_state_dict=True))
