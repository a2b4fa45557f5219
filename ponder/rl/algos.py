"""RL on chains of thought: advantage estimators and policy losses as pure functions, picked by
name from small registries, so the trainer never branches on algorithm names (verl's habit).

Shapes: G samples per prompt, P prompts, B = P * G sequences of T completion tokens.
Rewards arrive grouped (P, G); per-token tensors are (B, T) with a 0/1 `mask` over the tokens
the policy actually chose (prompt and padding are 0).

- GRPO (DeepSeekMath): advantage = (r - mean_group) / (std_group + eps); the loss averages
  over each sequence's tokens, then over sequences.
- Dr.GRPO (Liu et al., 2025, "Understanding R1-Zero-like training"): no std scaling (it
  up-weights too-easy and too-hard prompts) and no per-sequence length division (it favours
  long wrong answers); the token sum is divided by a constant instead.
- DAPO (Yu et al., 2025): token-level aggregation (every token of the batch weighs the same)
  and asymmetric clipping, clip-higher: eps_high > eps_low keeps low-probability tokens that
  a positive advantage should raise from being clipped away, which holds entropy up.
- KL to a frozen reference with the k3 estimator (Schulman): exp(q - p) - (q - p) - 1, with
  q - p = ref_logp - logp; unbiased, always >= 0.
- An entropy bonus: minus entropy_coef x the policy's full-vocabulary entropy at each sampled
  position, aggregated like the policy term. It must be the exact entropy from the logits: the
  sampled -logp estimates the entropy's value but not its gradient (zero in expectation), so a
  bonus on it would push on nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

EPS = 1e-6


# -- advantages: (P, G) rewards -> (P, G) advantages --------------------------------------------

def grpo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True, unbiased=False)
    return (rewards - mean) / (std + EPS)


def dr_grpo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    return rewards - rewards.mean(dim=1, keepdim=True)


def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """Leave-one-out baseline (Ahmadian et al., 2024): r_i - mean of the others."""
    g = rewards.shape[1]
    if g < 2:
        return torch.zeros_like(rewards)
    return (rewards - rewards.mean(dim=1, keepdim=True)) * g / (g - 1)


ADVANTAGES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "grpo": grpo_advantages,
    "dr_grpo": dr_grpo_advantages,
    "rloo": rloo_advantages,
}


# -- the clipped surrogate ------------------------------------------------------------------------

@dataclass(frozen=True)
class LossParts:
    loss: torch.Tensor  # scalar to minimise
    policy: torch.Tensor  # scalar: the clipped policy-gradient term, aggregated
    kl: torch.Tensor  # scalar: mean k3 KL over masked tokens (0 when no reference)
    clip_fraction: torch.Tensor  # scalar: share of masked tokens whose ratio was clipped
    entropy: torch.Tensor  # scalar: mean full-vocabulary entropy over masked tokens (nats)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """(B, T) per-token k3 estimate of KL(policy || reference); >= 0."""
    log_ratio = (ref_logp - logp).clamp(-20, 20)
    return torch.exp(log_ratio) - log_ratio - 1


def clipped_token_objective(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                            eps_low: float, eps_high: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) per-token PPO loss (to minimise) and (B, T) 0/1 clipped indicator.
    advantages: (B,) one per sequence, broadcast over its tokens."""
    ratio = torch.exp((logp - old_logp).clamp(-20, 20))  # (B, T)
    adv = advantages[:, None]  # (B, 1)
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - eps_low, 1 + eps_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    was_clipped = (clipped < unclipped).float()  # the min picked the clipped branch
    return per_token, was_clipped


# -- aggregation: (B, T) per-token loss + mask -> scalar --------------------------------------------

def sequence_mean(per_token: torch.Tensor, mask: torch.Tensor, max_len: int) -> torch.Tensor:
    """GRPO: mean over each sequence's tokens, then over sequences (long answers weigh less per token)."""
    per_seq = (per_token * mask).sum(1) / mask.sum(1).clamp_min(1)
    return per_seq.mean()


def token_mean(per_token: torch.Tensor, mask: torch.Tensor, max_len: int) -> torch.Tensor:
    """DAPO: every token in the batch weighs the same."""
    return (per_token * mask).sum() / mask.sum().clamp_min(1)


def constant_norm(per_token: torch.Tensor, mask: torch.Tensor, max_len: int) -> torch.Tensor:
    """Dr.GRPO: the token sum over a constant (sequences x max completion length), no length bias."""
    return (per_token * mask).sum() / (mask.shape[0] * max_len)


AGGREGATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]] = {
    "sequence_mean": sequence_mean,
    "token_mean": token_mean,
    "constant_norm": constant_norm,
}


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """(..., V) logits -> (...) entropy of softmax(logits) in nats; differentiable."""
    return entropy_of(torch.log_softmax(logits, dim=-1))


def entropy_of(logp: torch.Tensor) -> torch.Tensor:
    """(..., V) normalised log-probabilities -> (...) their entropy in nats; differentiable."""
    return -(logp.exp() * logp).sum(-1)


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
                aggregation: str, eps_low: float, eps_high: float, max_len: int,
                ref_logp: torch.Tensor | None = None, kl_coef: float = 0.0,
                entropy: torch.Tensor | None = None, entropy_coef: float = 0.0) -> LossParts:
    """The whole loss: clipped surrogate + kl_coef * k3 KL - entropy_coef * entropy, each
    aggregated the same way. `entropy`: (B, T) full-vocabulary entropy per position (needed for
    entropy_coef > 0; without it the logged entropy is the sampled -logp, its Monte-Carlo estimate)."""
    if entropy_coef and entropy is None:
        raise ValueError("entropy_coef > 0 needs the per-position entropy (token_entropy of the logits)")
    aggregate = AGGREGATIONS[aggregation]
    per_token, was_clipped = clipped_token_objective(logp, old_logp, advantages, eps_low, eps_high)
    policy = aggregate(per_token, mask, max_len)
    denom = mask.sum().clamp_min(1)
    loss = policy
    if ref_logp is not None:
        kl_tokens = k3_kl(logp, ref_logp)
        kl = (kl_tokens * mask).sum() / denom
        if kl_coef:
            loss = loss + kl_coef * aggregate(kl_tokens, mask, max_len)
    else:
        kl = torch.zeros((), dtype=logp.dtype)
    if entropy_coef:
        loss = loss - entropy_coef * aggregate(entropy, mask, max_len)
    per_position = entropy if entropy is not None else -logp
    return LossParts(loss=loss, policy=policy.detach(), kl=kl.detach(),
                     clip_fraction=((was_clipped * mask).sum() / denom).detach(),
                     entropy=((per_position.detach() * mask).sum() / denom))


# -- sample filters ------------------------------------------------------------------------------

def informative_groups(rewards: torch.Tensor) -> torch.Tensor:
    """(P,) bool: groups whose rewards are not all equal (DAPO's dynamic sampling keeps these:
    an all-equal group has zero advantage everywhere and only dilutes the batch)."""
    return (rewards.max(dim=1).values - rewards.min(dim=1).values) > EPS


def overlong_penalty(lengths: torch.Tensor, max_len: int, cache: int) -> torch.Tensor:
    """DAPO's soft overlong punishment: 0 up to max_len - cache, then linearly down to -1 at
    max_len. lengths: (B,) completion tokens."""
    if cache <= 0:
        return torch.zeros_like(lengths, dtype=torch.float32)
    over = (lengths.float() - (max_len - cache)).clamp_min(0) / cache
    return -over.clamp_max(1.0)
