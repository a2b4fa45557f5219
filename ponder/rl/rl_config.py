"""The RL stage's settings: one frozen dataclass, filled from a recipe and flags.

Defaults are the bundled recipe's RL stage (recipes/rl.toml): GRPO-style groups on arithmetic and
word problems at difficulty 4-5 (held-out evals on the whole mix), Dr.GRPO advantages and constant normalisation, clip-higher, no KL, dynamic sampling
and soft overlong punishment. Choices are `Literal`s, so a wrong name is named with the valid ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ponder.config import field
from ponder.devices import Device, Precision
from ponder.tasks import TASKS
from ponder.tasks.mix import DEFAULT_FAMILIES

Advantage = Literal["grpo", "dr_grpo", "rloo"]
Aggregation = Literal["sequence_mean", "token_mean", "constant_norm"]
Overlong = Literal["mask", "penalty", "none"]
Parallelism = Literal["ddp", "fsdp"]


@dataclass(frozen=True)
class RLConfig:
    # --- run ---
    name: str = field("rl", "run name; files go to OUT_DIR/NAME")
    out_dir: str = field("runs", "directory that holds runs")
    seed: int = field(0, "seed for the problem stream and sampling")
    init_from: str = field("default", "the policy to start from: 'default' (bundled) or a checkpoint directory")
    # --- data ---
    # RL on countdown from the bundled warm start shortens its reasoning and does not raise held-out
    # pass@1 (docs/results.md, "What RL does to the warm start"), so the default trains on the two families
    # where it does; the held-out evals still cover the whole mix.
    families: tuple[str, ...] = field(("arithmetic", "word_problems"), "task families trained on (comma-separated)")
    eval_families: tuple[str, ...] = field(DEFAULT_FAMILIES, "task families of the held-out evals and test-time "
                                           "figures (comma-separated)")
    min_difficulty: int = field(4, "easiest level sampled")
    max_difficulty: int = field(5, "hardest level sampled")
    prompts_per_step: int = field(32, "problems per step")
    group_size: int = field(8, "samples per problem (the group the advantage is relative to)")
    max_completion_tokens: int = field(384, "reasoning + answer tokens per sample")
    temperature: float = field(1.0, "rollout sampling temperature")
    rollout_batch: int = field(64, "most sequences decoded together in a rollout or eval (raise it on a GPU)")
    update_chunk: int = field(16, "rows per forward/backward pass of an update in one process (memory against "
                                  "speed; the gradient is the same); under torchrun a minibatch is one pass")
    # --- algorithm ---
    advantage: Advantage = field("dr_grpo", "advantage estimator: grpo (std-scaled), dr_grpo (no std), rloo")
    aggregation: Aggregation = field("constant_norm",
                                     "loss aggregation: sequence_mean (GRPO), token_mean (DAPO), constant_norm (Dr.GRPO)")
    clip_low: float = field(0.2, "PPO clip below 1 (ratio >= 1 - clip_low)")
    clip_high: float = field(0.28, "PPO clip above 1 (clip-higher: > clip_low keeps exploration)")
    kl_coef: float = field(0.0, "k3 KL penalty to the frozen starting policy (0 = none, no reference kept)")
    entropy_coef: float = field(0.0, "entropy bonus: minus this x the policy's full-vocabulary entropy per token "
                                "(0 = none), to keep a near-deterministic warm start exploring")
    dynamic_sampling: bool = field(True, "drop groups whose rewards are all equal")
    overlong: Overlong = field("penalty", "truncated samples: mask (no loss), penalty (soft length penalty), none")
    overlong_cache: int = field(64, "penalty: tokens before the limit where the penalty ramps from 0 to -1")
    rewards: tuple[str, ...] = field(("correctness", "format"), "reward functions: names or module:function")
    reward_weights: tuple[float, ...] = field((1.0, 0.1), "one weight per reward")
    # --- optimisation ---
    steps: int = field(60, "RL steps (one rollout batch each)")
    lr: float = field(2e-5, "learning rate (AdamW, constant after warm-up)")
    warmup_steps: int = field(3, "linear warm-up steps")
    updates_per_step: int = field(2, "optimizer updates per rollout batch (minibatches; > 1 makes ratios != 1)")
    grad_clip: float = field(1.0, "clip the gradient norm to this (0 = off)")
    max_nan_steps: int = field(3, "stop after this many non-finite losses in a row")
    # --- bookkeeping ---
    eval_every: int = field(15, "held-out pass@1 every N steps (0 = only at the start and end)")
    eval_problems: int = field(200, "held-out problems (a fixed set) per evaluation")
    eval_difficulty: int = field(5, "the level whose held-out pass@1 is tracked separately (the hardest)")
    eval_samples: int = field(4, "also score this many samples per held-out problem at the rollout temperature "
                              "(sampled pass@1, what RL trains; 0 = greedy only)")
    test_time_problems: int = field(100, "held-out problems for the end-of-run test-time compute figure (0 = skip it)")
    tensorboard: bool = field(True, "also write TensorBoard event files to the run directory (if tensorboard is installed)")
    checkpoint_every: int = field(5, "save a resumable checkpoint every N steps")
    keep_checkpoints: int = field(2, "how many recent checkpoints to keep")
    threads: int = field(1, "torch CPU threads (0 = torch's default; 1 is fastest for the bundled model)")
    device: Device = field("auto", "where to train: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda")
    precision: Precision = field("fp32", "fp32, or bf16: mixed precision (bf16 matmuls under autocast; weights and "
                                 "optimizer state stay fp32)")
    parallel: Parallelism = field("ddp", "under torchrun: ddp (a whole copy of the policy per rank) or fsdp "
                                  "(weights, gradients and optimizer state sharded over the ranks: large models)")

    def __post_init__(self) -> None:
        for name in ("families", "eval_families"):
            unknown = [f for f in getattr(self, name) if f not in TASKS]
            if unknown or not getattr(self, name):
                raise ValueError(f"{name} {unknown or '()'} invalid; valid: {', '.join(sorted(TASKS))}")
        for name in ("prompts_per_step", "rollout_batch", "update_chunk", "steps", "max_completion_tokens", "updates_per_step", "checkpoint_every",
                     "keep_checkpoints", "eval_problems", "max_nan_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.group_size < 2:
            raise ValueError(f"group_size must be at least 2 (advantages are relative to the group), "
                             f"got {self.group_size}")
        if not 1 <= self.min_difficulty <= self.max_difficulty <= 5:
            raise ValueError(f"difficulties must satisfy 1 <= min_difficulty <= max_difficulty <= 5, got "
                             f"{self.min_difficulty}..{self.max_difficulty}")
        if not 1 <= self.eval_difficulty <= 5:
            raise ValueError(f"eval_difficulty must be in 1..5, got {self.eval_difficulty}")
        if not self.temperature > 0 or self.lr <= 0:
            raise ValueError("temperature and lr must be > 0")
        if not 0 <= self.clip_low < 1 or self.clip_high < 0:
            raise ValueError(f"clip_low must be in [0, 1) and clip_high >= 0, got {self.clip_low}, {self.clip_high}")
        if self.test_time_problems < 0:
            raise ValueError(f"test_time_problems must be >= 0, got {self.test_time_problems}")
        if min(self.kl_coef, self.entropy_coef, self.overlong_cache, self.eval_every, self.warmup_steps,
               self.eval_samples) < 0:
            raise ValueError("kl_coef, entropy_coef, overlong_cache, eval_every, warmup_steps and eval_samples "
                             "must be >= 0")
        if len(self.rewards) != len(self.reward_weights) or not self.rewards:
            raise ValueError(f"rewards and reward_weights must be non-empty and the same length, got "
                             f"{len(self.rewards)} and {len(self.reward_weights)}")
        from ponder.rl.rewards import resolve_reward

        for name in self.rewards:  # an unknown or unimportable reward fails now, not after the first eval
            resolve_reward(name)
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
