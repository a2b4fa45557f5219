"""`ponder train` with no --stage: SFT, then RL from the SFT stage's model, as one resumable run;
flags go to the stage they belong to, and one that both stages have is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.cli import main

SFT = """dim = 32
n_layers = 1
n_heads = 2
n_kv_heads = 1
hidden_dim = 64
max_seq_len = 384
vocab_size = 320
batch_size = 4
eval_every = 0
eval_problems = 4
warmup_steps = 2
lr = 3e-3
steps = 3
checkpoint_every = 2
"""
RL = """prompts_per_step = 2
group_size = 2
max_completion_tokens = 48
eval_problems = 4
eval_every = 0
checkpoint_every = 1
test_time_problems = 0
tensorboard = false
steps = {steps}
"""


def recipes(tmp_path: Path, rl_steps: int = 2) -> list[str]:
    (tmp_path / "sft.toml").write_text(SFT)
    (tmp_path / "rl.toml").write_text(RL.format(steps=rl_steps))
    return ["--recipe", str(tmp_path / "sft.toml"), "--rl-recipe", str(tmp_path / "rl.toml")]


def train(tmp_path: Path, *argv: str) -> int:
    return main(["train", "--out-dir", str(tmp_path / "runs"), "--name", "p", "--no-progress", "--threads", "1",
                 *argv])


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_sft_then_rl_from_the_sft_model(tmp_path, capsys):
    assert train(tmp_path, *recipes(tmp_path), "--seed", "3") == 0
    root = tmp_path / "runs" / "p"
    said = capsys.readouterr().out
    assert f"RL-trained model: {root / 'rl' / 'final'}" in said
    sft, rl = (json.loads((root / stage / "config.json").read_text()) for stage in ("sft", "rl"))
    assert rl["init_from"] == str(root / "sft" / "final")
    assert sft["steps"] == 3 and rl["steps"] == 2  # each stage read its own recipe
    assert sft["seed"] == rl["seed"] == 3 and sft["threads"] == rl["threads"] == 1  # shared flags reach both
    assert [r["step"] for r in rows(root / "rl" / "metrics.jsonl")] == [0, 1, 2]
    assert (root / "rl" / "final" / "model.safetensors").is_file()


def test_resume_goes_on_with_rl_and_never_retrains_a_finished_sft_stage(tmp_path, capsys):
    assert train(tmp_path, *recipes(tmp_path, rl_steps=2)) == 0
    sft_metrics = tmp_path / "runs" / "p" / "sft" / "metrics.jsonl"
    before = sft_metrics.read_text()
    longer_sft = tmp_path / "longer.toml"
    longer_sft.write_text(SFT.replace("steps = 3", "steps = 5"))
    argv = recipes(tmp_path, rl_steps=3)
    argv[argv.index("--recipe") + 1] = str(longer_sft)
    capsys.readouterr()
    assert train(tmp_path, *argv, "--resume") == 2  # SFT would not run again: its new setting would go unused
    assert "these SFT settings differ from the ones it was trained with and would not be used: steps" \
        in capsys.readouterr().err
    assert train(tmp_path, *recipes(tmp_path, rl_steps=3), "--resume") == 0
    assert sft_metrics.read_text() == before
    assert [r["step"] for r in rows(tmp_path / "runs" / "p" / "rl" / "metrics.jsonl")] == [0, 1, 2, 3]


@pytest.mark.parametrize("argv, said", [
    (["--steps", "5"], "--steps belong(s) to both stages"),
    (["--lr", "1e-3", "--init-from", "default"], "--init-from, --lr belong(s) to both stages"),
    (["--problems", "10"], "--problems do(es) not apply to `ponder train` (SFT, then RL)"),
    (["--advantage", "ppo"], "advantage: 'ppo' is not one of"),
])
def test_bad_flags_exit_2_before_anything_trains(tmp_path, capsys, argv, said):
    assert train(tmp_path, *argv) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("saved, stage", [({"group_size": 8}, "rl"), ({"batch_size": 64}, "sft")])
def test_a_one_stage_run_is_not_resumed_as_two(tmp_path, capsys, saved, stage):
    root = tmp_path / "runs" / "p"
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(saved))
    assert train(tmp_path, *recipes(tmp_path), "--resume") == 2  # not a fresh SFT beside its files
    assert f"holds a one-stage run (--stage {stage}); continue it with `ponder train --stage {stage}" \
        in capsys.readouterr().err
    assert sorted(p.name for p in root.iterdir()) == ["config.json"]


def test_the_sft_recipes_name_and_out_dir_place_the_run(tmp_path):
    from ponder.cli import build_parser
    from ponder.rl.pipeline import build_pipeline

    recipe = tmp_path / "placed.toml"
    recipe.write_text(f'name = "big"\nout_dir = "{tmp_path / "disk"}"\n')
    pipeline = build_pipeline(build_parser().parse_args(["train", "--recipe", str(recipe)]))
    assert pipeline.root == tmp_path / "disk" / "big"
    flagged = build_pipeline(build_parser().parse_args(["train", "--recipe", str(recipe), "--name", "mine"]))
    assert flagged.root == tmp_path / "disk" / "mine"  # a flag wins over the recipe


def test_a_run_directory_in_use_is_refused_without_resume(tmp_path, capsys):
    (tmp_path / "runs" / "p" / "sft").mkdir(parents=True)
    assert train(tmp_path, *recipes(tmp_path)) == 2
    assert "pass --resume" in capsys.readouterr().err


def test_rl_recipe_is_refused_where_no_rl_stage_runs(tmp_path, capsys):
    assert train(tmp_path, "--stage", "sft", "--rl-recipe", "x.toml") == 2
    assert "--rl-recipe does not apply to --stage sft" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["--group-size", "4", "--kl-coef", "0.1"], "--group-size, --kl-coef do(es) not apply to --stage sft"),
    (["--problems", "10"], "--problems do(es) not apply to --stage sft"),
])
def test_flags_of_other_stages_are_refused_by_the_sft_stage(tmp_path, capsys, argv, said):
    assert train(tmp_path, "--stage", "sft", *argv) == 2  # not silently ignored
    assert said in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
