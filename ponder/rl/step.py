"""One RL step: this rank's groups of samples with their rewards and advantages, then the
clipped-surrogate updates. Algorithms are looked up by name in `algos.py`.

Statistics are summed across ranks before they are logged, so a 2-process run logs what one
process would. Under DDP every rank runs the same number of forward/backward passes (a rank
with no kept samples in a minibatch runs a zero-weight pass), and each rank's loss is scaled by
its share of the global normaliser: masked tokens for token_mean, kept sequences for
sequence_mean, and for constant_norm every sequence drawn for the minibatch, kept or not (so
the normaliser is the constant Dr.GRPO asks for, and dropping zero-gradient samples is only a
saving of work).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ponder.devices import autocast
from ponder.engine.native import NativeEngine
from ponder.model.chat import Message
from ponder.rl.algos import ADVANTAGES, informative_groups, overlong_penalty, policy_loss
from ponder.rl.behaviour import revises
from ponder.rl.distributed import Dist
from ponder.rl.rewards import RewardSet
from ponder.rl.rl_config import RLConfig
from ponder.rl.rollout import Sequences, build_sequences, draw_groups, step_problems, token_logprobs


@dataclass(frozen=True)
class Rollout:
    sequences: Sequences | None  # this rank's kept samples (None: it kept none)
    advantages: torch.Tensor  # (kept,)
    global_index: torch.Tensor  # (kept,) each kept sample's index in the step's whole batch (P * G)
    total: int  # P * G: samples drawn this step over all ranks
    stats: dict
    any_kept: bool  # on any rank


def rollout(model, tok, cfg: RLConfig, rewards: RewardSet, step: int, d: Dist) -> Rollout:
    problems = step_problems(cfg.seed, step, cfg.prompts_per_step, cfg.families, cfg.min_difficulty,
                             cfg.max_difficulty)
    mine = d.shard(len(problems))
    local = [problems[i] for i in mine]
    model.eval()
    engine = NativeEngine(model, tok, max_batch=cfg.rollout_batch)
    completions = draw_groups(engine, local, cfg.group_size, cfg.max_completion_tokens, cfg.temperature,
                              cfg.seed, step, indices=mine)
    expanded = [p for p in local for _ in range(cfg.group_size)]
    prompts = [[Message("user", p.prompt)] for p in expanded]
    total, parts = rewards(prompts, completions, problems=expanded)
    reward = torch.tensor(total, dtype=torch.float32)  # (b,)
    lengths = torch.tensor([c.completion_tokens for c in completions])
    truncated = torch.tensor([c.finish_reason == "length" for c in completions], dtype=torch.bool)
    if cfg.overlong == "penalty":
        reward = reward + overlong_penalty(lengths, cfg.max_completion_tokens, cfg.overlong_cache)
    grouped = reward.view(len(local), cfg.group_size)  # (p, G)
    advantages = ADVANTAGES[cfg.advantage](grouped).flatten()  # (b,)
    keep = torch.ones(len(completions), dtype=torch.bool)
    if cfg.dynamic_sampling:
        keep &= informative_groups(grouped).repeat_interleave(cfg.group_size)
    if cfg.overlong == "mask":
        keep &= ~truncated
    n = len(completions)
    sums = d.sum([n, float(reward.sum()), *(v * n for v in parts.values()),
                  sum(c.reasoning_tokens for c in completions), float(lengths.sum()), float(truncated.sum()),
                  float(keep.sum()), sum(revises(c.reasoning) for c in completions), float(lengths[keep].sum())])
    count, reward_sum, *rest = sums
    part_sums, (reasoning, sampled, cut, kept, revised, trained) = rest[: len(parts)], rest[len(parts):]
    stats = {"reward": round(reward_sum / count, 4),
             **{f"reward_{k}": round(v / count, 4) for k, v in zip(parts, part_sums)},
             "reasoning_tokens": round(reasoning / count, 1), "completion_tokens": round(sampled / count, 1),
             "truncated": round(cut / count, 4), "kept": round(kept / count, 4),
             "revise_share": round(revised / count, 4), "sampled_tokens": int(sampled),
             "trained_tokens": int(trained)}
    index = keep.nonzero().flatten().tolist()
    sequences = None
    if index:
        prompt_ids = [engine.encode(prompts[i]) for i in index]
        sequences = build_sequences(prompt_ids, [completions[i] for i in index], tok.special.pad)
    global_index = torch.tensor([mine[i // cfg.group_size] * cfg.group_size + i % cfg.group_size for i in index],
                                dtype=torch.long)
    return Rollout(sequences, advantages[index], global_index, len(problems) * cfg.group_size, stats,
                   any_kept=kept > 0)


def _weight(cfg: RLConfig, mask: torch.Tensor) -> float:
    return float(mask.sum()) if cfg.aggregation == "token_mean" else float(mask.shape[0])


def minibatch_of(cfg: RLConfig, step: int, total: int) -> torch.Tensor:
    """(total,) the minibatch of every sample of the step's whole batch: a seeded shuffle dealt
    round-robin. It depends on (seed, step) only, never on the world size or on RNG state, so
    N ranks form the minibatches one process forms, and a resumed run forms the same ones."""
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    order = torch.randperm(total, generator=generator)
    out = torch.empty(total, dtype=torch.long)
    out[order] = torch.arange(total) % cfg.updates_per_step
    return out


def local_batch(batch: Rollout, pad: int, device: torch.device) -> tuple[Sequences, torch.Tensor]:
    """This rank's kept sequences and advantages on the policy's device (widths stay on the CPU:
    they only slice). A rank that kept nothing gets one zero-weight row, so it still runs the
    forward and backward passes DDP and FSDP need from every rank."""
    seqs, advantages = batch.sequences, batch.advantages
    if seqs is None:
        seqs = Sequences(torch.full((1, 2), pad, dtype=torch.long), torch.zeros(1, 1), torch.zeros(1),
                         torch.full((1,), 2))
        advantages = torch.zeros(1)
    return Sequences(seqs.tokens.to(device), seqs.mask.to(device), seqs.lengths, seqs.widths), advantages.to(device)


def update(policy, ref, optimizer, cfg: RLConfig, batch: Rollout, pad: int, d: Dist, step: int) -> dict:
    """`updates_per_step` minibatch updates over the kept samples of every rank. `policy` is the
    policy spread over the ranks (`distributed.wrap`): the loss runs through `policy.module`, and
    log-probs that need no gradient are taken with the whole weights (`policy.gathered()`)."""
    model = policy.model
    device = model.embed.weight.device
    seqs, advantages = local_batch(batch, pad, device)
    # DDP needs one forward per backward; alone, a minibatch runs in chunks of rows of similar
    # length, each only as wide as its longest row (the loss, and so the gradient, is unchanged).
    chunk = len(advantages) if d.world > 1 else cfg.update_chunk
    whole = minibatch_of(cfg, step, batch.total)  # (P * G,) every drawn sample's minibatch
    assigned = whole[batch.global_index]  # (kept,)
    parts = [(assigned == i).nonzero().flatten() for i in range(cfg.updates_per_step)]
    minibatches = [part[torch.argsort(seqs.widths[part], stable=True)] for part in parts]
    # The first minibatch is on-policy when it is trained (old = its own logp, detached), so
    # only the later ones need log-probs from before the first update.
    later = torch.cat(minibatches[1:]) if len(minibatches) > 1 else minibatches[0][:0]
    old = torch.zeros_like(seqs.mask)
    with torch.no_grad(), policy.gathered(), autocast(device, cfg.precision):
        if len(later):
            rest = seqs.rows(later)
            old[later] = token_logprobs(model, rest.tokens, cfg.temperature, chunk, rest.widths)
        ref_logp = token_logprobs(ref, seqs.tokens, cfg.temperature, chunk, seqs.widths) if ref is not None else None
    model.train()
    applied, nonfinite, sums = 0, 0, [0.0] * 5  # weight, weight * (loss, kl, clip fraction, entropy)
    for number, part in enumerate(minibatches):
        empty = len(part) == 0
        rows = part if not empty else torch.tensor([0])
        mask = seqs.mask[rows] * (0.0 if empty else 1.0)
        weight = 0.0 if empty else _weight(cfg, mask)
        total = d.sum([weight])[0]
        if total == 0:
            continue  # no rank has samples in this minibatch
        if cfg.aggregation == "constant_norm":
            # Dr.GRPO's constant: every sample drawn for this minibatch, dropped ones included.
            # A dropped sample (an all-equal group, a masked truncation) has no gradient, so
            # skipping it saves work without changing the update, as long as it still counts here.
            total = float((whole == number).sum())
        with autocast(device, cfg.precision):
            logp, entropy = token_logprobs(policy.module, seqs.tokens[rows], cfg.temperature,
                                           len(rows) if d.world > 1 else chunk, seqs.widths[rows],
                                           entropy=True, entropy_grad=cfg.entropy_coef > 0)
        old_logp = logp.detach() if number == 0 else old[rows]
        parts = policy_loss(logp, old_logp, advantages[rows], mask, aggregation=cfg.aggregation,
                            eps_low=cfg.clip_low, eps_high=cfg.clip_high, max_len=cfg.max_completion_tokens,
                            ref_logp=ref_logp[rows] if ref_logp is not None else None, kl_coef=cfg.kl_coef,
                            entropy=entropy, entropy_coef=cfg.entropy_coef)
        if not d.all_true(bool(torch.isfinite(parts.loss))):
            nonfinite += 1
            continue  # a NaN loss anywhere skips the update everywhere; it is never applied
        optimizer.zero_grad(set_to_none=True)
        (parts.loss * (d.world * weight / total)).backward()  # DDP averages; this makes it the global loss
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        optimizer.step()
        applied += 1
        values = (parts.loss.detach(), parts.kl, parts.clip_fraction, parts.entropy)
        sums = [a + b for a, b in zip(sums, [weight, *(weight * float(v) for v in values)])]
    weight, *weighted = d.sum(sums)
    mean = [v / weight if weight else 0.0 for v in weighted]
    return {"loss": round(mean[0], 6), "kl": round(mean[1], 6), "clip_fraction": round(mean[2], 5),
            "entropy": round(mean[3], 4), "nonfinite_updates": nonfinite, "updates": applied}
