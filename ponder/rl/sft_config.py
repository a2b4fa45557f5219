"""The supervised warm start's settings: one frozen dataclass, filled from a recipe and flags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ponder.config import field
from ponder.devices import Device, Precision
from ponder.model.config import ModelConfig
from ponder.model.tokenizer import SPECIAL_TOKENS
from ponder.tasks import TASKS
from ponder.tasks.mix import DEFAULT_FAMILIES


@dataclass(frozen=True)
class SFTConfig:
    """Defaults are the bundled model's recipe (recipes/default.toml)."""

    # --- run ---
    name: str = field("sft", "run name; files go to OUT_DIR/NAME")
    out_dir: str = field("runs", "directory that holds runs")
    seed: int = field(0, "seed for initialisation and the data stream")
    init_from: str | None = field(None, "start from this checkpoint directory ('default': the bundled model) instead of from scratch")
    # --- model (ignored with init_from) ---
    dim: int = field(192, "model width")
    n_layers: int = field(6, "transformer blocks")
    n_heads: int = field(3, "attention heads")
    n_kv_heads: int = field(1, "key/value heads (1 = multi-query: a small KV cache, fast batched decoding)")
    hidden_dim: int = field(512, "SwiGLU inner width")
    max_seq_len: int = field(512, "context length")
    vocab_size: int = field(768, "BPE vocabulary size, special tokens included")
    # --- data ---
    families: tuple[str, ...] = field(DEFAULT_FAMILIES, "task families in the mix (comma-separated)")
    batch_size: int = field(64, "examples per step")
    developer_prompt_rate: float = field(0.2, "share of examples that start with a developer message")
    cut_trace_rate: float = field(0.0, "share of examples whose trace is cut at a random token, then the answer "
                                  "(teaches what to write when a reasoning budget stops the thinking; replacing "
                                  "whole examples cost 2-3 points at high effort, docs/guides/train.md: Cut traces)")
    cut_trace_mode: Literal["replace", "add"] = field("replace", "replace: a cut example takes its whole one's place; "
                                                      "add: it comes on top, and batches grow by cut_trace_rate")
    # --- optimisation ---
    steps: int = field(3500, "optimizer steps")
    lr: float = field(2e-3, "peak learning rate (AdamW)")
    min_lr_ratio: float = field(0.1, "final learning rate as a share of lr (cosine decay)")
    warmup_steps: int = field(60, "linear warm-up steps")
    weight_decay: float = field(0.1, "AdamW weight decay on matrices")
    grad_clip: float = field(1.0, "clip the gradient norm to this (0 = off)")
    # --- bookkeeping ---
    eval_every: int = field(500, "held-out pass@1 every N steps (0 = only at the end)")
    eval_problems: int = field(96, "held-out problems per evaluation")
    checkpoint_every: int = field(50, "save a resumable checkpoint every N steps")
    keep_checkpoints: int = field(2, "how many recent checkpoints to keep")
    threads: int = field(0, "torch CPU threads (0 = all cores)")
    device: Device = field("auto", "where to train: auto (a CUDA GPU when torch sees one, else the CPU), cpu, cuda")
    precision: Precision = field("fp32", "fp32, or bf16: mixed precision (bf16 matmuls under autocast; weights and "
                                 "optimizer state stay fp32)")

    def __post_init__(self) -> None:
        unknown = [f for f in self.families if f not in TASKS]
        if unknown or not self.families:
            raise ValueError(f"families {unknown or '()'} invalid; valid: {', '.join(sorted(TASKS))}")
        for name in ("steps", "batch_size", "checkpoint_every", "keep_checkpoints", "eval_problems"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("developer_prompt_rate", "cut_trace_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError("lr must be > 0 and min_lr_ratio in [0, 1]")
        if self.eval_every < 0 or self.warmup_steps < 0 or self.threads < 0:
            raise ValueError("eval_every, warmup_steps and threads must be >= 0")
        if self.vocab_size < 256 + len(SPECIAL_TOKENS):  # byte-level BPE keeps all 256 bytes
            raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)}, got {self.vocab_size}")
        self.model_config()  # shape errors surface now, not after the tokenizer is trained

    def model_config(self) -> ModelConfig:
        return ModelConfig(
            vocab_size=self.vocab_size, dim=self.dim, n_layers=self.n_layers, n_heads=self.n_heads,
            n_kv_heads=self.n_kv_heads, hidden_dim=self.hidden_dim, max_seq_len=self.max_seq_len,
        )
