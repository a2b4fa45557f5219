"""Choosing the next token from logits: pure tensor functions, batched, per-row settings.

Sampling uses inverse-CDF draws from a uniform number per row, so a request with a seed gets
the same tokens whatever else shares its batch (each seeded row owns a generator). The CDF runs
over the vocabulary in token order, so only rows with a top-k or top-p filter pay for a sort:
plain temperature sampling (every RL rollout) is a softmax and a cumulative sum.
"""

from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, temperature: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor):
    """Probabilities after temperature, top-k and top-p, in token order (B, V): masked entries 0,
    rows sum to 1.

    logits (B, V); temperature, top_p (B,) float; top_k (B,) long with 0 = off.
    """
    vocab = logits.shape[1]
    probs = (logits / temperature.clamp_min(1e-6).unsqueeze(1)).softmax(dim=-1)
    filtered = ((top_k > 0) & (top_k < vocab)) | (top_p < 1)
    if not bool(filtered.any()):
        return probs
    rows = filtered.nonzero().squeeze(1)
    sub, order = probs[rows].sort(dim=-1, descending=True)
    rank = torch.arange(vocab, device=logits.device).unsqueeze(0)  # (1, V)
    k = torch.where(top_k[rows] > 0, top_k[rows], torch.full_like(top_k[rows], vocab)).unsqueeze(1)
    sub = sub.masked_fill(rank >= k, 0.0)
    sub = sub / sub.sum(dim=-1, keepdim=True)
    # Keep the smallest prefix whose mass reaches top_p: drop a token when the mass before it
    # already reaches top_p (the first token always survives).
    keep = (rank < k) & (sub.cumsum(dim=-1) - sub < top_p[rows].unsqueeze(1))
    kept = torch.zeros_like(keep).scatter(1, order, keep)  # back to token order
    out = probs.clone()
    out[rows] = torch.where(kept, probs[rows], 0.0)
    return out / out.sum(dim=-1, keepdim=True)


def sample_next(
    logits: torch.Tensor,  # (B, V), already masked for banned tokens
    temperature: torch.Tensor,  # (B,) 0 = greedy
    top_k: torch.Tensor,  # (B,)
    top_p: torch.Tensor,  # (B,)
    uniforms: torch.Tensor | None,  # (B,) in [0, 1); None when every row is greedy
) -> torch.Tensor:
    """Next token id per row, (B,) long."""
    greedy = logits.argmax(dim=-1)
    if uniforms is None:
        return greedy
    probs = filter_logits(logits, temperature, top_k, top_p)
    cdf = probs.cumsum(dim=-1)
    # right=True: the first token whose CDF exceeds the draw, so a token of probability 0 (its
    # CDF equal to the one before) is never picked; rounding at the top end falls back to the
    # last token with any probability.
    idx = torch.searchsorted(cdf, uniforms.unsqueeze(1).to(cdf.dtype) * cdf[:, -1:], right=True).squeeze(1)
    last = torch.where(probs > 0, torch.arange(probs.shape[1], device=probs.device), 0).amax(dim=-1)
    sampled = torch.minimum(idx, last)
    return torch.where(temperature > 0, sampled, greedy)
