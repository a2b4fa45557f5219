"""The transformer's shape, as a frozen dataclass that round-trips through config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ponder.errors import UserError


@dataclass(frozen=True)
class ModelConfig:
    """Decoder-only transformer: RMSNorm, rotary positions, SwiGLU, tied embeddings by default."""

    vocab_size: int
    dim: int = 256
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 4  # < n_heads gives grouped-query attention
    hidden_dim: int = 768  # SwiGLU inner width
    max_seq_len: int = 512  # context: prompt plus completion
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "max_seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        if (self.dim // self.n_heads) % 2:
            raise ValueError("head dimension must be even for rotary positions")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def num_params(self) -> int:
        """Parameter count, embeddings included once when tied."""
        attn = self.dim * (self.n_heads + 2 * self.n_kv_heads) * self.head_dim + self.dim * self.dim
        mlp = 3 * self.dim * self.hidden_dim
        per_layer = attn + mlp + 2 * self.dim
        head = 0 if self.tie_embeddings else self.vocab_size * self.dim
        return self.vocab_size * self.dim + self.n_layers * per_layer + self.dim + head

    def flops_per_token(self, seq_len: int) -> int:
        """Forward matmul FLOPs per token (2 per MAC), attention scores included (PaLM appendix B).
        Training is 3x this (forward + backward)."""
        non_embedding = self.num_params() - self.vocab_size * self.dim * (1 if self.tie_embeddings else 2)
        matmuls = non_embedding + self.vocab_size * self.dim  # the output head is a real matmul
        attention = self.n_layers * seq_len * self.dim  # QK^T and AV, causal mean length ~ seq/2, x2
        return 2 * matmuls + 2 * attention

    def to_json(self) -> dict:
        return {"format": "ponder", **asdict(self)}

    @classmethod
    def from_json(cls, data: dict, source: str = "config.json") -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"format", "meta"})  # meta: who trained it, how long
        if unknown:
            raise UserError(f"{source}: unknown model config field(s) {unknown}; valid: {sorted(known)}")
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except (TypeError, ValueError) as exc:
            raise UserError(f"{source}: invalid model config: {exc}") from None

    @classmethod
    def load(cls, path: Path) -> "ModelConfig":
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"missing model config file {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise UserError(f"{path} must hold a JSON object, got {type(data).__name__}")
        return cls.from_json(data, str(path))
