import torch
from hypothesis import given, settings, strategies as st

from ponder.engine.sampling import filter_logits, sample_next


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=2**31 - 1),
    st.integers(min_value=0, max_value=20),
    st.floats(min_value=0.05, max_value=1.0),
    st.floats(min_value=0.1, max_value=3.0),
)
def test_filtered_distribution_is_valid(seed, top_k, top_p, temperature):
    logits = torch.randn(3, 20, generator=torch.Generator().manual_seed(seed)) * 3
    probs = filter_logits(logits, torch.full((3,), temperature), torch.full((3,), top_k), torch.full((3,), top_p))
    torch.testing.assert_close(probs.sum(-1), torch.ones(3))
    kept = (probs > 0).sum(-1)
    assert (kept >= 1).all()
    if top_k:
        assert (kept <= top_k).all()
    full = (logits / temperature).softmax(-1)
    for row in range(3):
        k = int(kept[row])
        top = full[row].argsort(descending=True)[:k]
        assert set(top.tolist()) == set(probs[row].nonzero().squeeze(1).tolist())  # the k most likely survive
        # ... and they are the smallest such prefix whose (pre-renormalisation) mass reaches top_p
        if not top_k or k < top_k:
            assert full[row, top[: k - 1]].sum() < top_p + 1e-6
        torch.testing.assert_close(probs[row, top], full[row, top] / full[row, top].sum())


def test_an_unfiltered_row_is_the_plain_softmax_whatever_its_neighbours_ask():
    logits = torch.randn(2, 30, generator=torch.Generator().manual_seed(0))
    probs = filter_logits(logits, torch.tensor([0.7, 0.7]), torch.tensor([0, 5]), torch.tensor([1.0, 0.5]))
    torch.testing.assert_close(probs[0], (logits[0] / 0.7).softmax(-1))
    assert int((probs[1] > 0).sum()) <= 5


def test_a_token_of_probability_zero_is_never_drawn():
    logits = torch.tensor([[float("-inf"), 0.0, float("-inf"), 0.0, float("-inf")]] * 3)
    uniforms = torch.tensor([0.0, 0.5, 1.0 - 2**-24])
    out = sample_next(logits, torch.ones(3), torch.zeros(3, dtype=torch.long), torch.ones(3), uniforms)
    assert out.tolist() == [1, 3, 3]


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
