"""Metrics in price units and the naive baselines, on hand-checkable numbers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from forecast.metrics import (HIGHER_IS_BETTER, METRIC_LABELS, METRIC_NAMES, direction_accuracy,
                              drift_forecast, forecast_metrics, naive_forecast, naive_scale)


def test_hand_computed_example():
    base = np.array([10.0, 10.0, 10.0, 10.0])
    actual = np.array([11.0, 9.0, 12.0, 10.0])
    predicted = np.array([12.0, 9.5, 11.0, 10.0])
    m = forecast_metrics(actual, predicted, base, scale=0.5)
    # errors: -1, -0.5, 1, 0
    assert m["mse"] == pytest.approx((1 + 0.25 + 1 + 0) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt(2.25 / 4))
    assert m["mae"] == pytest.approx(2.5 / 4)
    assert m["mape"] == pytest.approx(100 * (1 / 11 + 0.5 / 9 + 1 / 12 + 0) / 4)
    assert m["mase"] == pytest.approx((2.5 / 4) / 0.5)
    # the naive forecast (10 each day) is off by 1, 1, 2, 0: MAE 1
    assert m["rel_mae"] == pytest.approx((2.5 / 4) / 1.0)
    # actual mean 10.5: SS_tot = 0.25 + 2.25 + 2.25 + 0.25 = 5
    assert m["r2"] == pytest.approx(1 - 2.25 / 5)
    # moves up, down, up, flat vs predicted up, down, up, flat: the flat one is left out
    assert m["direction_accuracy"] == pytest.approx(1.0)
    assert set(m) == set(METRIC_NAMES)


def test_direction_accuracy_counts_only_real_moves_and_zero_predictions_are_wrong():
    base = np.array([1.0, 1.0, 1.0, 1.0, 1.0])
    actual = np.array([2.0, 0.5, 2.0, 0.5, 1.0])
    predicted = np.array([1.5, 1.5, 1.0, 0.9, 7.0])
    # right, wrong, no-move-predicted (wrong), right; the last actual is flat: excluded
    assert direction_accuracy(base, actual, predicted) == pytest.approx(2 / 4)
    assert math.isnan(direction_accuracy(base, base, predicted))


def test_naive_forecast_has_mase_one_in_sample():
    prices = np.array([5.0, 6.0, 4.0, 4.5, 7.0, 6.0])
    scale = naive_scale(prices)
    assert scale == pytest.approx(np.mean([1, 2, 0.5, 2.5, 1]))
    # evaluated on the same series it was scaled by, the one-step naive has MASE exactly 1
    base, actual = prices[:-1], prices[1:]
    m = forecast_metrics(actual, naive_forecast(base)[:, 0], base, scale)
    assert m["mase"] == pytest.approx(1.0)
    assert m["rel_mae"] == 1.0
    # naive never calls a direction: its accuracy is undefined, not 0
    assert math.isnan(m["direction_accuracy"])


def test_rel_mae_compares_with_naive_on_the_same_days_at_any_price_level():
    # A test period at 10x the training price level: MASE (in-sample scale) explodes for
    # every forecast, naive included; rel_mae still says who beats naive.
    train = np.array([1.0, 1.1, 1.0, 1.1])
    scale = naive_scale(train)                          # 0.1
    base = np.array([10.0, 11.0, 12.0])
    actual = np.array([11.0, 12.0, 11.0])               # naive errors 1, 1, 1
    better = np.array([10.5, 11.5, 12.0])               # errors 0.5, 0.5, 1
    naive = forecast_metrics(actual, base, base, scale)
    model = forecast_metrics(actual, better, base, scale)
    assert naive["mase"] == pytest.approx(10.0) and model["mase"] == pytest.approx(2 / 3 / 0.1)
    assert naive["rel_mae"] == 1.0 and model["rel_mae"] == pytest.approx(2 / 3)
    # no naive error at all: the ratio is undefined
    assert math.isnan(forecast_metrics(base, better, base, scale)["rel_mae"])


def test_direction_accuracy_of_a_forecast_without_direction_is_undefined():
    base = np.array([1.0, 2.0, 3.0])
    actual = np.array([[1.5, 0.5], [2.5, 2.5], [2.0, 4.0]])
    assert math.isnan(direction_accuracy(base, actual, np.repeat(base[:, None], 2, axis=1)))
    # one called direction is enough to be scored; the pairs with no call count as wrong
    called = np.repeat(base[:, None], 2, axis=1)
    called[0, 0] = 1.2
    assert direction_accuracy(base, actual, called) == pytest.approx(1 / 6)


def test_every_metric_has_a_label_and_a_direction():
    assert set(METRIC_LABELS) == set(METRIC_NAMES)
    assert HIGHER_IS_BETTER <= set(METRIC_NAMES)


def test_naive_and_drift_baselines():
    history = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 2.0]])
    np.testing.assert_array_equal(naive_forecast(history[:, -1], 2), [[3, 3], [2, 2]])
    np.testing.assert_allclose(drift_forecast(history, 3), [[4, 5, 6], [0.5, -1, -2.5]])
    # a one-day window has no slope: drift is naive
    np.testing.assert_array_equal(drift_forecast(history[:, -1:], 2), [[3, 3], [2, 2]])


def test_multi_step_metrics_average_over_all_steps():
    base = np.array([10.0, 20.0])
    actual = np.array([[11.0, 12.0], [19.0, 18.0]])
    predicted = np.array([[11.0, 14.0], [21.0, 18.0]])
    m = forecast_metrics(actual, predicted, base, scale=1.0)
    assert m["mae"] == pytest.approx((0 + 2 + 2 + 0) / 4)
    # step 2 of window 0 and both steps of window 1 measured against today's price
    assert m["direction_accuracy"] == pytest.approx(3 / 4)


def test_non_finite_predictions_give_nan_metrics():
    m = forecast_metrics(np.ones(3), np.array([1.0, np.nan, 1.0]), np.ones(3), 1.0)
    assert all(math.isnan(v) for v in m.values())


def test_perfect_forecast():
    actual = np.array([1.0, 2.0, 3.0])
    m = forecast_metrics(actual, actual, np.array([0.5, 2.5, 2.0]), 1.0)
    assert m["mse"] == 0 and m["r2"] == 1 and m["mase"] == 0 and m["direction_accuracy"] == 1


@pytest.mark.parametrize("n, horizon", [(2, 1), (3, 1), (517, 1), (200, 3), (1999, 2)])
def test_metrics_equal_scikit_learn_to_the_last_bit(n, horizon):
    # The metrics are NumPy, written in scikit-learn's order of operations; its
    # implementations are the reference (a test dependency only).
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(n + horizon)
    actual = rng.lognormal(3, 0.5, (n, horizon))
    predicted = actual * (1 + 0.02 * rng.standard_normal((n, horizon)))
    got = forecast_metrics(actual, predicted, actual[:, 0] * 0.99, scale=1.0)
    a, p = actual.ravel(), predicted.ravel()
    assert got["mse"] == metrics.mean_squared_error(a, p)
    assert got["mae"] == metrics.mean_absolute_error(a, p)
    assert got["mape"] == metrics.mean_absolute_percentage_error(a, p) * 100.0
    assert got["r2"] == metrics.r2_score(a, p)
    constant = np.full((n, horizon), 4.0)
    assert forecast_metrics(constant, constant, constant[:, 0], 1.0)["r2"] == metrics.r2_score(
        constant.ravel(), constant.ravel()) == 1.0
    assert forecast_metrics(constant, constant + 1, constant[:, 0], 1.0)["r2"] == metrics.r2_score(
        constant.ravel(), constant.ravel() + 1) == 0.0
