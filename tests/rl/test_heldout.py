"""Held-out scoring: greedy pass@1 and pass@1 of seeded samples, through the real engine and the
bundled model, and what `train_rl`'s evaluation logs with and without samples."""

from __future__ import annotations

from ponder.engine.base import SamplingParams
from ponder.engine.native import NativeEngine
from ponder.engine.spec import BUNDLED
from ponder.model.checkpoint import load_checkpoint
from ponder.rl.figures import rl_compute_plot
from ponder.rl.grpo import evaluate
from ponder.rl.heldout import pass_at_1, sampled_pass_at_1
from ponder.rl.rl_config import RLConfig
from ponder.tasks.mix import held_out_set


class RecordingEngine(NativeEngine):
    """The real engine, keeping what each generate call was asked for."""

    calls: list

    def generate(self, prompts, params):
        self.calls = [*getattr(self, "calls", []), (prompts, params)]
        return super().generate(prompts, params)


def engine() -> RecordingEngine:
    model, tok = load_checkpoint(BUNDLED)
    return RecordingEngine(model.eval(), tok)


def test_sampled_pass_at_1_draws_k_seeded_samples_of_each_problem_the_same_every_time():
    eng, problems = engine(), held_out_set(6, difficulty=4)
    first = sampled_pass_at_1(eng, problems, samples=3, temperature=0.7, max_tokens=256)
    prompts, params = eng.calls[0]
    assert [m[0].content for m in prompts] == [p.prompt for p in problems for _ in range(3)]
    assert [q.seed for q in params] == list(range(18))  # sample j of problem i: seed 3i + j
    assert {(q.temperature, q.max_completion_tokens) for q in params} == {(0.7, 256)}
    again = sampled_pass_at_1(eng, problems, samples=3, temperature=0.7, max_tokens=256)
    assert first == again  # fixed seeds: evaluations of a run differ only by its weights


def test_sampling_hotter_than_greedy_scores_lower_on_hard_problems():
    eng, problems = engine(), held_out_set(8, difficulty=5)
    greedy = pass_at_1(eng, problems, SamplingParams(max_completion_tokens=384))
    hot = sampled_pass_at_1(eng, problems, samples=2, temperature=3.0, max_tokens=384)
    assert hot["all"] < greedy["all"]


def test_evaluate_adds_sampled_keys_only_with_eval_samples_and_the_figure_draws_either(tmp_path):
    model, tok = load_checkpoint(BUNDLED)
    greedy_only = evaluate(model, tok, RLConfig(eval_problems=3, eval_samples=0))
    assert set(greedy_only) == {"heldout_pass1", "heldout_pass1_d5", "heldout_reasoning_tokens"}
    both = evaluate(model, tok, RLConfig(eval_problems=3, eval_samples=2))
    assert set(both) == set(greedy_only) | {"heldout_pass1_sampled", "heldout_pass1_d5_sampled"}
    assert {k: both[k] for k in greedy_only} == greedy_only  # the greedy figures do not change
    for rows in ([{"step": 0, "flops": 0.0, **greedy_only}, {"step": 5, "flops": 1e12, **greedy_only}],
                 [{"step": 0, "flops": 0.0, **both}, {"step": 5, "flops": 1e12, **both}]):
        out = rl_compute_plot(rows, tmp_path, hardest=5)
        assert out.read_bytes()[:4] == b"\x89PNG"
