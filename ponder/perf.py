"""Machine measurements for utilisation figures: the matmul peak of this CPU or GPU, measured."""

from __future__ import annotations

import time

import torch


# A matmul in the peak measurement takes at most about this long. Where a dtype is emulated (bf16
# on a CPU without bf16 instructions runs near 1 GFLOP/s), a 2048^3 matmul takes 20 s, and the
# ten of them would cost minutes before a run's first step.
MATMUL_SECONDS = 0.5
PROBE_N = 256


def measure_matmul_peak(n: int = 2048, repeats: int = 8, dtype=torch.float32, device=None) -> float:
    """Best sustained FLOP/s of an n x n matmul with the current torch thread count (CPU) or on
    `device`. MFU is reported against what this machine does, not a datasheet number. A small
    probe first: if an n x n matmul would take over MATMUL_SECONDS, n shrinks to one that takes
    about that long (a slow peak is as well measured by a smaller matmul)."""
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        n = max(n, 8192)  # a 2048^3 matmul cannot fill a datacenter GPU
    else:
        probe = _best_seconds(PROBE_N, 2, dtype, device)
        n = min(n, max(PROBE_N, int(PROBE_N * (MATMUL_SECONDS / probe) ** (1 / 3))))
    return 2 * n**3 / _best_seconds(n, repeats, dtype, device)


def _best_seconds(n: int, repeats: int, dtype, device: torch.device) -> float:
    """The fastest of `repeats` timed n x n matmuls, after two untimed ones."""
    from ponder.devices import synchronize

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
    return best
