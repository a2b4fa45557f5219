"""Model spec strings -> engines.

    default                     the model bundled in the package
    DIR                         a ponder checkpoint directory
    openai:MODEL[@BASE_URL]     any OpenAI-compatible server (ponder serve included)
    hf:DIR                      a transformers model directory, with its own chat template
    gguf:FILE                   a GGUF checkpoint, through transformers (converted once, cached)
    vllm:MODEL                  a model directory or hub id served by vLLM (GPU; vllm installed)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ponder.errors import UserError

BUNDLED = Path(__file__).resolve().parent.parent / "assets" / "default"
VALID_SPECS = ("'default' (the bundled model), a ponder checkpoint directory, hf:DIR, gguf:FILE, vllm:MODEL "
               "or openai:MODEL@URL")
GGUF_CACHE = Path.home() / ".cache" / "ponder" / "gguf"


def resolve_checkpoint(spec: str) -> Path:
    """The checkpoint directory a spec names, or a UserError saying what would be valid."""
    if spec == "default":
        if not (BUNDLED / "config.json").is_file():
            raise UserError(f"the bundled model is missing from {BUNDLED}; reinstall ponder or pass --model DIR")
        return BUNDLED
    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"unknown model spec {spec!r}: no such directory; use {VALID_SPECS}")
    if not path.is_dir():
        raise UserError(f"model spec {spec!r} is a file; a ponder checkpoint is a directory with config.json, "
                        "model.safetensors and tokenizer.json")
    return path


def _remote(rest: str):
    from ponder.engine.remote import RemoteEngine, parse_remote_spec

    return RemoteEngine(*parse_remote_spec("openai:" + rest))


def _hf(rest: str):
    from ponder.engine.hf import HFEngine

    return HFEngine.from_pretrained(rest)


def _vllm(rest: str):
    from ponder.engine.vllm import VLLMEngine

    return VLLMEngine.load(rest)


def _gguf(rest: str):
    from ponder.engine.gguf import load_gguf_engine

    # Reading a GGUF through transformers takes minutes in pure Python; the converted
    # weights are cached so later loads take seconds.
    return load_gguf_engine(rest, cache_dir=GGUF_CACHE)


def _native(spec: str):
    from ponder.engine.native import NativeEngine
    from ponder.model.checkpoint import load_checkpoint

    path = resolve_checkpoint(spec)
    model, tok = load_checkpoint(path)
    return NativeEngine(model, tok, name=spec if spec == "default" else path.name)


# Backends by spec prefix, each a loader of what follows the prefix, imported only when used (so
# a missing optional dependency costs nothing until its backend is asked for). Anything without
# a registered prefix is 'default' or a ponder checkpoint directory. A new backend is an adapter
# that answers `generate` plus one entry here (`register_backend`).
BACKENDS: dict[str, Callable[[str], Any]] = {"openai:": _remote, "hf:": _hf, "vllm:": _vllm, "gguf:": _gguf}


def register_backend(prefix: str, loader: Callable[[str], Any]) -> None:
    """Make `PREFIX...` specs load with `loader(rest_of_spec)`, e.g. register_backend("mine:", load)."""
    if not prefix.endswith(":") or len(prefix) < 2 or not prefix[:-1].isidentifier():
        raise ValueError(f"a backend prefix is a name and a colon, like 'hf:'; got {prefix!r}")
    BACKENDS[prefix] = loader


def load_engine(spec: str = "default"):
    """The engine a model spec names (see the module docstring)."""
    for prefix, loader in BACKENDS.items():
        if spec.startswith(prefix):
            return loader(spec[len(prefix):])
    return _native(spec)
