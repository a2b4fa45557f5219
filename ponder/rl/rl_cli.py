"""`ponder train --stage rl`: the RL stage's flags on the shared train parser, and its runner."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ponder.config import add_stage_flags, build_config, config_overrides, stray_flags
from ponder.errors import UserError


def add_rl_arguments(parser: argparse.ArgumentParser) -> None:
    from ponder.rl.rl_config import RLConfig

    add_stage_flags(parser, RLConfig, "--stage rl")


def run_rl_stage(args: argparse.Namespace) -> int:
    from ponder.prm.config import PRMConfig
    from ponder.rl.distributed import exit_worker
    from ponder.rl.grpo import train_rl
    from ponder.rl.rl_config import RLConfig
    from ponder.rl.sft_config import SFTConfig

    stray = stray_flags(args, RLConfig, (SFTConfig, PRMConfig))
    if stray:
        raise UserError(f"{', '.join(stray)} do(es) not apply to --stage rl")
    recipe, rl_recipe = getattr(args, "recipe", None), getattr(args, "rl_recipe", None)
    if recipe and rl_recipe:
        raise UserError("--stage rl takes one recipe: --recipe or --rl-recipe, not both")
    recipe = recipe or rl_recipe
    cfg = build_config(RLConfig, Path(recipe) if recipe else None, config_overrides(args, RLConfig))
    worker = int(os.environ.get("WORLD_SIZE", "1")) > 1
    try:
        final = train_rl(cfg, resume=getattr(args, "resume", False), progress=not getattr(args, "no_progress", False))
    except UserError as error:
        if not worker:
            raise
        print(f"ponder train: error: {error}", file=sys.stderr)
        exit_worker(2)  # a run stopped for a reason (a NaN streak, a bad resume) exits as cleanly as one that ended
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the job
        print(f"RL-trained model: {final}")
    if worker:
        exit_worker(0)
    return 0
