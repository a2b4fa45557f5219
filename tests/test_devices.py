"""Device and precision choices: auto falls back to the CPU, a missing GPU is one clear error,
bf16 autocast really runs the matmuls in bf16, and both training stages train under it (on the
CPU here; the same code on a GPU when there is one)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from ponder.cli import main
from ponder.devices import autocast, cpu_flags, emulated_bf16_warning, resolve_device
from ponder.errors import UserError

GPU = torch.cuda.is_available()


def test_auto_picks_the_gpu_when_there_is_one_else_the_cpu():
    assert resolve_device("auto").type == ("cuda" if GPU else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(GPU, reason="there is a GPU here")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(UserError, match="torch sees no CUDA GPU"):
        resolve_device("cuda")
    assert main(["train", "--stage", "rl", "--device", "cuda", "--out-dir", str(tmp_path)]) == 2
    assert "device 'cuda' was asked for but torch sees no CUDA GPU" in capsys.readouterr().err


def test_bf16_autocast_runs_matmuls_in_bf16_and_fp32_leaves_them_alone():
    a = torch.randn(4, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (a @ a).dtype == torch.float32


AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx fma avx2\nbugs\t\t: spectre_v1\n"
ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: avx2 avx512f amx_bf16 amx_tile\n"


def test_cpu_flags_reads_the_flags_line_only():
    assert cpu_flags(AVX2_ONLY) == {"fpu", "sse2", "avx", "fma", "avx2"}
    assert cpu_flags("processor : 0\nFeatures : fp asimd bf16\n") == frozenset()  # arm64 names it otherwise


@pytest.mark.parametrize("cpuinfo, warns", [(AVX2_ONLY, True), (ZEN4, False), (SAPPHIRE_RAPIDS, False),
                                            ("processor : 0\n", False)])
def test_bf16_on_a_cpu_without_bf16_instructions_is_warned_about(tmp_path, cpuinfo, warns):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    warning = emulated_bf16_warning(torch.device("cpu"), "bf16", path)
    assert (warning is not None) == warns
    if warns:
        assert "--precision fp32" in warning and "avx512_bf16" in warning
    assert emulated_bf16_warning(torch.device("cpu"), "fp32", path) is None
    assert emulated_bf16_warning(torch.device("cpu"), "bf16", tmp_path / "missing") is None  # cannot tell: silent


TINY_SFT = ["--dim", "32", "--n-layers", "1", "--n-heads", "2", "--n-kv-heads", "1", "--hidden-dim", "64",
            "--max-seq-len", "384", "--vocab-size", "320", "--batch-size", "4", "--eval-every", "0",
            "--eval-problems", "4", "--warmup-steps", "2", "--lr", "3e-3", "--threads", "1"]


def rows(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not GPU, reason="no GPU"))])
def test_sft_then_rl_train_in_bf16_and_save_fp32_weights(tmp_path, device):
    flags = ["--out-dir", str(tmp_path), "--no-progress", "--precision", "bf16", "--device", device]
    assert main(["train", "--stage", "sft", *TINY_SFT, "--steps", "30", "--name", "sft", *flags]) == 0
    losses = [r["loss"] for r in rows(tmp_path / "sft" / "metrics.jsonl")]
    assert sum(losses[-5:]) < 0.8 * sum(losses[:5])
    assert main(["train", "--stage", "rl", "--steps", "2", "--prompts-per-step", "4", "--group-size", "4",
                 "--max-completion-tokens", "96", "--eval-problems", "4", "--eval-samples", "0",
                 "--test-time-problems", "0", "--min-difficulty", "2", "--max-difficulty", "3",
                 "--no-tensorboard", "--temperature", "1.5", "--no-dynamic-sampling", "--name", "rl",
                 *flags]) == 0
    trained = rows(tmp_path / "rl" / "metrics.jsonl")[1:]
    assert sum(r["updates"] for r in trained) >= 2 and all(r["nonfinite_updates"] == 0 for r in trained)
    for stage in ("sft", "rl"):
        weights = load_file(tmp_path / stage / "final" / "model.safetensors")
        assert {w.dtype for w in weights.values()} == {torch.float32}  # bf16 is for the matmuls only
