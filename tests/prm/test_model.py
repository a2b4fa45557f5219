"""The PRM: scoring shapes and batching on a tiny model, save/load, and training on a tiny set."""

from __future__ import annotations

import argparse
import json
import math
from itertools import product

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ponder.config import add_config_flags, build_config
from ponder.errors import UserError
from ponder.model.chat import Message
from ponder.model.checkpoint import save_checkpoint
from ponder.prm.labels import LabelledTrace, save_labels
from ponder.prm.model import as_prm, candidate_ids, load_prm, make_spec, save_prm, score_steps, score_steps_batch
from ponder.prm.train import (
    PRMConfig,
    add_prm_arguments,
    auroc,
    run_prm_stage,
    soft_cross_entropy,
    split_by_problem,
    train_prm,
)
from ponder.rl.sft_config import SFTConfig

Q = [Message("user", "What is 12 * 34?")]
REASONING = "12*4: 2*4=8, 1*4=4 => 48\n12*30: 2*3=6, 1*3=3 => 360\n48+360: 8+0=8, 4+6=10 c1, 0+3+1=4 => 408"


@pytest.fixture(scope="module")
def prm(tiny_model, tok):
    return as_prm(tiny_model, tok, make_spec(tok))


def test_one_score_per_line_plus_the_answer_each_a_probability(prm):
    unfinished = score_steps(prm, Q, REASONING + "\n")
    answered = score_steps(prm, Q, REASONING, "408")
    assert len(unfinished) == 3 and len(answered) == 3  # the last line runs on into the answer
    assert len(score_steps(prm, Q, REASONING + "\n", "408")) == 4  # ... unless it ended with a newline
    assert all(0 < p < 1 for p in unfinished + answered)
    # A step's score reads only what came before it: the answer cannot change earlier steps.
    assert score_steps(prm, Q, REASONING, "409")[:2] == pytest.approx(answered[:2], abs=1e-6)


def test_batched_scores_equal_one_by_one(prm):
    lines = REASONING.split("\n")
    candidates = [(Q, "\n".join(lines[:n]) + "\n", None) for n in (1, 2)] + [
        (Q, REASONING, "408"), ([Message("user", "What is 2 + 3?")], "2+3=5", "5"), (Q, REASONING, "7")]
    batched = score_steps_batch(prm, candidates)
    for (messages, reasoning, answer), together in zip(candidates, batched):
        assert score_steps(prm, messages, reasoning, answer) == pytest.approx(together, abs=1e-5)


def test_scores_past_the_context_are_dropped_not_an_error(prm):
    ids, ends = candidate_ids(prm, Q, "1+1=2\n" * 200)
    assert max(ends) >= prm.context_length
    scores = score_steps(prm, Q, "1+1=2\n" * 200)
    assert 0 < len(scores) == sum(e < prm.context_length for e in ends)


def test_save_and_load_round_trip(prm, tmp_path):
    save_prm(prm, tmp_path / "prm")
    loaded = load_prm(tmp_path / "prm")
    assert loaded.spec == prm.spec and loaded.step_ids == prm.step_ids
    assert score_steps(loaded, Q, REASONING, "408") == pytest.approx(score_steps(prm, Q, REASONING, "408"), abs=1e-6)
    assert json.loads((tmp_path / "prm" / "prm.json").read_text())["separator"] == "\n"


def test_a_plain_checkpoint_or_a_broken_spec_is_refused(prm, tmp_path):
    save_checkpoint(prm.model, prm.tok, tmp_path / "plain")
    with pytest.raises(UserError, match="not a PRM directory"):
        load_prm(tmp_path / "plain")
    (tmp_path / "plain" / "prm.json").write_text('{"plus": "+"}')
    with pytest.raises(UserError, match="not a valid PRM spec"):
        load_prm(tmp_path / "plain")


# --- training: pure pieces -------------------------------------------------------------------------


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), min_size=1, max_size=30))
def test_auroc_equals_the_share_of_correctly_ordered_pairs(pairs):
    scores, positive = [float(s) for s, _ in pairs], [p for _, p in pairs]
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    if not pos or not neg:
        assert auroc(scores, positive) is None
        return
    expected = sum((a > b) + 0.5 * (a == b) for a, b in product(pos, neg)) / (len(pos) * len(neg))
    assert auroc(scores, positive) == pytest.approx(expected)


