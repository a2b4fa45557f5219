"""Where an eval suite's dataset comes from, in order: its own file (`--data SUITE=FILE`), the
data folder given by `--data-dir`, the folder named by $PONDER_DATA, and, for the suites whose
original release is on the Hugging Face hub in the same shape (GSM8K, MATH-500), the hub,
through the `datasets` library, saved once under ~/.cache/ponder/data in the original file
format. A developer checkout's `../shared/data` is passed explicitly by the tests, never
defaulted to. A suite that has no dataset says, in one line, every way to give it one.

Left out: hub copies of the other suites, whose hub versions differ from the original files'
columns (they are read from files in their original releases' format).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ponder.errors import UserError

DATA_ENV = "PONDER_DATA"
HUB_CACHE = Path.home() / ".cache" / "ponder" / "data"


@dataclass(frozen=True)
class HubSource:
    """A dataset on the hub whose rows are already the original file's rows (JSON lines)."""

    path: str  # the hub id, or a `datasets` builder such as "json" (with data_files)
    name: str | None
    split: str
    load_kwargs: dict[str, Any] = field(default_factory=dict)


HUB_SOURCES: dict[str, HubSource] = {
    "gsm8k": HubSource("openai/gsm8k", "main", "test"),  # question, answer ("... #### n")
    "math500": HubSource("HuggingFaceH4/MATH-500", None, "test"),  # problem, solution, answer, subject, level
}


def data_dir_from(given: str | Path | None) -> Path | None:
    """The data folder: the one given, else $PONDER_DATA, else None."""
    chosen = given or os.environ.get(DATA_ENV)
    return Path(chosen).expanduser() if chosen else None


def dataset_path(paths: dict[str, str], data_dir: Path | None, suite: str, relative: str) -> Path:
    """`paths[suite]`, else data_dir/relative, else the hub's copy where there is one; with none
    of these, a UserError naming every way to give the suite its data."""
    if suite in paths:
        return Path(paths[suite])
    if data_dir is not None:
        return Path(data_dir) / relative
    ways = f"pass --data-dir DIR (a folder holding {relative}), set ${DATA_ENV} to such a folder, or pass " \
           f"--data {suite}=FILE"
    source = HUB_SOURCES.get(suite)
    if source is None:
        raise UserError(f"{suite}: no dataset given; {ways}")
    return fetch_from_hub(suite, source, HUB_CACHE / relative, ways)


def fetch_from_hub(suite: str, source: HubSource, target: Path, ways: str = "pass --data-dir DIR") -> Path:
    """The hub dataset saved as JSON lines at `target` (once: later calls read the saved file)."""
    if target.is_file():
        return target
    try:
        from datasets import load_dataset
    except ImportError:
        raise UserError(f"{suite}: no dataset given, and fetching it from the hub needs the `datasets` library "
                        f"(pip install 'ponder[evals]'); or {ways}") from None
    try:
        rows = load_dataset(source.path, source.name, split=source.split, **source.load_kwargs)
    except Exception as error:  # offline, unknown id, no access: one line, the ways out included
        raise UserError(f"{suite}: no dataset given, and {source.path} could not be loaded from the hub "
                        f"({type(error).__name__}); {ways}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(target)  # whole or not at all: a crash never leaves half a dataset to be read later
    return target
