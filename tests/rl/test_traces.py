import torch

from ponder.rl.traces import (
    _pool_batches,
    batch_for_step,
    cut_point,
    encode_cut_example,
    encode_example,
    messages_for,
    pool_seeds,
)
from ponder.tasks.mix import HELD_OUT_BASE, sample_mix

FAMILIES = ("arithmetic", "countdown", "word_problems")


def test_batches_are_a_pure_function_of_seed_and_step(tok):
    a = batch_for_step(tok, 21, 0, 8, FAMILIES, 0.2, 256)
    b = batch_for_step(tok, 21, 0, 8, FAMILIES, 0.2, 256)
    c = batch_for_step(tok, 22, 0, 8, FAMILIES, 0.2, 256)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0][:, :5], c[0][:, :5]) or a[0].shape != c[0].shape


def test_targets_are_the_completion_shifted_by_one(tok):
    problem = sample_mix(5)
    import random

    ids, target = encode_example(tok, messages_for(problem, random.Random(0), 0.0), problem)
    completion = tok.decode([i for i, t in zip(ids, target) if t])
    assert completion == f"{problem.reference}</think>{problem.answer}<|end|>"
    inputs, targets, mask = batch_for_step(tok, 0, 0, 4, FAMILIES, 0.0, 256)
    assert inputs.shape == targets.shape == mask.shape
    for row in range(len(inputs)):
        n = int((inputs[row] != tok.special.pad).sum())
        assert torch.equal(targets[row, : n - 1], inputs[row, 1:n])  # next-token targets
    assert (targets[mask > 0] != tok.special.pad).all()


def test_training_seeds_never_reach_the_held_out_range():
    for run_seed in (0, 1, 12345):
        for pool in (0, 10**6):
            seeds = pool_seeds(run_seed, pool, 64)
            assert 0 <= seeds.start and seeds.stop <= HELD_OUT_BASE


def test_a_cut_example_trains_the_prefix_and_the_answer_but_not_the_early_close(tok):
    import random

    problem = sample_mix(7, 5)
    messages = messages_for(problem, random.Random(0), 0.0)
    keep = 9
    ids, target = encode_cut_example(tok, messages, problem, keep)
    trace = tok.encode(problem.reference)
    close = ids.index(tok.special.think_close)
    assert ids[close - keep : close] == trace[:keep]
    assert target[close] == 0  # closing early is the budget's doing, never the model's lesson
    assert tok.decode([i for i, t in zip(ids[close:], target[close:]) if t]) == f"{problem.answer}<|end|>"
    assert sum(target[:close]) == keep  # the prompt is not trained, the trace prefix is


def test_cut_rate_cuts_about_that_share_and_leaves_the_other_examples_as_they_were(tok):
    def pool(rate, mode="replace"):  # every example of pool 0, as (ids, target) tuples
        groups = _pool_batches(tok, 0, 0, 8, FAMILIES, 0.2, 512, rate, mode)
        return {(tuple(ids), tuple(t)) for group in groups for ids, t in group}

    whole, cut = pool(0.0), pool(0.5)
    changed = cut - whole
    assert 0.3 < len(changed) / len(cut) < 0.7 and len(whole - cut) == len(changed)
    close = tok.special.think_close
    for ids, target in changed:  # one closing tag, not trained; the answer after it is
        at = ids.index(close)
        assert ids.count(close) == 1 and target[at] == 0 and target[-1] == 1
    shares = [cut_point(tok, sample_mix(s), s, 0.1) is not None for s in range(400)]
    assert 0.05 < sum(shares) / 400 < 0.15


def test_added_cut_examples_come_on_top_of_every_whole_one(tok):
    whole = _pool_batches(tok, 0, 0, 8, FAMILIES, 0.2, 512, 0.0, "replace")
    added = _pool_batches(tok, 0, 0, 8, FAMILIES, 0.2, 512, 0.5, "add")
    as_set = lambda groups: {(tuple(ids), tuple(t)) for group in groups for ids, t in group}  # noqa: E731
    assert as_set(whole) < as_set(added)  # nothing whole is lost
    extra = sum(map(len, added)) - sum(map(len, whole))
    assert 0.3 * 128 < extra < 0.7 * 128  # about half the pool's 128 examples, once more and cut
    assert len(added) == len(whole) == 16 and max(map(len, added)) - min(map(len, added)) <= 1  # one pool, 16 steps


def test_a_shown_mistake_is_in_the_context_but_not_trained(tok):
    import random

    from ponder.tasks import TASKS

    problem = next(p for p in (TASKS["countdown"].sample(s, 4) for s in range(100)) if p.untrained)
    (start, end), = problem.untrained
    messages = messages_for(problem, random.Random(0), 0.0)
    ids, target = encode_example(tok, messages, problem)
    assert tok.decode(ids).count(problem.reference) == 1  # the whole trace is there, mistake included
    untrained = tok.decode([i for i, t in zip(ids, target) if not t])
    assert untrained.endswith(problem.reference[start:end])  # the prompt, then exactly the slipped try
    close = ids.index(tok.special.think_close)
    cut_ids, cut_target = encode_cut_example(tok, messages, problem, close)  # cut after the whole trace
    assert cut_target[:close] == target[:close]
