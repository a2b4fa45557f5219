"""Where training runs and in what precision: one place that turns the configs' `device` and
`precision` names into a torch device and an autocast context.

bf16 here is mixed precision: the weights and AdamW state stay fp32, and the forward passes
(training, rollouts, held-out evals) run their matmuls in bf16 under `torch.autocast`, as the
large-scale RL recipes do on GPUs. Logits are taken back to fp32 before any softmax.

Leaves out: fp16 (it needs loss scaling, and every GPU that RL recipes target has bf16) and
pure-bf16 weights.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ponder.errors import UserError

if TYPE_CHECKING:  # torch is imported where it is used, so config modules (and `ponder --help`) stay fast
    import torch

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["fp32", "bf16"]
# The x86 flags that mean bf16 matmuls run in hardware; without one, torch emulates them.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def resolve_device(name: str) -> torch.device:
    """auto: the GPU when there is one, else the CPU. Under torchrun each rank takes the GPU of
    its LOCAL_RANK."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but torch sees no CUDA GPU "
                        f"(torch {torch.__version__}); use --device cpu or auto")
    index = int(os.environ.get("LOCAL_RANK", "0"))
    if index >= torch.cuda.device_count():
        raise UserError(f"LOCAL_RANK {index} has no GPU: torch sees {torch.cuda.device_count()}")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def autocast(device: torch.device, precision: str):
    """The context forward passes run in: bf16 autocast, or nothing for fp32."""
    import torch

    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings measure it."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of /proc/cpuinfo's first `flags` line (x86 Linux); empty when it has none."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def emulated_bf16_warning(device: torch.device, precision: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """A warning when bf16 is asked for on an x86 CPU that has no bf16 matmul instructions: torch
    then emulates them, and a whole run gets several times slower than fp32 instead of faster.
    None when bf16 is native, on a GPU, in fp32, or where the flags cannot be read (not Linux,
    not x86): no warning rather than a wrong one."""
    if precision != "bf16" or device.type != "cpu":
        return None
    try:
        flags = cpu_flags(cpuinfo.read_text())
    except OSError:
        return None
    if not flags or flags & NATIVE_BF16_FLAGS:
        return None
    return ("warning: --precision bf16 on a CPU without bf16 matmul instructions (neither avx512_bf16 nor "
            "amx_bf16 is in /proc/cpuinfo): torch emulates them, several times slower than fp32 (figures: "
            "docs/guides/train.md, 'Devices and precision'); --precision fp32 is the faster choice here")
