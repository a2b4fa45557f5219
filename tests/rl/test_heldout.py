"""Held-out scoring: greedy pass@1 and pass@1 of seeded samples, through the real engine and the
bundled model."""

from __future__ import annotations

from ponder.engine.base import SamplingParams
from ponder.engine.native import NativeEngine
from ponder.engine.spec import BUNDLED
from ponder.model.checkpoint import load_checkpoint
from ponder.rl.heldout import pass_at_1, sampled_pass_at_1
from ponder.tasks.mix import held_out_set


def engine() -> NativeEngine:
    model, tok = load_checkpoint(BUNDLED)
    return NativeEngine(model.eval(), tok)


def test_sampled_pass_at_1_scores_k_seeded_samples_per_problem_the_same_every_time():
    eng, problems = engine(), held_out_set(6, difficulty=4)
    first = sampled_pass_at_1(eng, problems, samples=3, temperature=1.0, max_tokens=256)
    again = sampled_pass_at_1(eng, problems, samples=3, temperature=1.0, max_tokens=256)
    assert first == again  # fixed seeds: evaluations of a run differ only by its weights
    # It is pass_at_1 over each problem repeated k times, sample j of problem i seeded i * k + j.
    repeated = [p for p in problems for _ in range(3)]
    by_hand = pass_at_1(eng, repeated, [SamplingParams(max_completion_tokens=256, temperature=1.0, seed=i)
                                        for i in range(len(repeated))])
    assert first == by_hand
    # 18 samples score in steps of 1/18; greedy's 6 answers in steps of 1/6.
    assert round(first["all"] * 18, 6) == round(first["all"] * 18)


def test_sampling_hotter_than_greedy_scores_lower_on_hard_problems():
    eng, problems = engine(), held_out_set(8, difficulty=5)
    greedy = pass_at_1(eng, problems, SamplingParams(max_completion_tokens=384))
    hot = sampled_pass_at_1(eng, problems, samples=2, temperature=3.0, max_tokens=384)
    assert hot["all"] < greedy["all"]
