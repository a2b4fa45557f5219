"""Export a ponder checkpoint as a transformers Llama directory (LlamaForCausalLM + AutoTokenizer).

ponder's layout is Llama's with q/k/v and gate/up fused, so the export is a split and a rename.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ponder.model.chat import CHAT_TEMPLATE
from ponder.model.checkpoint import load_checkpoint, write_atomically
from ponder.model.tokenizer import BOS, END, PAD


def hf_state_dict(model) -> dict:
    cfg = model.cfg
    q_rows, kv_rows = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    out = {"model.embed_tokens.weight": model.embed.weight, "model.norm.weight": model.norm.weight}
    if not cfg.tie_embeddings:
        out["lm_head.weight"] = model.head.weight
    for i, b in enumerate(model.blocks):
        p = f"model.layers.{i}."
        q, k, v = b.qkv.weight.split([q_rows, kv_rows, kv_rows])
        gate, up = b.gate_up.weight.chunk(2)
        out.update({
            p + "input_layernorm.weight": b.attn_norm.weight,
            p + "self_attn.q_proj.weight": q, p + "self_attn.k_proj.weight": k,
            p + "self_attn.v_proj.weight": v, p + "self_attn.o_proj.weight": b.out.weight,
            p + "post_attention_layernorm.weight": b.mlp_norm.weight,
            p + "mlp.gate_proj.weight": gate, p + "mlp.up_proj.weight": up,
            p + "mlp.down_proj.weight": b.down.weight,
        })
    return {k: v.detach().contiguous().clone() for k, v in out.items()}


def from_hf_state_dict(sd: dict, n_layers: int) -> dict:
    """The inverse of `hf_state_dict`: q/k/v and gate/up fused again, ponder's names. Works on any
    tensors keyed like Llama's parameters (weights, or their gradients to compare with ponder's).
    A tied model's head is its embedding, as ponder's state dict lists it."""
    out = {"embed.weight": sd["model.embed_tokens.weight"], "norm.weight": sd["model.norm.weight"],
           "head.weight": sd.get("lm_head.weight", sd["model.embed_tokens.weight"])}
    for i in range(n_layers):
        h, p = f"model.layers.{i}.", f"blocks.{i}."
        out |= {p + "attn_norm.weight": sd[h + "input_layernorm.weight"],
                p + "qkv.weight": torch.cat([sd[h + f"self_attn.{x}_proj.weight"] for x in "qkv"]),
                p + "out.weight": sd[h + "self_attn.o_proj.weight"],
                p + "mlp_norm.weight": sd[h + "post_attention_layernorm.weight"],
                p + "gate_up.weight": torch.cat([sd[h + "mlp.gate_proj.weight"], sd[h + "mlp.up_proj.weight"]]),
                p + "down.weight": sd[h + "mlp.down_proj.weight"]}
    return out


def hf_config(cfg, tok) -> dict:
    sp = tok.special
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.dim, "intermediate_size": cfg.hidden_dim,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.head_dim,
        "max_position_embeddings": cfg.max_seq_len, "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta, "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "hidden_act": "silu", "tie_word_embeddings": cfg.tie_embeddings,
        "attention_bias": False, "mlp_bias": False, "torch_dtype": "float32",
        "bos_token_id": sp.bos, "eos_token_id": sp.end, "pad_token_id": sp.pad,
    }


def export_hf(checkpoint: Path | str, out: Path | str) -> Path:
    from safetensors.torch import save_file

    model, tok = load_checkpoint(checkpoint)

    def fill(tmp: Path) -> None:
        (tmp / "config.json").write_text(json.dumps(hf_config(model.cfg, tok), indent=2))
        (tmp / "generation_config.json").write_text(json.dumps(
            {"bos_token_id": tok.special.bos, "eos_token_id": tok.special.end, "pad_token_id": tok.special.pad}
        ))
        save_file(hf_state_dict(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok.save(tmp / "tokenizer.json")
        (tmp / "tokenizer_config.json").write_text(json.dumps({
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": BOS, "eos_token": END,
            "pad_token": PAD, "add_bos_token": False, "chat_template": CHAT_TEMPLATE,
            "model_max_length": model.cfg.max_seq_len, "clean_up_tokenization_spaces": False,
        }, indent=2))

    write_atomically(Path(out), fill)
    return Path(out)
