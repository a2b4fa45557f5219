"""GGUF files (llama.cpp's format) as ponder engines, through transformers.

transformers dequantizes the weights into an ordinary torch model (float32 by default), so a
GGUF model gets the HF engine's whole contract: chat template, think-tag split, budgets, stops,
seeds. Reading a GGUF is slow in pure Python (transformers parses the file three times: tokenizer,
config, weights; about 90 s for Gemma 3 270M on 2 CPU cores), so `cache_dir` keeps the converted
model as a transformers directory and later loads take seconds.

Leaves out: llama-cpp-python. It would run the quantized weights directly and faster, but an
engine over it needs its own budget forcing and stop handling, and it cannot be installed and
tested here; until then GGUF goes through transformers whether llama_cpp is importable or not.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ponder.engine.hf import HFEngine, HFOptions
from ponder.errors import UserError

GGUF_EXTRA = "pip install 'ponder[gguf]'"
MAGIC = b"GGUF"


def check_gguf_file(path: Path | str) -> Path:
    """The path, resolved, if it names a readable GGUF file; a UserError naming it otherwise."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"no such GGUF file {str(path)!r}")
    if not path.is_file():
        raise UserError(f"{str(path)!r} is a directory; a GGUF model is a single .gguf file")
    with path.open("rb") as f:
        head = f.read(4)
    if head != MAGIC:
        raise UserError(f"{str(path)!r} is not a GGUF file (it does not start with the GGUF magic bytes)")
    return path.resolve()


def _require_gguf_deps() -> None:
    import importlib.util

    # transformers reads GGUF with the `gguf` package and insists on accelerate for it.
    missing = [m for m in ("transformers", "gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"loading GGUF files needs {', '.join(missing)}: {GGUF_EXTRA}")


def _cache_entry(cache_dir: Path, path: Path, dtype: str) -> Path:
    import transformers

    stat = path.stat()
    # Same file (path, size, mtime), same dtype, same converter: same model.
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}|{transformers.__version__}"
    return cache_dir / f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def load_gguf_engine(path: Path | str, *, cache_dir: Path | str | None = None, **options) -> HFEngine:
    """An HFEngine over the GGUF file at `path`; `options` are HFOptions fields (dtype defaults
    to float32 here: the dequantized weights are float32 anyway). With `cache_dir`, the first
    load writes the converted model there and later loads of the same file read it back."""
    path = check_gguf_file(path)
    _require_gguf_deps()
    opts = HFOptions(**{"dtype": "float32", **options})
    if cache_dir is not None:
        entry = _cache_entry(Path(cache_dir).expanduser(), path, opts.dtype)
        if (entry / "config.json").is_file():
            engine = HFEngine.from_pretrained(entry, **{**options, "dtype": opts.dtype})
            engine.name = path.name
            return engine
    model, tok = _load_transformers(path, opts)
    if cache_dir is not None:
        from ponder.model.checkpoint import write_atomically

        def fill(tmp: Path) -> None:
            from safetensors.torch import save_model

            # transformers refuses save_pretrained on a model it loaded from GGUF (it counts as
            # quantized), though the weights are plain dequantized tensors: write them directly.
            config = {k: v for k, v in model.config.to_dict().items() if k != "quantization_config"}
            (tmp / "config.json").write_text(json.dumps(config, indent=2))
            save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            tok.save_pretrained(tmp)

        entry.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(entry, fill)
    device = opts.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return HFEngine(model.to(device), tok, opts, name=path.name)


def _load_transformers(path: Path, opts: HFOptions):
    import transformers

    dtype = getattr(torch, opts.dtype) if opts.dtype != "auto" else torch.float32
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:
        # e.g. "GGUF model with architecture X is not supported yet."
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load GGUF file {str(path)!r} with transformers: {reason}") from exc
    return model, tok
