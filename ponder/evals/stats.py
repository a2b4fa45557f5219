"""Confidence intervals for eval metrics: Wilson intervals for rates, the bootstrap otherwise.

A rate (a mean of per-sample values in [0, 1]: pass@1, not_unsafe, goodness@0.1) gets the
Wilson score interval, which stays honest at the boundary: 11 passes out of 11 is
[0.74, 1.00], where the percentile bootstrap says [1.00, 1.00] because every resample of
eleven 1s is 1. An ungrouped 0/1 rate gets the Wilson interval alone; a rate over grouped or
fractional values (k samples per item, a request under 20 transformations) gets the hull of
the group bootstrap and the Wilson interval over its independent units, since a [0, 1] value
varies no more than a coin with the same mean. `metric_ci` picks; everything else is
bootstrapped as below.

The bootstrap resamples whole groups (samples sharing `Sample.group`, else each sample alone):
a harmful request under 20 jailbreak transformations is one draw, not 20, so its interval is
honest about how many independent requests there were. Each resample re-applies the metric's
own `aggregate`, so grouped metrics (StrongREJECT's goodness@0.1) get intervals too.

Two paths, same answer: metrics built with `task.mean_of` are resampled in one matrix product
over per-group sums and counts (1000 resamples of 500 samples in a few milliseconds); any other
aggregate is called once per resample on the resampled list. Percentile intervals only (no BCa):
simple, and adequate at the sample sizes evals run at.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import replace
from statistics import NormalDist
from typing import Sequence

import numpy as np

from ponder.evals.task import Metric, ScoredSample, mean_of

_MEAN_OF_CODE = mean_of("_").__code__  # every closure mean_of makes shares this code object


def mean_of_name(metric: Metric) -> str | None:
    """The per-sample value a `mean_of` metric averages, or None for any other aggregate."""
    aggregate = metric.aggregate
    if getattr(aggregate, "__code__", None) is not _MEAN_OF_CODE:
        return None
    return inspect.getclosurevars(aggregate).nonlocals.get("name")


def group_keys(scored: Sequence[ScoredSample]) -> list[str]:
    """Each sample's bootstrap unit: its group, else its own id (a group of one)."""
    return [f"g:{s.sample.group}" if s.sample.group is not None else f"s:{i}" for i, s in enumerate(scored)]


def _group_index(groups: Sequence[str]) -> tuple[np.ndarray, int]:
    """(group number of each sample, number of groups), groups numbered by first appearance."""
    numbers: dict[str, int] = {}
    index = np.fromiter((numbers.setdefault(g, len(numbers)) for g in groups), dtype=np.int64, count=len(groups))
    return index, len(numbers)


def _interval(values: np.ndarray, level: float) -> tuple[float | None, float | None]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None, None
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def _mean_ci(scored, name, index, n_groups, n_resamples, rng, level):
    values = [s.score.values.get(name) if s.score.graded else None for s in scored]
    applies = np.array([v is not None for v in values])
    x = np.array([v if v is not None else 0.0 for v in values], dtype=np.float64)
    sums = np.bincount(index, weights=x, minlength=n_groups)  # (G,)
    counts = np.bincount(index, weights=applies.astype(np.float64), minlength=n_groups)  # (G,)
    # How often each group is drawn in each resample: (R, G), rows summing to G.
    draws = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_resamples).astype(np.float64)
    totals, ns = draws @ sums, draws @ counts  # (R,)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(ns > 0, totals / np.where(ns > 0, ns, 1), np.nan)
    return _interval(means, level)


