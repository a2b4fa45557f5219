"""The matmul peak that MFU is measured against (ponder/perf.py): a real measurement, and one that
shrinks its matmul where a full-size one would take too long (emulated bf16 on a CPU)."""

from __future__ import annotations

import torch

from ponder import perf


def test_the_peak_is_a_real_positive_rate_at_the_asked_size_when_that_is_quick(monkeypatch):
    sizes = []
    timed = perf._best_seconds
    monkeypatch.setattr(perf, "_best_seconds", lambda n, *a: sizes.append(n) or timed(n, *a))
    peak = perf.measure_matmul_peak(n=384, repeats=2)
    assert sizes == [perf.PROBE_N, 384]  # a 384^3 fp32 matmul takes milliseconds: kept
    assert 1e8 < peak < 1e14  # FLOP/s: between a very slow core and a datacenter GPU


def test_a_slow_dtype_is_measured_with_a_matmul_that_takes_about_the_budget(monkeypatch):
    sizes = []
    # A probe of 0.1 s stands for ~0.3 GFLOP/s (emulated bf16 is about 1): a 2048^3 matmul would take
    # 51 s, so the measurement shrinks to n = 256 * (0.5 / 0.1)^(1/3) = 437.
    monkeypatch.setattr(perf, "_best_seconds", lambda n, *a: sizes.append(n) or 0.1 * (n / perf.PROBE_N) ** 3)
    perf.measure_matmul_peak(n=2048, dtype=torch.bfloat16)
    assert sizes == [perf.PROBE_N, 437]
