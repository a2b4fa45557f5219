"""One RL update through `ponder.rl.step.update`: with Dr.GRPO's constant normaliser, dropping
the samples whose gradient is zero (dynamic sampling, masked truncations) changes nothing but
the work done. Plain SGD, so the parameter change is the gradient itself."""

from __future__ import annotations

import functools

import torch

from ponder.engine.spec import BUNDLED
from ponder.engine.native import NativeEngine
from ponder.model.chat import Message
from ponder.model.checkpoint import load_checkpoint
from ponder.rl.distributed import Dist, wrap
from ponder.rl.rl_config import RLConfig
from ponder.rl.rollout import build_sequences, draw_groups, step_problems
from ponder.rl.step import Rollout, update

G = 4


@functools.cache
def samples() -> tuple[list[list[int]], list]:
    """The prompts' token ids and G samples each, drawn once from the bundled model."""
    model, tok = load_checkpoint(BUNDLED)
    problems = step_problems(0, 0, 3, ("arithmetic", "countdown"), 2, 3)
    engine = NativeEngine(model.eval(), tok)
    completions = draw_groups(engine, problems, G, 96, 1.5, 0, 0)
    return [engine.encode([Message("user", p.prompt)]) for p in problems for _ in range(G)], completions


def batch_of(tok, keep: list[int], advantages: torch.Tensor) -> Rollout:
    prompts, completions = samples()
    sequences = build_sequences([prompts[i] for i in keep], [completions[i] for i in keep], tok.special.pad)
    return Rollout(sequences, advantages[keep], torch.tensor(keep), len(completions), {}, any_kept=True)


def sgd_change(aggregation: str, keep: list[int], advantages: torch.Tensor) -> torch.Tensor:
    model, tok = load_checkpoint(BUNDLED)
    start = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    cfg = RLConfig(aggregation=aggregation, updates_per_step=2, max_completion_tokens=96, temperature=1.5,
                   grad_clip=0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    update(wrap(model, Dist()), None, optimizer, cfg, batch_of(tok, keep, advantages), tok.special.pad,
           Dist(), step=0)
    return torch.cat([p.detach().flatten() for p in model.parameters()]) - start


def test_dropping_zero_advantage_samples_leaves_the_constant_norm_update_unchanged():
    advantages = torch.tensor([0.5, -0.5, 0.25, -0.25, 0.0, 0.0, 0.0, 0.0, 1.0, -1.0, 0.0, 0.0])
    everything = list(range(3 * G))
    informative = [i for i in everything if advantages[i] != 0]
    full = sgd_change("constant_norm", everything, advantages)
    dropped = sgd_change("constant_norm", informative, advantages)
    assert full.norm() > 0
    assert (full - dropped).norm() < 1e-4 * full.norm()  # float rounding of the weights only
    # sequence_mean averages over the sequences it trains on, so there dropping does change the update.
    full, dropped = (sgd_change("sequence_mean", keep, advantages) for keep in (everything, informative))
    assert (full - dropped).norm() > 0.1 * full.norm()
