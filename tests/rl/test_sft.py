"""Supervised training: it learns, it resumes after SIGKILL exactly where it was, it refuses to
overwrite a run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ponder.config import build_config
from ponder.errors import UserError
from ponder.rl.sft import learning_rate, train_sft
from ponder.rl.sft_config import SFTConfig

TINY = dict(
    dim=32, n_layers=1, n_heads=2, n_kv_heads=1, hidden_dim=64, max_seq_len=384, vocab_size=320,
    batch_size=4, eval_every=0, eval_problems=4, warmup_steps=2, lr=3e-3, threads=1,
)


def tiny_cfg(tmp_path: Path, **kw) -> SFTConfig:
    return SFTConfig(out_dir=str(tmp_path), **{**TINY, **kw})


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_loss_falls_and_a_final_checkpoint_is_written(tmp_path):
    final = train_sft(tiny_cfg(tmp_path, name="learn", steps=40, checkpoint_every=20), progress=False)
    curve = losses(tmp_path / "learn")
    assert len(curve) == 40
    assert sum(curve[-5:]) / 5 < 0.7 * sum(curve[:5]) / 5
    assert {p.name for p in final.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    last = json.loads((tmp_path / "learn" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"heldout_pass1_all", "mfu", "tokens_per_s", "step_time_s", "grad_norm", "lr"} <= set(last)


def test_an_existing_run_is_not_overwritten(tmp_path):
    cfg = tiny_cfg(tmp_path, name="once", steps=2, checkpoint_every=1)
    train_sft(cfg, progress=False)
    with pytest.raises(UserError, match="pass --resume"):
        train_sft(cfg, progress=False)


def test_resume_refuses_a_changed_config(tmp_path):
    train_sft(tiny_cfg(tmp_path, name="r", steps=2, checkpoint_every=1), progress=False)
    with pytest.raises(UserError, match="lr"):
        train_sft(tiny_cfg(tmp_path, name="r", steps=4, lr=1e-4), resume=True, progress=False)


def test_a_run_saved_before_a_field_existed_resumes_with_that_fields_default(tmp_path):
    train_sft(tiny_cfg(tmp_path, name="old", steps=2, checkpoint_every=1), progress=False)
    config = tmp_path / "old" / "config.json"
    saved = json.loads(config.read_text())
    del saved["precision"]  # as a run written before --precision existed
    config.write_text(json.dumps(saved))
    train_sft(tiny_cfg(tmp_path, name="old", steps=3), resume=True, progress=False)
    assert len(losses(tmp_path / "old")) == 3
    saved["lr"] = 1.0  # a field it did save still has to match
    config.write_text(json.dumps(saved))
    with pytest.raises(UserError, match="these flags differ from it: lr"):
        train_sft(tiny_cfg(tmp_path, name="old", steps=4), resume=True, progress=False)


def test_a_stage_is_refused_the_root_of_a_two_stage_run(tmp_path):
    (tmp_path / "both" / "sft").mkdir(parents=True)
    for resume in (False, True):
        with pytest.raises(UserError, match="holds a two-stage run .* --name both --resume` \\(no --stage\\)"):
            train_sft(tiny_cfg(tmp_path, name="both", steps=2), resume=resume, progress=False)
    assert not (tmp_path / "both" / "config.json").exists()


def test_learning_rate_schedule():
    cfg = SFTConfig(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    assert learning_rate(cfg, 0) == pytest.approx(0.1)
    assert learning_rate(cfg, 9) == pytest.approx(1.0)
    assert learning_rate(cfg, 99) == pytest.approx(0.1, abs=1e-3)
    assert all(learning_rate(cfg, s) >= learning_rate(cfg, s + 1) for s in range(10, 99))


def cli_train(tmp_path: Path, name: str, steps: int, *extra: str) -> subprocess.Popen:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    cmd = [sys.executable, "-m", "ponder", "train", "--stage", "sft", "--no-progress", f"--out-dir={tmp_path}",
           f"--name={name}", f"--steps={steps}", "--checkpoint-every=5", *flags, *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_then_resume_continues_exactly_where_it_was(tmp_path):
    steps = 60
    whole = cli_train(tmp_path, "whole", steps)
    assert whole.wait(timeout=300) == 0, whole.stderr.read()

    victim = cli_train(tmp_path, "killed", steps)
    checkpoints = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while not any(checkpoints.glob("step_000015")) and time.time() < deadline:
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert len(losses(tmp_path / "killed")) < steps  # it really died mid-run

    resumed = cli_train(tmp_path, "killed", steps, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    # Same data, same optimizer and RNG state: the resumed run logs exactly the same losses.
    assert losses(tmp_path / "killed") == losses(tmp_path / "whole")
    steps_logged = [json.loads(line)["step"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == list(range(1, steps + 1))


def test_recipe_and_flags_validate_into_the_config(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[model]\ndim = 96\n[optim]\nsteps = 7\nlr = 1e-3\n[data]\nfamilies = ["arithmetic"]\n')
    cfg = build_config(SFTConfig, recipe, {"steps": "9", "n_heads": None})
    assert (cfg.dim, cfg.steps, cfg.lr, cfg.families) == (96, 9, 1e-3, ("arithmetic",))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stepz": 3}, "unknown config field"),
        ({"steps": "many"}, "steps: expected int"),
        ({"families": "arithmetic,poetry"}, "families"),
        ({"dim": 65}, "divisible"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"n_heads": 0}, "n_heads must be a positive integer"),
        ({"vocab_size": 100}, "vocab_size must be at least 265"),
    ],
)
def test_bad_fields_are_named(overrides, message):
    with pytest.raises(UserError, match=message):
        build_config(SFTConfig, None, overrides)


def test_bad_recipe_file(tmp_path):
    (tmp_path / "bad.toml").write_text("steps = = 3")
    with pytest.raises(UserError, match="not valid TOML"):
        build_config(SFTConfig, tmp_path / "bad.toml")
    with pytest.raises(UserError, match="does not exist"):
        build_config(SFTConfig, tmp_path / "missing.toml")


def test_the_bundled_recipe_is_the_default_config():
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "default.toml"
    assert build_config(SFTConfig, recipe) == SFTConfig()


def test_resume_refuses_fewer_steps_than_the_checkpoint(tmp_path):
    train_sft(tiny_cfg(tmp_path, name="short", steps=3, checkpoint_every=3), progress=False)
    with pytest.raises(UserError, match="below the checkpoint's step 3"):
        train_sft(tiny_cfg(tmp_path, name="short", steps=2), resume=True, progress=False)