def _generic_ci(scored, metric, index, n_groups, n_resamples, rng, level):
    members: list[list[ScoredSample]] = [[] for _ in range(n_groups)]
    for s, g in zip(scored, index):
        members[g].append(s)
    copies: dict[tuple[int, int], list[ScoredSample]] = {}

    def copy_of(g: int, j: int) -> list[ScoredSample]:
        # A group drawn twice must count as two groups, not one group of double size, so a
        # grouped aggregate sees each copy under its own name.
        if j == 0 or members[g][0].sample.group is None:
            return members[g]
        if (g, j) not in copies:
            copies[(g, j)] = [replace(s, sample=replace(s.sample, group=f"{s.sample.group}#{j}")) for s in members[g]]
        return copies[(g, j)]

    draws = rng.integers(0, n_groups, size=(n_resamples, n_groups))  # (R, G)
    out = np.empty(n_resamples)
    for r, row in enumerate(draws):
        seen: dict[int, int] = {}
        resample: list[ScoredSample] = []
        for g in row.tolist():
            j = seen.get(g, 0)
            seen[g] = j + 1
            resample.extend(copy_of(g, j))
        value = metric.aggregate(resample)
        out[r] = np.nan if value is None else value
    return _interval(out, level)


def bootstrap_ci(scored: Sequence[ScoredSample], metric: Metric, groups: Sequence[str] | None = None,
                 n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float | None, float | None]:
    """A percentile interval for `metric` over `scored`, resampling whole groups.

    `groups` gives each sample's bootstrap unit (default: `group_keys(scored)`). Ungraded
    samples are dropped first (they are in no metric). Resamples where nothing applies are
    left out; (None, None) when nothing applies at all."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    groups = group_keys(scored) if groups is None else list(groups)
    if len(groups) != len(scored):
        raise ValueError(f"got {len(groups)} group keys for {len(scored)} samples")
    kept = [(s, g) for s, g in zip(scored, groups) if s.score.graded]
    if not kept:
        return None, None
    scored, groups = [s for s, _ in kept], [g for _, g in kept]
    index, n_groups = _group_index(groups)
    rng = np.random.default_rng(seed)
    name = mean_of_name(metric)
    if name is not None:
        return _mean_ci(scored, name, index, n_groups, n_resamples, rng, level)
    return _generic_ci(scored, metric, index, n_groups, n_resamples, rng, level)


def wilson(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a rate `p` over `n` independent units."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    scale = 1 + z * z / n
    center = (p + z * z / (2 * n)) / scale
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / scale
    return max(0.0, center - half), min(1.0, center + half)


def _hull(a: tuple[float | None, float | None], b: tuple[float, float]) -> tuple[float, float]:
    if a[0] is None or a[1] is None:
        return b
    return min(a[0], b[0]), max(a[1], b[1])


def metric_ci(scored: Sequence[ScoredSample], metric: Metric, groups: Sequence[str] | None = None,
              n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float | None, float | None]:
    """The interval a metric is reported with (see the module docstring for which one)."""
    groups = group_keys(scored) if groups is None else list(groups)
    kept = [(s, g) for s, g in zip(scored, groups) if s.score.graded]
    name = mean_of_name(metric)
    if name is not None:
        applies = [(s.score.values[name], g) for s, g in kept if s.score.values.get(name) is not None]
        if not applies:
            return None, None
        values = [v for v, _ in applies]
        if not all(0.0 <= v <= 1.0 for v in values):
            return bootstrap_ci(scored, metric, groups, n_resamples, seed, level)
        units = len({g for _, g in applies})
        rate = wilson(sum(values) / len(values), units, level)
        if units == len(values) and all(v in (0.0, 1.0) for v in values):
            return rate  # a plain proportion: Wilson is the interval
        return _hull(bootstrap_ci(scored, metric, groups, n_resamples, seed, level), rate)
    if metric.proportion and kept:
        value = metric.aggregate([s for s, _ in kept])
        if value is not None and 0.0 <= value <= 1.0:
            rate = wilson(value, len({g for _, g in kept}), level)
            return _hull(bootstrap_ci(scored, metric, groups, n_resamples, seed, level), rate)
    return bootstrap_ci(scored, metric, groups, n_resamples, seed, level)
