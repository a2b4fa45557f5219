"""`ponder train --stage prm` settings: the frozen config and its flags, importable without torch
so that `ponder --help` stays fast (the trainer itself is prm/train.py)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ponder.config import add_stage_flags, field
from ponder.errors import UserError
from ponder.tasks import TASKS


def parse_level(text: str) -> tuple[str, int]:
    """"arithmetic:5" -> ("arithmetic", 5), or a UserError naming what would be valid."""
    family, _, level = text.partition(":")
    valid = f"valid: FAMILY:LEVEL with FAMILY one of {', '.join(sorted(TASKS))}"
    if family not in TASKS or not level.isdigit() or not 1 <= int(level) <= TASKS[family].max_difficulty:
        raise UserError(f"level {text!r} is not a family:difficulty pair; {valid} and LEVEL in 1..max difficulty")
    return family, int(level)


# Where the bundled policy's steps are sometimes right and sometimes wrong, so labels differ:
# the hardest arithmetic and word problems (below level 5 it is almost never wrong), and
# Countdown's easy levels (above level 2 it is almost never right: every label would be 0).
DEFAULT_LEVELS = ("arithmetic:5", "word_problems:5", "countdown:1", "countdown:2")


@dataclass(frozen=True)
class PRMConfig:
    # --- run ---
    name: str = field("prm", "run name; files go to OUT_DIR/NAME, the PRM to OUT_DIR/NAME/final")
    out_dir: str = field("runs", "directory that holds runs")
    seed: int = field(0, "seed for the problems, the samples and the training order")
    policy: str = field("default", "policy checkpoint that writes the traces and initialises the PRM "
                                   "('default' = the bundled model, or a checkpoint directory)")
    labels_from: str | None = field(None, "reuse the step labels of an earlier PRM run directory instead of labelling")
    threads: int = field(1, "torch CPU threads (0 = all cores; 1 is fastest for the bundled model)")
    # --- labels (Math-Shepherd) ---
    problems: int = field(200, "training problems to label (training seeds only)")
    levels: tuple[str, ...] = field(DEFAULT_LEVELS, "family:difficulty pairs the problems come from, in turn "
                                                    "(comma-separated)")
    traces_per_problem: int = field(4, "policy traces sampled per problem (T)")
    completions_per_step: int = field(4, "completions from each step that label it (K)")
    trace_temperature: float = field(1.0, "sampling temperature of the traces (hotter: more mistakes to learn from)")
    temperature: float = field(0.8, "sampling temperature of the completions that label a step")
    references: bool = field(False, "also label each problem's reference solution, so the PRM sees right steps the "
                                   "policy seldom writes (a Countdown 'yes' at a hard level)")
    rollouts_on_correct: bool = field(True, "label the steps of traces that verified by completions too "
                                             "(off: they count as good, and the completions go to wrong traces)")
    max_completion_tokens: int = field(448, "reasoning plus answer tokens per trace")
    heldout_share: float = field(0.15, "share of problems kept out of training for the step-label metrics")
    # --- optimisation ---
    steps: int = field(80, "optimizer steps (held-out metrics peak early: a few hundred traces are soon memorised)")
    batch_size: int = field(16, "traces per step (every step end of a trace is a target)")
    lr: float = field(2e-4, "peak learning rate (AdamW)")
    min_lr_ratio: float = field(0.1, "final learning rate as a share of lr (cosine decay)")
    warmup_steps: int = field(10, "linear warm-up steps")
    weight_decay: float = field(0.0, "AdamW weight decay on matrices")
    grad_clip: float = field(1.0, "clip the gradient norm to this (0 = off)")
    eval_every: int = field(20, "held-out step-label metrics every N steps (0 = only before and after)")

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("levels must name at least one family:difficulty pair")
        for text in self.levels:
            parse_level(text)
        for name in ("problems", "traces_per_problem", "completions_per_step", "steps", "batch_size",
                     "max_completion_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.traces_per_problem > 1000 or self.completions_per_step > 1000:
            raise ValueError("traces_per_problem and completions_per_step must be at most 1000")
        if not 0 < self.heldout_share < 1:
            raise ValueError(f"heldout_share must be in (0, 1), got {self.heldout_share}")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1 or min(self.temperature, self.trace_temperature) <= 0:
            raise ValueError("lr, temperature and trace_temperature must be > 0 and min_lr_ratio in [0, 1]")
        if self.eval_every < 0 or self.warmup_steps < 0 or self.threads < 0 or self.weight_decay < 0:
            raise ValueError("eval_every, warmup_steps, threads and weight_decay must be >= 0")



def add_prm_arguments(parser: argparse.ArgumentParser) -> None:
    add_stage_flags(parser, PRMConfig, "--stage prm")
