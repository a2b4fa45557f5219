#!/usr/bin/env bash
# Set up ponder in a virtual environment ($1, default .venv) on a fresh machine.
# The venv sees the interpreter's site-packages, so a torch the user already has (CUDA or not)
# is used as it is. Only when no torch imports do we install torch==2.13.0, which on a
# CPU-only Linux machine is the CPU build; a bare `torch` requirement would pull a multi-GB
# CUDA build instead.
set -euo pipefail
venv="${1:-.venv}"
python="${PYTHON:-python3}"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "ponder needs Python 3.11 or newer; $python is $("$python" --version 2>&1)" >&2
    exit 2
}
[ -x "$venv/bin/python" ] || "$python" -m venv --system-site-packages "$venv"
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    echo "no torch found: installing torch==2.13.0"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "torch==2.13.0"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -e ".[dev]"
"$venv/bin/python" -c 'import torch, ponder; print(f"ponder {ponder.__version__} ready (torch {torch.__version__})")'
