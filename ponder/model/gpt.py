"""The transformer: plain PyTorch, Llama-compatible layout (so the HF export is a weight split).

q/k/v and gate/up are fused into one matmul each: on a CPU, decode speed of a small model is
bound by the number of ops per step, not by FLOPs. Rotary uses the rotate-half convention of
HF Llama for the same reason the export stays a plain copy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ponder.model.config import ModelConfig


def rotary_table(cfg: ModelConfig, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables of shape (max_seq_len, head_dim), rotate-half layout."""
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2, device=device).float() / cfg.head_dim))
    t = torch.arange(cfg.max_seq_len, device=device).float()
    freqs = torch.outer(t, inv_freq)  # (T, hd/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (T, hd)
    return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x (B, H, T, hd); cos/sin (B, 1, T, hd) or (T, hd). In x's dtype (as HF Llama does): under
    # bf16 autocast, fp32 tables would turn q and k, and every op after them, back into fp32.
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal self-attention over whole sequences (training). q (B, H, T, hd); k, v (B, Hkv, T, hd).
    In bf16 on a CPU, two batched matmuls and a softmax take half the time of the CPU flash
    kernel, forward and backward (bench: 17 against 36 ms for 16 x 250 tokens); in fp32 and on
    GPUs the flash kernel is the faster."""
    gqa = k.shape[1] != q.shape[1]
    if q.dtype != torch.bfloat16 or q.device.type != "cpu":
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
    B, H, T, hd = q.shape
    group = H // k.shape[1]
    folded = (q * hd**-0.5).reshape(B, k.shape[1], group * T, hd)  # query heads sharing a kv head, as rows
    scores = folded @ k.transpose(-1, -2)  # (B, Hkv, G*T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril().repeat(group, 1)
    scores = scores.masked_fill(~causal, float("-inf"))
    return (scores.softmax(-1).to(v.dtype) @ v).view(B, H, T, hd)


def decode_attention(q, k, v, mask):
    """Attention for one new query per row. CPU flash attention pays ~1 ms of fixed cost per call
    for a single query; two batched matmuls and a softmax cost a tenth of that."""
    B, H, _, hd = q.shape
    group = H // k.shape[1]
    q = q.view(B, k.shape[1], group, hd)  # (B, Hkv, G, hd): query heads sharing a kv head
    scores = (q @ k.transpose(-1, -2)) * hd**-0.5  # (B, Hkv, G, S)
    scores = scores.masked_fill(~mask, float("-inf"))  # mask (B, 1, 1, S)
    return (scores.softmax(-1) @ v).view(B, H, 1, hd)


def cache_dtype(model: nn.Module, device: torch.device) -> torch.dtype:
    """The dtype a KV cache should hold for `model` here: autocast's when it is on, so attention
    reads the cache as it is instead of casting every slot to bf16 at every decode step and layer
    (on a CPU that cast cost more than the bf16 matmuls saved); else the weights' own."""
    if torch.is_autocast_enabled(device.type):
        return torch.get_autocast_dtype(device.type)
    return next(model.parameters()).dtype


