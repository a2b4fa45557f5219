"""Machine measurements for utilisation figures: the fp32 matmul peak of this CPU, measured."""

from __future__ import annotations

import time

import torch


def measure_matmul_peak(n: int = 2048, repeats: int = 8, dtype=torch.float32) -> float:
    """Best sustained FLOP/s of an n x n matmul with the current torch thread count."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best
