import torch

from ponder.rl.traces import batch_for_step, encode_example, messages_for, pool_seeds
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