def test_soft_cross_entropy_is_smallest_at_the_label():
    targets = torch.tensor([0.75])
    losses = {p: soft_cross_entropy(torch.tensor([[math.log(p), math.log(1 - p)]]), targets).item()
              for p in (0.5, 0.75, 0.9)}
    assert min(losses, key=losses.get) == 0.75
    assert losses[0.75] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_held_out_problems_share_no_trace_with_training():
    traces = [LabelledTrace((1,), 0, (0,), (1.0,), (1.0,), "arithmetic", 1, seed) for seed in (5, 5, 6, 7, 8, 9)]
    train, held = split_by_problem(traces, 0.3)
    assert {t.seed for t in held} == {8, 9} and {t.seed for t in train} == {5, 6, 7}


def test_config_errors_name_the_field():
    with pytest.raises(UserError, match="arithmetic:9"):
        build_config(PRMConfig, overrides={"levels": "countdown:1,arithmetic:9"})
    with pytest.raises(UserError, match="heldout_share"):
        build_config(PRMConfig, overrides={"heldout_share": "1.5"})
    assert build_config(PRMConfig, overrides={"levels": "countdown:1, arithmetic:5"}).levels == (
        "countdown:1", "arithmetic:5")


# --- training: a few steps on a tiny set -------------------------------------------------------------


def tiny_labels(prm, n: int = 12) -> list[LabelledTrace]:
    """Right answers are good steps, wrong ones bad: learnable from the answer token alone."""
    out = []
    for i in range(n):
        a, b = 10 + i, 3 + i % 5
        answer = str(a + b) if i % 2 == 0 else str(a + b + 1)
        ids, ends = candidate_ids(prm, [Message("user", f"What is {a} + {b}?")], f"{a}+{b}\n", answer)
        good = float(i % 2 == 0)
        out.append(LabelledTrace(tuple(ids), 0, tuple(ends), (1.0, good), (1.0, good), "arithmetic", 1, i))
    return out


@pytest.fixture()
def tiny_run(prm, tmp_path):
    save_checkpoint(prm.model, prm.tok, tmp_path / "policy")
    (tmp_path / "old").mkdir()
    save_labels(tiny_labels(prm), tmp_path / "old" / "labels.jsonl")
    return tmp_path


def test_a_few_steps_lower_the_loss_and_save_a_loadable_prm(tiny_run):
    cfg = PRMConfig(out_dir=str(tiny_run / "runs"), policy=str(tiny_run / "policy"), labels_from=str(tiny_run / "old"),
                    steps=30, batch_size=8, lr=3e-3, warmup_steps=2, eval_every=10, heldout_share=0.2)
    final = train_prm(cfg, progress=False)
    records = [json.loads(line) for line in (final.parent / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records[1:]]
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert {"heldout_loss", "heldout_acc", "heldout_auroc"} <= set(records[0]) and "heldout_acc" in records[-1]
    load_prm(final)
    with pytest.raises(UserError, match="already holds a PRM run"):
        train_prm(cfg, progress=False)


def cli_parser() -> argparse.ArgumentParser:
    """The shape of `ponder train`: SFT flags first, then the PRM stage's."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--stage", choices=["sft", "prm"], default="sft")
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    add_config_flags(parser, SFTConfig)
    add_prm_arguments(parser)
    return parser


def test_the_cli_stage_trains_from_flags_and_a_recipe(tiny_run, capsys):
    recipe = tiny_run / "prm.toml"
    recipe.write_text("[optimisation]\nsteps = 4\nbatch_size = 4\n")
    args = cli_parser().parse_args([
        "--stage", "prm", "--recipe", str(recipe), "--out-dir", str(tiny_run / "runs"), "--name", "cli",
        "--policy", str(tiny_run / "policy"), "--labels-from", str(tiny_run / "old"), "--steps", "3", "--no-progress"])
    assert run_prm_stage(args) == 0
    assert "trained PRM" in capsys.readouterr().out
    assert len((tiny_run / "runs" / "cli" / "metrics.jsonl").read_text().splitlines()) == 4  # 3 steps + labels


def test_sft_only_flags_are_refused_for_the_prm_stage():
    with pytest.raises(UserError, match="--dim"):
        run_prm_stage(cli_parser().parse_args(["--stage", "prm", "--dim", "64"]))
    with pytest.raises(UserError, match="--resume"):
        run_prm_stage(cli_parser().parse_args(["--stage", "prm", "--resume"]))
