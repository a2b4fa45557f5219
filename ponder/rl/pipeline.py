"""`ponder train` with no `--stage`: the supervised warm start, then RL from it, as one run.

    OUT_DIR/NAME/sft/   the SFT stage's run (recipes/default.toml, or --recipe)
    OUT_DIR/NAME/rl/    the RL stage's run, started from sft/final (recipes/rl.toml, or --rl-recipe)

Each stage is exactly what `--stage sft` and `--stage rl` run; this module only chains them and
decides which flag goes to which stage. A flag that only one stage has goes to that stage; a few
(seed, families, threads, device, precision) go to both; one that both stages have with a different meaning
(--steps, --lr, ...) is refused, since guessing which stage it was meant for would silently
train the wrong thing. `--resume` finishes whichever stage was interrupted and goes on; a
finished SFT stage is never trained again.

Leaves out: running the SFT stage under torchrun (it is single-process); run the stages one at a
time for that.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from ponder.config import build_config, config_defaults, config_overrides, config_to_dict
from ponder.errors import UserError

# Fields both stages have that mean the same thing in each.
SHARED = ("seed", "families", "threads", "device", "precision")
# Fields the pipeline sets itself: where each stage's run lives, and where RL starts from.
PLACED = ("name", "out_dir")


@dataclass(frozen=True)
class Pipeline:
    sft: "SFTConfig"  # noqa: F821 (imported lazily: configs pull in torch)
    rl: "RLConfig"  # noqa: F821

    @property
    def root(self) -> Path:
        return Path(self.sft.out_dir)


def ambiguous_fields() -> list[str]:
    """Fields of both stages whose values differ in meaning between them (steps, lr, ...)."""
    from ponder.rl.rl_config import RLConfig
    from ponder.rl.sft_config import SFTConfig

    rl = {f.name for f in dataclasses.fields(RLConfig)}
    return sorted(f.name for f in dataclasses.fields(SFTConfig)
                  if f.name in rl and f.name not in SHARED + PLACED)


def build_pipeline(args: argparse.Namespace) -> Pipeline:
    """Both stages' configs from their recipes and the flags; RL starts from the SFT stage's model."""
    from ponder.prm.config import PRMConfig
    from ponder.rl.rl_config import RLConfig
    from ponder.rl.sft_config import SFTConfig

    set_twice = [f"--{name.replace('_', '-')}" for name in ambiguous_fields() if getattr(args, name, None) is not None]
    if set_twice:
        raise UserError(f"{', '.join(set_twice)} belong(s) to both stages of `ponder train` (SFT, then RL); "
                        "set it in the stage's recipe (--recipe for SFT, --rl-recipe for RL), "
                        "or run one stage with --stage sft or --stage rl")
    own = {f.name for cls in (SFTConfig, RLConfig) for f in dataclasses.fields(cls)}
    stray = sorted(f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(PRMConfig)
                   if f.name not in own and getattr(args, f.name, None) is not None)
    if stray:
        raise UserError(f"{', '.join(stray)} do(es) not apply to `ponder train` (SFT, then RL); "
                        "they are --stage prm flags")
    # Ambiguous fields are unset by now, so each stage can take every flag it has.
    recipe = _path(getattr(args, "recipe", None))
    as_written = build_config(SFTConfig, recipe, config_overrides(args, SFTConfig))
    # The run's place: the flags, else the SFT recipe's name and out_dir, else runs/train.
    name = getattr(args, "name", None) or (as_written.name if as_written.name != SFTConfig.name else "train")
    root = Path(as_written.out_dir) / name
    sft = build_config(SFTConfig, recipe, {**config_overrides(args, SFTConfig), "name": "sft", "out_dir": str(root)})
    rl = build_config(RLConfig, _path(getattr(args, "rl_recipe", None)),
                      {**config_overrides(args, RLConfig), "name": "rl", "out_dir": str(root)})
    return Pipeline(sft=sft, rl=replace(rl, init_from=str(root / "sft" / "final")))


def _path(text: str | None) -> Path | None:
    return Path(text) if text else None


def sft_finished(pipeline: Pipeline) -> bool:
    """The SFT stage wrote its final model (it writes it last, after its last checkpoint)."""
    return (pipeline.root / "sft" / "final" / "model.safetensors").is_file()


def run_pipeline(pipeline: Pipeline, resume: bool = False, progress: bool = True) -> Path:
    """Train the SFT stage (unless a resumed run finished it), then the RL stage; returns RL's final model."""
    from ponder.rl.grpo import train_rl
    from ponder.rl.sft import train_sft

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("`ponder train` with both stages runs in one process; under torchrun run them one at a "
                        "time: `ponder train --stage sft`, then `torchrun ... -m ponder train --stage rl "
                        "--init-from RUN/final`")
    _refuse_one_stage_run(pipeline.root)
    if not resume and pipeline.root.exists() and any(pipeline.root.iterdir()):
        raise UserError(f"run directory {pipeline.root} already holds a run; pass --resume to continue it "
                        "or --name to start a new one")
    if resume and sft_finished(pipeline):
        _refuse_changes_to_finished_sft(pipeline)
    else:
        train_sft(pipeline.sft, resume=resume, progress=progress)
    return train_rl(pipeline.rl, resume=resume, progress=progress)


def _refuse_one_stage_run(root: Path) -> None:
    """A directory that `--stage sft` or `--stage rl` wrote holds its files at the top, not in
    sft/ and rl/: resuming it as two stages would start a new SFT run from step 0 beside them."""
    config = root / "config.json"
    if config.is_file() or (root / "checkpoints").is_dir():
        stage = "rl" if config.is_file() and "group_size" in json.loads(config.read_text()) else "sft"
        raise UserError(f"{root} holds a one-stage run (--stage {stage}); continue it with `ponder train "
                        f"--stage {stage} --out-dir {root.parent} --name {root.name} --resume`, "
                        "or give the two-stage run another --name")


def _refuse_changes_to_finished_sft(pipeline: Pipeline) -> None:
    """A resume goes straight on to RL once SFT is finished, so an SFT setting changed since then
    (a longer --recipe, another --batch-size) would be silently unused: refuse it instead."""
    from ponder.rl.run_dir import RESUME_MAY_CHANGE, RunDir

    sft = RunDir(pipeline.root / "sft")
    changed = sft.changed_settings(config_to_dict(pipeline.sft), may_change=RESUME_MAY_CHANGE - {"steps"},
                                   defaults=config_defaults(type(pipeline.sft)))
    if changed:
        raise UserError(f"the SFT stage in {sft.root} is finished, so --resume only continues RL; these SFT settings "
                        f"differ from the ones it was trained with and would not be used: {', '.join(changed)}. "
                        "Put them back, or start a new run with --name")


def run_pipeline_stage(args: argparse.Namespace) -> int:
    """`ponder train` (no --stage): both stages, printing where each model went."""
    pipeline = build_pipeline(args)
    final = run_pipeline(pipeline, resume=getattr(args, "resume", False),
                         progress=not getattr(args, "no_progress", False))
    print(f"supervised warm start: {pipeline.root / 'sft' / 'final'}")
    print(f"RL-trained model: {final}")
    return 0
