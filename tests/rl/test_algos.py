"""Advantages, the clipped surrogate, aggregations, KL and sample filters: hand-computed values
and properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ponder.rl.algos import (ADVANTAGES, AGGREGATIONS, clipped_token_objective, dr_grpo_advantages,
                             grpo_advantages, informative_groups, k3_kl, overlong_penalty, policy_loss,
                             rloo_advantages, token_entropy)

groups = st.lists(st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=8), min_size=1, max_size=6)


def test_grpo_and_dr_grpo_on_a_hand_computed_group():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    assert torch.allclose(dr_grpo_advantages(rewards), torch.tensor([[0.5, -0.5, -0.5, 0.5]]))
    assert torch.allclose(grpo_advantages(rewards), torch.tensor([[1.0, -1.0, -1.0, 1.0]]), atol=1e-4)
    # RLOO: r_i minus the mean of the other three.
    assert torch.allclose(rloo_advantages(rewards), torch.tensor([[2 / 3, -2 / 3, -2 / 3, 2 / 3]]))


@settings(max_examples=60, deadline=None)
@given(groups)
def test_advantages_sum_to_zero_per_group_and_vanish_on_equal_rewards(rows):
    width = min(len(r) for r in rows)
    rewards = torch.tensor([r[:width] for r in rows])
    for name, fn in ADVANTAGES.items():
        adv = fn(rewards)
        assert adv.shape == rewards.shape
        assert torch.allclose(adv.sum(1), torch.zeros(len(rows)), atol=1e-3), name
    equal = torch.full((2, 4), 0.7)
    for fn in ADVANTAGES.values():
        assert torch.allclose(fn(equal), torch.zeros(2, 4))


def test_clipping_is_asymmetric():
    old = torch.zeros(1, 3)
    logp = torch.log(torch.tensor([[1.5, 1.1, 0.5]]))  # ratios 1.5, 1.1, 0.5
    per_token, clipped = clipped_token_objective(logp, old, torch.tensor([1.0]), eps_low=0.2, eps_high=0.28)
    # positive advantage: the ratio is capped at 1.28 above; below 1 the unclipped ratio counts (min).
    assert torch.allclose(per_token, -torch.tensor([[1.28, 1.1, 0.5]]))
    assert clipped.tolist() == [[1.0, 0.0, 0.0]]
    per_token, clipped = clipped_token_objective(logp, old, torch.tensor([-1.0]), eps_low=0.2, eps_high=0.28)
    # negative advantage: min(-r, -clip(r)) -> the ratio is floored at 0.8, the rise is not capped.
    assert torch.allclose(per_token, torch.tensor([[1.5, 1.1, 0.8]]))
    assert clipped.tolist() == [[0.0, 0.0, 1.0]]


def test_aggregations_differ_as_the_papers_say():
    per_token = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert AGGREGATIONS["sequence_mean"](per_token, mask, 4).item() == 1.0  # each sequence's mean is 1
    assert AGGREGATIONS["token_mean"](per_token, mask, 4).item() == 1.0
    assert AGGREGATIONS["constant_norm"](per_token, mask, 4).item() == 6 / 8
    long_wrong = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    mask2 = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]])
    # GRPO's per-sequence mean gives the 1-token sequence as much weight as the 4-token one.
    assert AGGREGATIONS["sequence_mean"](long_wrong, mask2, 4).item() == 1.0
    assert AGGREGATIONS["token_mean"](long_wrong, mask2, 4).item() == 1.0
    assert AGGREGATIONS["constant_norm"](long_wrong, mask2, 4).item() == 5 / 8


def test_k3_kl_is_zero_at_equality_and_positive_elsewhere():
    logp = torch.log(torch.tensor([[0.5, 0.2]]))
    assert torch.allclose(k3_kl(logp, logp), torch.zeros(1, 2))
    ref = torch.log(torch.tensor([[0.4, 0.3]]))
    kl = k3_kl(logp, ref)
    expected = [math.exp(math.log(0.4 / 0.5)) - math.log(0.4 / 0.5) - 1, math.exp(math.log(1.5)) - math.log(1.5) - 1]
    assert torch.allclose(kl, torch.tensor([expected]))


def test_policy_loss_gradient_raises_good_tokens_and_kl_adds_a_penalty():
    logp = torch.log(torch.tensor([[0.3, 0.3], [0.3, 0.3]])).requires_grad_(True)
    old = logp.detach().clone()
    mask = torch.ones(2, 2)
    parts = policy_loss(logp, old, torch.tensor([1.0, -1.0]), mask, aggregation="token_mean", eps_low=0.2,
                        eps_high=0.28, max_len=2)
    parts.loss.backward()
    assert (logp.grad[0] < 0).all() and (logp.grad[1] > 0).all()  # descent raises row 0, lowers row 1
    assert parts.clip_fraction.item() == 0.0 and parts.kl.item() == 0.0
    ref = torch.log(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    with_kl = policy_loss(logp.detach(), old, torch.tensor([1.0, -1.0]), mask, aggregation="token_mean",
                          eps_low=0.2, eps_high=0.28, max_len=2, ref_logp=ref, kl_coef=0.5)
    assert with_kl.kl.item() > 0 and with_kl.loss.item() > parts.loss.item()


def test_dynamic_sampling_and_overlong_penalty():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    assert informative_groups(rewards).tolist() == [False, True, False]
    lengths = torch.tensor([100, 192, 224, 256, 300])
    assert overlong_penalty(lengths, 256, 64).tolist() == [0.0, 0.0, -0.5, -1.0, -1.0]
    assert overlong_penalty(lengths, 256, 0).tolist() == [0.0] * 5


# Two sequences, the second twice as long, with a masked token of 99 each: sequence_mean averages
# the per-sequence means (1 and 2), token_mean the three real tokens, constant_norm divides their
# sum by 2 sequences x max_len 4. A masked 99 leaking in would change every value.
EXPECTED_AGGREGATES = {"sequence_mean": (1.0 + 2.0) / 2, "token_mean": (1.0 + 2.0 + 2.0) / 3,
                       "constant_norm": (1.0 + 2.0 + 2.0) / (2 * 4)}


@pytest.mark.parametrize("name", list(AGGREGATIONS))
def test_every_aggregation_ignores_masked_tokens(name):
    per_token = torch.tensor([[1.0, 99.0, 99.0], [2.0, 2.0, 99.0]])
    mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    assert AGGREGATIONS[name](per_token, mask, 4).item() == pytest.approx(EXPECTED_AGGREGATES[name])


def test_token_entropy_is_exact():
    uniform = torch.zeros(2, 3, 8)
    assert torch.allclose(token_entropy(uniform), torch.full((2, 3), math.log(8)))
    peaked = torch.tensor([[100.0, 0.0, 0.0]])
    assert token_entropy(peaked).item() < 1e-6


def test_entropy_bonus_raises_the_entropy_it_is_given():
    logits = torch.tensor([[[3.0, 0.0, -1.0], [2.0, 1.0, 0.0]]], requires_grad=True)  # (1, 2, V=3)
    targets = torch.tensor([[0, 0]])
    logp = torch.log_softmax(logits, -1).gather(-1, targets[..., None]).squeeze(-1)
    entropy = token_entropy(logits)
    mask = torch.ones(1, 2)
    parts = policy_loss(logp, logp.detach(), torch.zeros(1), mask, aggregation="token_mean", eps_low=0.2,
                        eps_high=0.28, max_len=2, entropy=entropy, entropy_coef=0.1)
    assert torch.isclose(parts.entropy, entropy.mean())
    assert torch.isclose(parts.loss, -0.1 * entropy.mean())  # zero advantages: only the bonus is left
    parts.loss.backward()
    with torch.no_grad():  # one descent step on the loss raises the entropy
        assert token_entropy(logits - 0.5 * logits.grad).mean() > entropy.mean()
    without = policy_loss(logp.detach(), logp.detach(), torch.zeros(1), mask, aggregation="token_mean",
                          eps_low=0.2, eps_high=0.28, max_len=2)
    assert torch.isclose(without.entropy, -logp.detach().mean())  # no logits: the sampled -logp estimate
    with pytest.raises(ValueError, match="entropy_coef"):
        policy_loss(logp, logp, torch.zeros(1), mask, aggregation="token_mean", eps_low=0.2, eps_high=0.28,
                    max_len=2, entropy_coef=0.1)
