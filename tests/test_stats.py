"""Timing statistics: exact quantiles and reproducible bootstrap intervals."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from kernelloop.sandbox.stats import Interval, Summary, bootstrap_ratio, quantile, summarize


def test_known_quantiles_odd_and_even():
    s = summarize([5, 1, 4, 2, 3])
    assert (s.n, s.median, s.q1, s.q3, s.iqr, s.min, s.max) == (5, 3, 2, 4, 2, 1, 5)
    assert s.mean == 3 and s.std == pytest.approx(statistics.stdev([1, 2, 3, 4, 5]))
    s = summarize([4.0, 1.0, 3.0, 2.0], unit="us")
    assert (s.median, s.q1, s.q3, s.iqr, s.unit) == (2.5, 1.75, 3.25, 1.5, "us")


def test_single_sample_has_zero_spread():
    s = summarize([0.42])
    assert (s.n, s.median, s.std, s.iqr) == (1, 0.42, 0.0, 0.0)


def test_quantile_matches_numpy_linear_definition():
    values = [0.0, 10.0, 20.0, 30.0]
    assert quantile(values, 0.0) == 0 and quantile(values, 1.0) == 30
    assert quantile(values, 0.9) == pytest.approx(27.0)  # numpy.quantile(values, 0.9)


def test_empty_and_non_finite_samples_are_rejected():
    with pytest.raises(ValueError, match="no samples"):
        summarize([])
    with pytest.raises(ValueError, match="NaN"):
        summarize([1.0, float("nan")])
    with pytest.raises(ValueError, match="no samples"):
        bootstrap_ratio([1.0], [])


def test_summary_round_trips_through_json():
    s = summarize([1.0, 2.0, 3.5], unit="ms")
    assert Summary.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    assert str(s) == "2 ms (IQR 1.25, n=3)"


def _times(rng: random.Random, center: float, n: int, spread: float = 0.05) -> list[float]:
    return [center * (1 + rng.gauss(0, spread)) for _ in range(n)]


def test_interval_contains_the_point_and_is_ordered():
    rng = random.Random(1)
    ci = bootstrap_ratio(_times(rng, 2.0, 50), _times(rng, 1.0, 50))
    assert ci.low <= ci.point <= ci.high and ci.point in ci
    assert ci.point == pytest.approx(2.0, rel=0.05)
    assert (ci.confidence, ci.method) == (0.95, "bootstrap-percentile")


def test_interval_narrows_with_more_samples():
    rng = random.Random(2)
    small = bootstrap_ratio(_times(rng, 1.5, 10), _times(rng, 1.0, 10))
    large = bootstrap_ratio(_times(rng, 1.5, 400), _times(rng, 1.0, 400))
    assert large.high - large.low < (small.high - small.low) / 2


def test_deterministic_for_a_seed_and_different_across_seeds():
    rng = random.Random(3)
    num, den = _times(rng, 1.2, 30), _times(rng, 1.0, 30)
    assert bootstrap_ratio(num, den, seed=7) == bootstrap_ratio(num, den, seed=7)
    assert bootstrap_ratio(num, den, seed=7) != bootstrap_ratio(num, den, seed=8)


def test_clearly_faster_candidate_has_lower_bound_above_one():
    rng = random.Random(4)
    baseline, candidate = _times(rng, 1.0, 40), _times(rng, 0.5, 40)  # 2x faster
    ci = bootstrap_ratio(baseline, candidate)
    assert ci.low > 1.0


def test_indistinguishable_times_straddle_one():
    rng = random.Random(5)
    ci = bootstrap_ratio(_times(rng, 1.0, 40), _times(rng, 1.0, 40))
    assert ci.low < 1.0 < ci.high


def test_higher_confidence_is_wider_and_mean_stat_works():
    rng = random.Random(6)
    num, den = _times(rng, 1.3, 30), _times(rng, 1.0, 30)
    ci90 = bootstrap_ratio(num, den, confidence=0.90, stat="mean")
    ci99 = bootstrap_ratio(num, den, confidence=0.99, stat="mean")
    assert ci99.low < ci90.low and ci99.high > ci90.high
    assert ci90.point == pytest.approx(statistics.fmean(num) / statistics.fmean(den))


def test_bad_arguments_say_what_is_allowed():
    with pytest.raises(ValueError, match="stat must be one of"):
        bootstrap_ratio([1.0], [1.0], stat="p90")
    with pytest.raises(ValueError, match="ratio is undefined"):
        bootstrap_ratio([1.0], [0.0])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ratio([1.0], [1.0], confidence=95)


def test_interval_round_trips_through_json():
    ci = Interval(point=1.5, low=1.2, high=1.9, confidence=0.95)
    assert Interval.from_dict(json.loads(json.dumps(ci.to_dict()))) == ci
    assert str(ci) == "1.5x (95% CI 1.2-1.9)"
