"""Prediction intervals of a run's forecasts, calibrated on its validation part.

The forecasts of a run (:func:`forecast.pipeline.forecast_prices`, or a classical
baseline's) are a dict of arrays: ``actual``, ``predicted``, ``naive``, ``drift`` and
``base``. :func:`add_bounds` adds, for each interval method and each of the three
forecasts, the key ``("bounds", method, forecast)``: an array (n, horizon, 2) of lower
and upper bounds. Keeping them as arrays in the same dict lets a backtest pool its
folds the way it pools the forecasts (concatenating every key).

The naive and drift forecasts get intervals by the same recipe as the model: a model's
interval is worth something only if it is narrower than the one "tomorrow = today"
earns at the same coverage.
"""
from __future__ import annotations

import numpy as np

from forecast.intervals import INTERVAL_METHODS, coverage_metrics, interval_bounds, relative_scores

__all__ = ["FORECAST_KEYS", "add_bounds", "bounds_of", "interval_metrics"]

#: ``{metrics.json key: forecasts key}`` of the forecasts that get intervals.
FORECAST_KEYS = {"test": "predicted", "naive": "naive", "drift": "drift"}


def add_bounds(prices: dict, calibration: dict, level: float) -> dict:
    """``prices`` with the bounds of every method and forecast added (a new dict).

    Parameters
    ----------
    prices : dict
        Forecasts of the windows to bound (keys as :func:`forecast.pipeline.forecast_prices`).
    calibration : dict
        The same keys for the calibration windows (outcomes the model never trained on).
    level : float
        Nominal coverage in percent.
    """
    out = dict(prices)
    for forecast in FORECAST_KEYS.values():
        cal = relative_scores(calibration["actual"], calibration[forecast], calibration["base"])
        own = relative_scores(prices["actual"], prices[forecast], prices["base"])
        for method in INTERVAL_METHODS:
            lower, upper = interval_bounds(method, cal, own, prices[forecast], prices["base"], level)
            out[("bounds", method, forecast)] = np.stack([lower, upper], axis=-1)
    return out


def bounds_of(prices: dict, method: str, forecast: str = "predicted"):
    """``(lower, upper)`` of one method and forecast, or ``None`` when ``prices`` has none."""
    b = prices.get(("bounds", method, forecast))
    return None if b is None else (b[..., 0], b[..., 1])


def interval_metrics(prices: dict, info: dict) -> tuple[dict, dict] | None:
    """Coverage of the bounds in ``prices``; ``None`` when it has none.

    Parameters
    ----------
    prices : dict
        With the keys :func:`add_bounds` adds.
    info : dict
        ``level``, ``method`` (the one reported as each forecast's ``coverage`` and
        ``interval_width``) and how the intervals were calibrated, copied into the block.

    Returns
    -------
    per_forecast : dict
        ``{"test" | "naive" | "drift": {"coverage": ..., "interval_width": ...}}`` of ``info["method"]``.
    block : dict
        ``info`` plus ``methods``: the same figures for every method.
    """
    if bounds_of(prices, info["method"]) is None:
        return None
    methods = {}
    for method in INTERVAL_METHODS:
        methods[method] = {key: coverage_metrics(prices["actual"], *bounds_of(prices, method, forecast))
                           for key, forecast in FORECAST_KEYS.items()}
    return methods[info["method"]], {**info, "methods": methods}
