"""The RL trainer on the bundled policy: it runs, it learns what a reward asks, it resumes exactly,
and bad rewards, NaN losses and bad flags are handled as the issue says."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ponder.cli import main
from ponder.errors import UserError
from ponder.rl.grpo import train_rl
from ponder.rl.rl_config import RLConfig

FAST = dict(prompts_per_step=4, group_size=4, max_completion_tokens=96, eval_problems=6, eval_every=0,
            checkpoint_every=2, min_difficulty=2, max_difficulty=3, threads=1, test_time_problems=0)


def cfg(tmp_path: Path, **kw) -> RLConfig:
    return RLConfig(out_dir=str(tmp_path), **{**FAST, **kw})


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# Rewards the tests plug in by dotted path, as a user would.
def shorter_reasoning(prompts, completions, **meta):
    return [-c.reasoning_tokens / 50 for c in completions]


def fails_on_odd(prompts, completions, **meta):
    if len(completions) > 1 or completions[0].reasoning_tokens % 2:
        raise RuntimeError("a buggy reward")
    return [1.0]


def constant(prompts, completions, **meta):
    return [0.0] * len(completions)


def not_a_number(prompts, completions, **meta):
    return [math.nan if i % 2 else 0.0 for i, _ in enumerate(completions)]


def test_a_run_logs_every_metric_and_writes_a_final_model_and_figures(tmp_path):
    final = train_rl(cfg(tmp_path, name="run", steps=2, test_time_problems=3), progress=False)
    rows = metrics(tmp_path / "run")
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert {"heldout_pass1", "heldout_pass1_d5", "heldout_reasoning_tokens"} <= set(rows[0])
    # eval_samples (4 by default): pass@1 of samples at the rollout temperature, beside greedy's.
    assert all(0 <= rows[0][k] <= 1 for k in ("heldout_pass1_sampled", "heldout_pass1_d5_sampled"))
    assert {"reward", "reward_correctness", "reward_format", "reasoning_tokens", "kept", "revise_share", "flops",
            "tokens_per_s", "step_time_s", "lr"} <= set(rows[1])
    assert "heldout_pass1" in rows[-1]  # the end is always evaluated
    assert rows[2]["flops"] > rows[1]["flops"] > 0
    assert (final / "model.safetensors").is_file()
    root = tmp_path / "run"
    for figure in ("rl_compute.png", "test_time.png", "reasoning_length.png", "revisions.png"):
        assert (root / figure).read_bytes()[:4] == b"\x89PNG", figure
    curves = json.loads((root / "test_time.json").read_text())
    assert [p["setting"] for p in curves["majority"]] == ["k=1", "k=2", "k=4", "k=8", "k=16"]
    assert curves["budget"][-1]["setting"] == "high"
    # The x of the test-time figure is thinking: a budget of b tokens thinks at most b per problem.
    for point in curves["budget"][:-1]:
        assert point["reasoning_tokens"] <= int(point["setting"][2:]), point
    k1, k16 = curves["majority"][0], curves["majority"][-1]
    assert k16["reasoning_tokens"] > 8 * k1["reasoning_tokens"] > 0
    assert list((root / "tensorboard").glob("events.out.tfevents.*")), "TensorBoard event file"


def test_the_policy_learns_what_the_reward_asks(tmp_path):
    # Held out on the families it trains on: countdown's long searches are a different habit, which
    # the shorter-reasoning reward on arithmetic and word problems does not reach in 8 steps.
    # 12 steps at lr 5e-4 shrank the held-out reasoning to 9-27% of its start over seeds 0-3 (8 steps
    # at lr 2e-3 had passed or failed with the sampled draws: 166.9 and 487.3 tokens after 71.6).
    run = cfg(tmp_path, name="short", steps=12, lr=5e-4, temperature=1.5, rewards=("tests.rl.test_grpo:shorter_reasoning",),
              reward_weights=(1.0,), dynamic_sampling=False, overlong="none", checkpoint_every=12, eval_problems=12,
              eval_families=("arithmetic", "word_problems"))
    train_rl(run, progress=False)
    rows = metrics(tmp_path / "short")
    # The same held-out problems, greedy, before and after: the reasoning got shorter.
    before, after = rows[0]["heldout_reasoning_tokens"], rows[-1]["heldout_reasoning_tokens"]
    assert after < 0.8 * before, (before, after)


def test_the_entropy_bonus_alone_makes_the_policy_less_certain(tmp_path):
    # A constant reward leaves every advantage 0, so the bonus is the whole loss.
    run = cfg(tmp_path, name="entropy", steps=4, lr=2e-3, rewards=("tests.rl.test_grpo:constant",),
              reward_weights=(1.0,), dynamic_sampling=False, overlong="none", entropy_coef=1.0, checkpoint_every=4)
    train_rl(run, progress=False)
    entropy = [r["entropy"] for r in metrics(tmp_path / "entropy")[1:]]
    assert entropy[-1] > 2 * entropy[0] > 0, entropy


def test_resume_after_a_stop_gives_the_same_metrics(tmp_path):
    train_rl(cfg(tmp_path / "a", name="r", steps=4), progress=False)
    train_rl(cfg(tmp_path / "b", name="r", steps=2), progress=False)
    train_rl(cfg(tmp_path / "b", name="r", steps=4), resume=True, progress=False)
    keys = ("reward", "loss", "reasoning_tokens", "kept", "heldout_pass1")
    a, b = metrics(tmp_path / "a" / "r"), metrics(tmp_path / "b" / "r")
    assert [r["step"] for r in b] == [0, 1, 2, 3, 4]
    assert [{k: r.get(k) for k in keys} for r in a[3:]] == [{k: r.get(k) for k in keys} for r in b[3:]]


def test_a_raising_reward_zeroes_only_its_samples_and_is_counted(tmp_path):
    with pytest.warns(UserWarning, match="a buggy reward"):
        train_rl(cfg(tmp_path, name="bug", steps=1, rewards=("tests.rl.test_grpo:fails_on_odd",),
                     reward_weights=(1.0,)), progress=False)
    row = metrics(tmp_path / "bug")[1]
    assert 0 < row["reward_failures"]["tests.rl.test_grpo:fails_on_odd"] <= 16


def test_nan_losses_are_skipped_then_stop_the_run(tmp_path):
    with pytest.raises(UserError, match="not finite in 2 steps in a row"):
        train_rl(cfg(tmp_path, name="nan", steps=5, rewards=("tests.rl.test_grpo:not_a_number",),
                     reward_weights=(1.0,), dynamic_sampling=False, max_nan_steps=2), progress=False)
    rows = metrics(tmp_path / "nan")
    assert all(r["updates"] == 0 for r in rows[1:])


@pytest.mark.parametrize("argv, said", [
    (["--advantage", "ppo"], "advantage: 'ppo' is not one of 'grpo', 'dr_grpo', 'rloo'"),
    (["--group-size", "1"], "group_size must be at least 2"),
    (["--rewards", "nope", "--reward-weights", "1"], "unknown reward 'nope'"),
    (["--dim", "64"], "--dim do(es) not apply to --stage rl"),
])
def test_bad_rl_flags_exit_2_naming_the_field(tmp_path, capsys, argv, said):
    assert main(["train", "--stage", "rl", "--out-dir", str(tmp_path), "--no-progress", *argv]) == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("stage", ["sft", "rl"])
def test_a_missing_start_checkpoint_is_named_and_leaves_no_run_directory(tmp_path, capsys, stage):
    argv = ["train", "--stage", stage, "--out-dir", str(tmp_path), "--name", "r", "--no-progress", "--steps", "1"]
    assert main([*argv, "--init-from", str(tmp_path / "nowhere")]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # so the corrected command is not refused as "already holds a run"


def test_the_shipped_rl_recipe_spells_out_the_defaults():
    from ponder.config import build_config

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "rl.toml"
    assert build_config(RLConfig, recipe, {}) == RLConfig()


def test_sigkill_mid_run_then_resume_logs_what_an_unbroken_run_logs(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["train", "--stage", "rl", "--steps", "4", "--prompts-per-step", "4", "--group-size", "4",
            "--max-completion-tokens", "96", "--eval-problems", "4", "--eval-every", "0", "--checkpoint-every", "1",
            "--test-time-problems", "0", "--min-difficulty", "2", "--max-difficulty", "3", "--no-progress",
            "--no-tensorboard", "--out-dir", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def start(name, *extra):
        return subprocess.Popen([sys.executable, "-m", "ponder", *args, "--name", name, *extra], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    whole = start("whole")
    assert whole.wait(timeout=300) == 0, whole.stderr.read()
    victim = start("killed")
    deadline = time.time() + 300
    while not (tmp_path / "killed" / "checkpoints" / "step_000002").exists() and time.time() < deadline:
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    resumed = start("killed", "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    keys = ("step", "reward", "loss", "sampled_tokens", "kept", "heldout_pass1")
    a, b = metrics(tmp_path / "whole"), metrics(tmp_path / "killed")
    assert [{k: r.get(k) for k in keys} for r in a] == [{k: r.get(k) for k in keys} for r in b]
