"""Bootstrap intervals: group resampling, the vectorised mean path against the generic one, speed."""

from __future__ import annotations

import random
import time

import pytest

from ponder.evals.stats import bootstrap_ci, group_keys, mean_of_name
from ponder.evals.task import Metric, Sample, Score, ScoredSample, mean_of
from tests.evals.conftest import completion


def scored(values, groups=None, graded=None) -> list[ScoredSample]:
    out = []
    for i, v in enumerate(values):
        sample = Sample(f"s{i}", (), group=None if groups is None else groups[i])
        ok = True if graded is None else graded[i]
        out.append(ScoredSample(sample, (completion("x"),), Score({"x": v}, graded=ok)))
    return out


def generic(name: str) -> Metric:
    """The same mean as mean_of, but opaque to the fast path."""
    inner = mean_of(name)
    return Metric(name, lambda s: inner(s))


def test_mean_of_metrics_are_recognised_and_others_are_not():
    assert mean_of_name(Metric("pass@1", mean_of("pass@1"))) == "pass@1"
    assert mean_of_name(generic("pass@1")) is None


def test_interval_brackets_the_value_and_matches_the_binomial_width():
    rng = random.Random(0)
    values = [float(rng.random() < 0.5) for _ in range(400)]
    p = sum(values) / len(values)
    low, high = bootstrap_ci(scored(values), Metric("x", mean_of("x")))
    assert low < p < high
    # normal approximation: 2 * 1.96 * sqrt(p(1-p)/n) ~ 0.098
    assert 0.08 < high - low < 0.12


def test_fast_and_generic_paths_agree():
    rng = random.Random(1)
    values = [rng.choice([0.0, 1.0, None]) for _ in range(300)]
    fast = bootstrap_ci(scored(values), Metric("x", mean_of("x")), n_resamples=2000)
    slow = bootstrap_ci(scored(values), generic("x"), n_resamples=2000)
    assert fast[0] == pytest.approx(slow[0], abs=0.02) and fast[1] == pytest.approx(slow[1], abs=0.02)


@pytest.mark.parametrize("make_metric", [lambda: Metric("x", mean_of("x")), lambda: generic("x")])
def test_groups_are_resampled_whole(make_metric):
    # 20 groups of 10 identical samples carry the information of 20 samples, not 200.
    values = [float(g % 2) for g in range(20) for _ in range(10)]
    groups = [f"g{g}" for g in range(20) for _ in range(10)]
    metric = make_metric()
    low_g, high_g = bootstrap_ci(scored(values, groups), metric)
    low_i, high_i = bootstrap_ci(scored(values), metric)
    assert (high_g - low_g) > 2.5 * (high_i - low_i)


def test_a_group_drawn_twice_counts_as_two_groups():
    # An aggregate over groups (like goodness@0.1) must see every drawn copy as its own group.
    groups = [f"g{g}" for g in range(12) for _ in range(3)]
    metric = Metric("groups", lambda s: float(len({x.sample.group for x in s})))
    assert bootstrap_ci(scored([1.0] * len(groups), groups), metric) == (12.0, 12.0)


def test_ungraded_samples_and_inapplicable_values_are_left_out():
    values = [1.0, 1.0, 0.0, None]
    graded = [True, True, False, True]
    assert bootstrap_ci(scored(values, graded=graded), Metric("x", mean_of("x"))) == (1.0, 1.0)
    assert bootstrap_ci(scored([None, None]), Metric("x", mean_of("x"))) == (None, None)
    assert bootstrap_ci([], generic("x")) == (None, None)


def test_same_seed_same_interval_and_explicit_groups():
    values = [float(i % 3 == 0) for i in range(90)]
    s = scored(values)
    metric = Metric("x", mean_of("x"))
    assert bootstrap_ci(s, metric, seed=3) == bootstrap_ci(s, metric, seed=3)
    assert bootstrap_ci(s, metric, groups=group_keys(s)) == bootstrap_ci(s, metric)
    with pytest.raises(ValueError):
        bootstrap_ci(s, metric, groups=["a"])


def test_500_samples_take_well_under_a_second():
    rng = random.Random(2)
    s = scored([float(rng.random() < 0.3) for _ in range(500)])
    for metric, limit in ((Metric("x", mean_of("x")), 0.1), (generic("x"), 1.0)):
        start = time.perf_counter()
        bootstrap_ci(s, metric)
        assert time.perf_counter() - start < limit


def test_all_pass_gets_a_wilson_interval_not_a_point():
    """11 of 11 was reported 1.000 [1.000, 1.000]: every bootstrap resample of eleven 1s is 1."""
    from ponder.evals.run import metric_result

    result = metric_result(Metric("x", mean_of("x")), scored([1.0] * 11))
    assert result["value"] == 1.0 and result["n"] == 11
    assert result["ci_low"] == pytest.approx(0.7412, abs=1e-3) and result["ci_high"] == 1.0
    none = metric_result(Metric("x", mean_of("x")), scored([0.0] * 11))
    assert none["ci_low"] == 0.0 and none["ci_high"] == pytest.approx(0.2588, abs=1e-3)


def test_grouped_and_fractional_rates_are_at_least_as_wide_as_wilson_over_their_units():
    from ponder.evals.stats import metric_ci, wilson

    # 20 requests x 10 transformations, all safe: 20 independent units, not 200
    groups = [f"g{g}" for g in range(20) for _ in range(10)]
    low, high = metric_ci(scored([1.0] * 200, groups), Metric("x", mean_of("x")))
    assert (low, high) == pytest.approx(wilson(1.0, 20))
    # a custom aggregate that declares itself a rate over its groups
    worst = Metric("worst", lambda s: min(x.score.values["x"] for x in s), proportion=True)
    assert metric_ci(scored([1.0] * 200, groups), worst)[0] == pytest.approx(wilson(1.0, 20)[0])
    # values outside [0, 1] (token counts) keep the bootstrap
    assert metric_ci(scored([40.0] * 11), Metric("x", mean_of("x"))) == (40.0, 40.0)
