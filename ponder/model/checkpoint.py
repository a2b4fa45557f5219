"""Checkpoint directories: config.json + model.safetensors + tokenizer.json.

Saving writes to a sibling temp directory and renames it into place, so a run killed mid-save
never leaves a half-written checkpoint where a loader would find it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


from ponder.errors import UserError
from ponder.model.config import ModelConfig
from ponder.model.gpt import GPT
from ponder.model.tokenizer import Tokenizer

CONFIG, WEIGHTS, TOKENIZER = "config.json", "model.safetensors", "tokenizer.json"


def write_atomically(path: Path, fill) -> None:
    """Call fill(tmp_dir), then move tmp_dir to path, replacing any previous version."""
    path = Path(path)
    # Leftovers of a save killed mid-way (any pid) are garbage: the target is either the old
    # complete version or the new complete one, never a temp directory.
    for stale in path.parent.glob(f".{path.name}.*-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.mkdir(parents=True)
    fill(tmp)
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    if path.exists():
        path.rename(old)
    tmp.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(model: GPT, tok: Tokenizer, path: Path, extra: dict | None = None, state: dict | None = None) -> None:
    """Write a checkpoint directory; `state` (optimizer, RNG, step) goes to trainer_state.pt in the
    same atomic write, so weights and trainer state never disagree."""
    import torch
    from safetensors.torch import save_file

    def fill(tmp: Path) -> None:
        (tmp / CONFIG).write_text(json.dumps({**model.cfg.to_json(), "meta": extra or {}}, indent=2))
        weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        if model.cfg.tie_embeddings:
            weights.pop("head.weight")  # the same storage as embed.weight; safetensors refuses shared tensors
        save_file(weights, str(tmp / WEIGHTS))
        tok.save(tmp / TOKENIZER)
        if state is not None:
            torch.save(state, tmp / "trainer_state.pt")

    write_atomically(Path(path), fill)


def load_checkpoint(path: Path | str) -> tuple[GPT, Tokenizer]:
    """Load a checkpoint directory; every problem with it becomes a UserError naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_dir():
        raise UserError(f"checkpoint directory {path} does not exist")
    for name in (CONFIG, WEIGHTS, TOKENIZER):
        if not (path / name).is_file():
            raise UserError(f"checkpoint {path} is missing {name} (needs {CONFIG}, {WEIGHTS}, {TOKENIZER})")
    cfg = ModelConfig.load(path / CONFIG)
    tok = Tokenizer.load(path / TOKENIZER)
    if tok.vocab_size > cfg.vocab_size:
        raise UserError(f"{path / TOKENIZER} has {tok.vocab_size} tokens but config.json says vocab_size {cfg.vocab_size}")
    try:
        state = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path / WEIGHTS} is not a readable safetensors file: {exc}") from None
    model = GPT(cfg)
    if cfg.tie_embeddings and "embed.weight" in state:
        state["head.weight"] = state["embed.weight"]
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        detail = "; ".join(
            part for part in (
                f"missing {missing[:4]}" if missing else "",
                f"unexpected {unexpected[:4]}" if unexpected else "",
                f"wrong shape {wrong[:4]}" if wrong else "",
            ) if part
        )
        raise UserError(f"{path / WEIGHTS} does not match config.json: {detail}")
    model.load_state_dict(state)
    return model.eval(), tok





__all__ = ["save_checkpoint", "load_checkpoint", "write_atomically"]
