import torch
from hypothesis import given, settings, strategies as st

from ponder.engine.sampling import filter_logits, inverse_cdf, sample_next


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**31 - 1),
    st.integers(min_value=0, max_value=20),
    st.floats(min_value=0.05, max_value=1.0),
    st.floats(min_value=0.1, max_value=3.0),
)
def test_filtered_distribution_is_valid(seed, top_k, top_p, temperature):
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(seed)) * 3
    probs, order = filter_logits(logits, torch.full((3,), temperature), torch.full((3,), top_k), torch.full((3,), top_p))
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    kept = (probs > 0).sum(-1)
    assert (kept >= 1).all()
    if top_k:
        assert (kept <= top_k).all()
    # the kept prefix is the smallest one whose (pre-renormalisation) mass reaches top_p
    full = (logits / temperature).softmax(-1).sort(-1, descending=True).values
    for row in range(3):
        k = int(kept[row])
        if not top_k or k < top_k:
            assert full[row, : k - 1].sum() < top_p + 1e-6
    assert (order.sort(-1).values == torch.arange(20)).all()


def test_greedy_rows_take_the_argmax_even_in_a_sampled_batch():
    logits = torch.tensor([[0.0, 5.0, 1.0], [0.0, 5.0, 1.0]])
    out = sample_next(logits, torch.tensor([0.0, 1.0]), torch.zeros(2, dtype=torch.long), torch.ones(2), torch.tensor([0.999, 0.999]))
    assert out[0] == 1


def test_uniform_draw_picks_by_inverse_cdf():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    pick = lambda u: int(sample_next(logits, torch.ones(1), torch.zeros(1, dtype=torch.long), torch.ones(1), torch.tensor([u])))
    assert [pick(0.1), pick(0.6), pick(0.95)] == [0, 1, 2]


def test_top_k_one_is_greedy():
    logits = torch.randn(5, 30)
    out = sample_next(logits, torch.ones(5), torch.ones(5, dtype=torch.long), torch.ones(5), torch.rand(5))
    assert (out == logits.argmax(-1)).all()


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2**31 - 1), st.sampled_from([0.0, 2.0, 8.0, 20.0]))
def test_skipping_the_sort_picks_the_token_the_full_walk_picks(seed, sharpness):
    """Rows whose draw falls under the top token's probability skip the vocabulary sort; every
    row must still get exactly the token the full inverse-CDF walk gives it."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(64, 50, generator=g) * sharpness
    logits[:, 7] = float("-inf")  # a banned token
    temperature = torch.rand(64, generator=g) * 1.5
    temperature[:4] = 0.0  # greedy rows
    top_k = torch.randint(0, 6, (64,), generator=g)
    top_p = torch.where(torch.rand(64, generator=g) < 0.5, torch.ones(64), torch.rand(64, generator=g))
    uniforms = torch.rand(64, generator=g)
    walked = torch.where(temperature > 0, inverse_cdf(logits, temperature, top_k, top_p, uniforms), logits.argmax(-1))
    assert torch.equal(sample_next(logits, temperature, top_k, top_p, uniforms), walked)