class KVCache:
    """Preallocated keys/values for every layer: (n_layers, B, n_kv_heads, max_len, head_dim).
    Writing in place avoids the per-step concatenation that makes growing caches quadratic."""

    def __init__(self, cfg: ModelConfig, batch: int, max_len: int, dtype=torch.float32, device=None):
        shape = (cfg.n_layers, batch, cfg.n_kv_heads, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)

    @property
    def length(self) -> int:
        return self.k.shape[3]

    def grow(self, length: int) -> None:
        """Room for `length` slots per row, keeping what is written."""
        for name in ("k", "v"):
            old = getattr(self, name)
            new = old.new_empty(*old.shape[:3], length, old.shape[4])
            new[:, :, :, : old.shape[3]] = old
            new[:, :, :, old.shape[3] :] = 0  # masked slots still meet a zero softmax weight: keep them finite
            setattr(self, name, new)

    def keep_rows(self, rows: torch.Tensor) -> None:
        """Drop finished sequences from the batch so later steps do not compute them."""
        self.k = self.k[:, rows]
        self.v = self.v[:, rows]

    def rows(self, lo: int, hi: int) -> "KVCache":
        """A view of rows [lo, hi): writes through it land in this cache (continuous batching
        prefills joiners into their own rows and decodes only the live ones)."""
        view = KVCache.__new__(KVCache)
        view.k, view.v = self.k[:, lo:hi], self.v[:, lo:hi]
        return view

    def move_row(self, src: int, dst: int) -> None:
        self.k[:, dst] = self.k[:, src]
        self.v[:, dst] = self.v[:, src]


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.attn_norm = nn.RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.qkv = nn.Linear(cfg.dim, (cfg.n_heads + 2 * cfg.n_kv_heads) * cfg.head_dim, bias=False)
        self.out = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.mlp_norm = nn.RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.gate_up = nn.Linear(cfg.dim, 2 * cfg.hidden_dim, bias=False)
        self.down = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, layer: int, cache: KVCache | None, start: "int | torch.Tensor", mask):
        cfg = self.cfg
        B, T, _ = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).split(
            [cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim], dim=-1
        )
        q = apply_rotary(q.view(B, T, cfg.n_heads, cfg.head_dim).transpose(1, 2), cos, sin)  # (B, H, T, hd)
        k = apply_rotary(k.view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2), cos, sin)
        v = v.view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        if cache is not None and isinstance(start, torch.Tensor):
            # One token per row, each written at its own slot (rows joined at different times);
            # the mask's width says how many slots the longest row attends to.
            rows = torch.arange(B, device=x.device)
            cache.k[layer, rows, :, start] = k[:, :, 0]
            cache.v[layer, rows, :, start] = v[:, :, 0]
            k = cache.k[layer, :, :, : mask.shape[-1]]
            v = cache.v[layer, :, :, : mask.shape[-1]]
        elif cache is not None:
            cache.k[layer, :, :, start : start + T] = k
            cache.v[layer, :, :, start : start + T] = v
            # Keys up to the mask's width: a decode step may attend over the whole cache, slots
            # past `start` masked, because a whole layer is contiguous and a slice of it is not.
            width = mask.shape[-1] if mask is not None else start + T
            k = cache.k[layer, :, :, :width]
            v = cache.v[layer, :, :, :width]
        gqa = cfg.n_kv_heads != cfg.n_heads
        if mask is None and T > 1:
            y = causal_attention(q, k, v)
        elif mask is None:
            y = F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
        elif T == 1:
            y = decode_attention(q, k, v, mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)
        x = x + self.out(y.transpose(1, 2).reshape(B, T, cfg.dim))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.dim, eps=cfg.norm_eps)
        self.head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        cos, sin = rotary_table(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)

    def _init(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        # Residual outputs start small so deep stacks begin near the identity (GPT-2 scheme).
        for block in getattr(module, "blocks", []):
            for proj in (block.out, block.down):
                nn.init.normal_(proj.weight, std=0.02 / (2 * self.cfg.n_layers) ** 0.5)

    def forward(
        self,
        tokens: torch.Tensor,  # (B, T)
        positions: torch.Tensor | None = None,  # (B, T); default 0..T-1
        cache: KVCache | None = None,
        start: int | torch.Tensor = 0,  # cache slot of tokens[:, 0]; a (B,) tensor: per-row slots (T == 1)
        mask: torch.Tensor | None = None,  # (B, 1, T, start+T) bool, True = attend; None = causal
        last_only: bool = False,  # only the last position's logits (generation)
    ) -> torch.Tensor:
        T = tokens.shape[1]
        if positions is None:
            cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        else:
            cos, sin = self.rope_cos[positions].unsqueeze(1), self.rope_sin[positions].unsqueeze(1)
        x = self.embed(tokens)
        for layer, block in enumerate(self.blocks):
            x = block(x, cos, sin, layer, cache, start, mask)
        if last_only:
            x = x[:, -1:]
        return self.head(self.norm(x))  # (B, T, V)
