"""Where an eval suite's dataset comes from: its own file (`--data SUITE=FILE`), else the data
folder given by `--data-dir`, else the folder named by $PONDER_DATA. Nothing is assumed beyond
that: a developer checkout's `../shared/data` is passed explicitly by the tests, never defaulted
to. A suite that needs a dataset and has none says, in one line, how to give it one.

Left out: fetching a dataset from the hub with the `datasets` library when no folder holds it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ponder.errors import UserError

DATA_ENV = "PONDER_DATA"


def data_dir_from(given: str | Path | None) -> Path | None:
    """The data folder: the one given, else $PONDER_DATA, else None."""
    chosen = given or os.environ.get(DATA_ENV)
    return Path(chosen).expanduser() if chosen else None


def dataset_path(paths: dict[str, str], data_dir: Path | None, suite: str, relative: str) -> Path:
    """`paths[suite]`, else data_dir/relative; with neither, a UserError naming every way to give it."""
    if suite in paths:
        return Path(paths[suite])
    if data_dir is None:
        raise UserError(f"{suite}: no dataset given; pass --data-dir DIR (a folder holding {relative}), set "
                        f"${DATA_ENV} to such a folder, or pass --data {suite}=FILE")
    return Path(data_dir) / relative
