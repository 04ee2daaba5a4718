"""Conformal intervals (forecast/intervals.py): the quantile's rank, coverage under
exchangeable errors, adaptation to a volatility change, and no look-ahead."""
from __future__ import annotations

import math

import numpy as np
import pytest

from forecast.intervals import (adaptive_bounds, check_level, conformal_quantile, coverage_metrics,
                                relative_scores, split_bounds)


def test_conformal_quantile_is_the_finite_sample_rank():
    scores = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0, 8.0, 6.0, 10.0])   # 1..10
    # rank ceil((n + 1) * level): 11 * 0.5 = 5.5 -> 6th smallest
    assert conformal_quantile(scores, 50.0) == 6.0
    assert conformal_quantile(scores, 90.0) == 10.0       # ceil(9.9) = 10
    assert math.isinf(conformal_quantile(scores, 95.0))   # ceil(10.45) = 11 > n: no finite quantile
    assert conformal_quantile(np.append(scores, np.nan), 50.0) == 6.0   # non-finite scores are left out


def test_split_intervals_cover_the_level_when_errors_are_exchangeable():
    rng = np.random.default_rng(0)
    n_cal, n = 2000, 20000
    base = np.full(n, 100.0)
    predicted = np.full((n, 1), 100.0)
    cal = np.abs(rng.standard_t(4, (n_cal, 1)))            # |error| / base of heavy-tailed errors
    actual = predicted + base[:, None] * rng.standard_t(4, (n, 1))
    lower, upper = split_bounds(cal, predicted, base, 90.0)
    cov = coverage_metrics(actual, lower, upper)["coverage"]
    # Binomial spread of 20,000 draws around >= 0.90 (plus the calibration set's own): +-0.012
    assert 0.888 <= cov <= 0.915


def test_adaptive_intervals_recover_coverage_after_a_volatility_change():
    rng = np.random.default_rng(1)
    n = 6000
    base = np.full(n, 1.0)
    predicted = np.zeros((n, 1))
    cal = np.abs(rng.normal(0, 1.0, (500, 1)))
    errors = rng.normal(0, 2.0, (n, 1))                   # volatility doubled after calibration
    scores = relative_scores(errors, predicted, base)
    split = coverage_metrics(errors, *split_bounds(cal, predicted, base, 90.0))["coverage"]
    adaptive = coverage_metrics(errors, *adaptive_bounds(cal, scores, predicted, base, 90.0))["coverage"]
    assert split < 0.70                 # the fixed quantile is far too narrow
    assert abs(adaptive - 0.90) < 0.02


def test_adaptive_interval_uses_only_outcomes_known_at_its_origin():
    rng = np.random.default_rng(2)
    n, H = 300, 3
    base = 50 + rng.random(n)
    predicted = 50 + rng.normal(0, 1, (n, H))
    actual = predicted + rng.normal(0, 1, (n, H))
    cal = np.abs(rng.normal(0, 0.02, (100, H)))
    scores = relative_scores(actual, predicted, base)
    lo, up = adaptive_bounds(cal, scores, predicted, base, 80.0)
    t = 150
    for h in range(H):
        later = scores.copy()
        # Window j's step-(h+1) outcome arrives at window j + h + 1: those with j + h + 1 > t
        # are unknown at origin t, so changing them must leave intervals up to t unchanged.
        later[t - h:, h] = 99.0
        lo2, up2 = adaptive_bounds(cal, later, predicted, base, 80.0)
        np.testing.assert_array_equal(lo2[:t + 1, h], lo[:t + 1, h])
        np.testing.assert_array_equal(up2[:t + 1, h], up[:t + 1, h])
        assert not np.array_equal(up2[:, h], up[:, h])     # they do matter later


def test_intervals_scale_with_todays_price_and_contain_the_forecast():
    cal = np.array([[0.01], [0.02], [0.03]] * 10)
    lower, upper = split_bounds(cal, np.array([[100.0], [200.0]]), np.array([100.0, 200.0]), 60.0)
    half = (upper - lower)[:, 0] / 2
    np.testing.assert_allclose(half[1], 2 * half[0])
    assert (lower[:, 0] < [100.0, 200.0]).all() and (upper[:, 0] > [100.0, 200.0]).all()


@pytest.mark.parametrize("bad", [0, 100, -5, 150, float("nan"), float("inf")])
def test_levels_outside_zero_to_hundred_are_refused(bad):
    with pytest.raises(ValueError, match="--level"):
        check_level(bad)
