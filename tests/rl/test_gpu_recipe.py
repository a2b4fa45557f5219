"""The GPU recipe (recipes/gpu_sft.toml, then recipes/gpu_rl.toml) is valid: a larger model in bf16
on CUDA, with RL sharded by FSDP; both stages chained by `ponder train`. Its training code paths
(bf16 autocast, FSDP, device placement) are exercised on the CPU in tests/test_devices.py and
tests/rl/test_distributed.py; the run itself needs a GPU."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ponder.config import build_config
from ponder.model.gpt import GPT
from ponder.rl.pipeline import build_pipeline
from ponder.rl.rl_config import RLConfig
from ponder.rl.sft_config import SFTConfig

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_the_gpu_recipes_describe_a_larger_bf16_model_trained_on_cuda():
    sft = build_config(SFTConfig, RECIPES / "gpu_sft.toml")
    rl = build_config(RLConfig, RECIPES / "gpu_rl.toml")
    with torch.device("meta"):
        params = sum(p.numel() for p in GPT(sft.model_config()).parameters())
    assert 70e6 < params < 80e6  # 30x the bundled model
    assert (sft.device, sft.precision, rl.device, rl.precision, rl.parallel) == ("cuda", "bf16", "cuda", "bf16", "fsdp")


def test_both_stages_chain_with_rl_starting_from_the_gpu_warm_start():
    args = argparse.Namespace(recipe=str(RECIPES / "gpu_sft.toml"), rl_recipe=str(RECIPES / "gpu_rl.toml"),
                              name="gpu", out_dir="runs", device="cpu")
    pipeline = build_pipeline(args)
    assert pipeline.rl.init_from == str(Path("runs") / "gpu" / "sft" / "final")
    assert pipeline.sft.device == pipeline.rl.device == "cpu"  # --device reaches both stages
    assert pipeline.sft.dim == 768 and pipeline.rl.prompts_per_step == 64
