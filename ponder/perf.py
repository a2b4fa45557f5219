"""Machine measurements for utilisation figures: the matmul peak of this CPU or GPU, measured."""

from __future__ import annotations

import time

import torch


def measure_matmul_peak(n: int = 2048, repeats: int = 8, dtype=torch.float32, device=None) -> float:
    """Best sustained FLOP/s of an n x n matmul with the current torch thread count (CPU) or on
    `device`. MFU is reported against what this machine does, not a datasheet number."""
    from ponder.devices import synchronize

    device = torch.device(device or "cpu")
    if device.type == "cuda":
        n = max(n, 8192)  # a 2048^3 matmul cannot fill a datacenter GPU
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best
