"""Choosing the next token from logits: pure tensor functions, batched, per-row settings.

Sampling uses inverse-CDF draws from a uniform number per row, so a request with a seed gets
the same tokens whatever else shares its batch (each seeded row owns a generator).
"""

from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, temperature: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor):
    """Sorted probabilities after temperature, top-k and top-p, and the matching token ids.

    logits (B, V); temperature, top_p (B,) float; top_k (B,) long with 0 = off.
    Returns probs (B, V) sorted descending (masked entries 0, rows sum to 1) and order (B, V).
    """
    scaled = logits / temperature.clamp_min(1e-6).unsqueeze(1)
    sorted_logits, order = scaled.sort(dim=-1, descending=True)
    rank = torch.arange(logits.shape[1], device=logits.device).unsqueeze(0)  # (1, V)
    k = torch.where(top_k > 0, top_k, torch.full_like(top_k, logits.shape[1])).unsqueeze(1)
    sorted_logits = sorted_logits.masked_fill(rank >= k, float("-inf"))
    probs = sorted_logits.softmax(dim=-1)
    # Keep the smallest prefix whose mass reaches top_p: drop a token when the mass before it
    # already reaches top_p (the first token always survives).
    mass_before = probs.cumsum(dim=-1) - probs
    probs = probs.masked_fill(mass_before >= top_p.unsqueeze(1), 0.0)
    return probs / probs.sum(dim=-1, keepdim=True), order


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
    # The inverse-CDF walk visits tokens in descending probability, so a draw below the top
    # token's probability picks the argmax (top-k and top-p only raise that probability). A
    # confident model's draws nearly all stop there, so only the other rows pay for sorting the
    # vocabulary (the sort was most of the sampler's cost). The margin covers rounding, so each
    # row gets the token the full walk gives it; so does walking every row whose top is tied
    # (the sort may order tied tokens otherwise than argmax does).
    scaled = logits / temperature.clamp_min(1e-6).unsqueeze(1)
    gap = scaled - scaled.max(dim=-1, keepdim=True).values
    top_prob = 1.0 / gap.exp().sum(dim=-1)
    tied = (gap == 0).sum(dim=-1) > 1
    walk = (temperature > 0) & ((uniforms.to(top_prob.dtype) >= top_prob * (1 - 1e-5)) | tied)
    if not bool(walk.any()):
        return greedy
    rows = walk.nonzero().squeeze(1)
    token = greedy.clone()
    token[rows] = inverse_cdf(logits[rows], temperature[rows], top_k[rows], top_p[rows], uniforms[rows])
    return token


def inverse_cdf(logits, temperature, top_k, top_p, uniforms) -> torch.Tensor:
    """The token each row's uniform draw lands on, walking the filtered distribution in
    descending probability. (B,) long."""
    probs, order = filter_logits(logits, temperature, top_k, top_p)
    cdf = probs.cumsum(dim=-1)
    idx = torch.searchsorted(cdf, uniforms.unsqueeze(1).to(cdf.dtype) * cdf[:, -1:]).clamp_max(logits.shape[1] - 1)
    return order.gather(1, idx).squeeze(1)
