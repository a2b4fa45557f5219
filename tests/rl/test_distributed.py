"""Scale-out: the RL stage under torchrun with 2 CPU processes (gloo) takes the steps 1 process
takes: same logged metrics, final weights equal within float tolerance; with DDP, and with FSDP
(sharded weights and optimizer state), through a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

ARGS = ["train", "--stage", "rl", "--steps", "2", "--prompts-per-step", "4", "--group-size", "4",
        "--max-completion-tokens", "96", "--eval-problems", "4", "--test-time-problems", "0",
        "--updates-per-step", "2", "--min-difficulty", "2", "--max-difficulty", "3", "--no-progress",
        "--no-tensorboard",
        # Hot sampling keeps most groups' rewards unequal at these levels, so every step has an
        # update, whichever of the warm starts tried is bundled (at temperature 1, a model that
        # solves these levels can leave a step with no update and no loss to compare).
        "--families", "arithmetic,countdown,word_problems", "--temperature", "1.6"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def run(cmd: list[str]) -> str:
    # Its own session, so a hung job is killed whole: torchrun's workers would outlive torchrun.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, err[-3000:]
    return out


def torchrun(*args: str) -> str:
    return run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                "-m", "ponder", *args])


def metrics(path) -> list[dict]:
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def max_weight_gap(a, b) -> float:
    one, two = load_file(a / "final" / "model.safetensors"), load_file(b / "final" / "model.safetensors")
    assert set(one) == set(two)
    return max(float((one[k] - two[k]).abs().max()) for k in one)


def test_two_processes_match_one(tmp_path):
    run([sys.executable, "-m", "ponder", *ARGS, "--out-dir", str(tmp_path), "--name", "one"])
    out = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "ponder", *ARGS, "--out-dir", str(tmp_path), "--name", "two"])
    assert out.count("RL-trained model:") == 1  # rank 0 speaks for the job
    keys = ("reward", "reward_correctness", "sampled_tokens", "trained_tokens", "kept", "heldout_pass1")
    rows = {name: [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
            for name in ("one", "two")}
    assert [{k: r.get(k) for k in keys} for r in rows["one"]] == [{k: r.get(k) for k in keys} for r in rows["two"]]
    assert rows["two"][-1]["world_size"] == 2
    for a, b in zip(rows["one"][1:], rows["two"][1:]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
    one = load_file(tmp_path / "one" / "final" / "model.safetensors")
    two = load_file(tmp_path / "two" / "final" / "model.safetensors")
    assert max(float((one[k] - two[k]).abs().max()) for k in one) < 1e-5


def test_fsdp_shards_the_policy_and_matches_one_process_through_a_resume(tmp_path):
    args = [*ARGS, "--checkpoint-every", "1", "--out-dir", str(tmp_path)]
    args[args.index("--steps") + 1] = "3"
    run([sys.executable, "-m", "ponder", *args, "--name", "one"])
    two = [*args, "--name", "two"]
    two[two.index("--steps") + 1] = "2"
    run([sys.executable, "-m", "ponder", *two])  # one unsharded process writes the checkpoint ...
    two[two.index("--steps") + 1] = "3"
    # ... and two FSDP ranks resume it: any world size and either wrapper resumes any other.
    torchrun(*two, "--parallel", "fsdp", "--resume")
    # Optimizer state is saved gathered and keyed by parameter name, by one process as by N.
    state = torch.load(tmp_path / "two" / "checkpoints" / "step_000003" / "trainer_state.pt", weights_only=False)
    assert "blocks.0.qkv.weight" in state["optimizer"]["state"]
    one, two_rows = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert [r["step"] for r in two_rows] == [0, 1, 2, 3]
    for a, b in zip(one, two_rows):
        for key in ("reward", "loss", "sampled_tokens", "kept", "heldout_pass1"):
            if key in a:  # the stopped run also evaluated at its end, step 2
                assert a[key] == pytest.approx(b[key], rel=1e-3, abs=1e-4), key
    assert max_weight_gap(tmp_path / "one", tmp_path / "two") < 1e-5
