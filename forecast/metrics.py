"""Forecast metrics in price units, and the naive baselines.

All functions take arrays of shape ``(N, horizon)`` (or ``(N,)``, read as horizon 1):
``actual`` and ``predicted`` prices of the targets and ``base``, shape ``(N,)``, each
window's *today* price (the last observed close).

For ``horizon > 1`` every (window, step) pair counts as one forecast: the arrays are
flattened and each metric is computed over all ``N * horizon`` pairs, so a metric is
the average over the steps. Direction is always judged against today's price, so a
step-3 forecast is "right" when it calls the sign of ``price[t+3] - price[t]``.

* ``mse``, ``rmse``, ``mae``, ``r2``: the usual (as scikit-learn computes them), in price units.
* ``mape``: mean absolute percentage error, in percent.
* ``mase``: MAE divided by the in-sample naive MAE, ``mean |y_t - y_{t-1}|`` over the
  training part's prices (one-step differences, whatever the horizon). Below 1 means
  better than a one-day naive forecast was *in sample*; when the test period trades at
  another price level than the training period, the naive forecast itself scores far
  from 1 (5.7 on the bundled AAPL test part), so MASE alone cannot say who beats naive.
* ``rel_mae``: MAE divided by the naive forecast's MAE on the *same* pairs (relative
  MAE). Below 1 means a smaller error than "tomorrow = today" over the same test days;
  the naive forecast scores exactly 1. Undefined (NaN) when the naive MAE is 0.
* ``direction_accuracy``: over the pairs whose actual move is not zero, the fraction
  whose predicted move has the same sign; a pair where the forecast predicts no move
  counts as wrong. A forecast that predicts no move at all (the naive forecast) calls
  no direction, so its accuracy is undefined (NaN), not 0.

NaN is "undefined": JSON files hold ``null`` (:func:`forecast.fileio.to_jsonable`) and
tables show it as such, never as a number.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "METRIC_NAMES",
    "HIGHER_IS_BETTER",
    "METRIC_LABELS",
    "naive_forecast",
    "drift_forecast",
    "naive_scale",
    "naive_mae",
    "direction_accuracy",
    "forecast_metrics",
]

#: Metric keys in the order files and tables show them.
METRIC_NAMES = ("mse", "rmse", "mae", "r2", "mape", "mase", "rel_mae", "direction_accuracy")
#: Metrics where a larger value is better; every other one is an error (smaller wins).
HIGHER_IS_BETTER = frozenset({"r2", "direction_accuracy"})
#: How tables and figures name each metric; ``{unit}`` is the price currency.
METRIC_LABELS = {"mse": "MSE ({unit}²)", "rmse": "RMSE ({unit})", "mae": "MAE ({unit})", "r2": "R²",
                 "mape": "MAPE (%)", "mase": "MASE", "rel_mae": "MAE / naive MAE",
                 "direction_accuracy": "direction accuracy"}


def _as_2d(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


def naive_forecast(base, horizon: int = 1) -> np.ndarray:
    """Tomorrow (and every later step) = today: ``base`` repeated, shape (N, horizon)."""
    base = np.asarray(base, dtype=np.float64)
    return np.repeat(base[:, None], horizon, axis=1)


def drift_forecast(history, horizon: int = 1) -> np.ndarray:
    """Naive with drift: today's price plus ``h`` times the window's mean daily change.

    Parameters
    ----------
    history : ndarray, shape (N, L)
        Prices of each input window, oldest first; the last column is today.
    horizon : int

    Returns
    -------
    ndarray, shape (N, horizon)
        ``history[:, -1] + h * (history[:, -1] - history[:, 0]) / (L - 1)`` for
        ``h = 1..horizon``; with ``L = 1`` there is no slope and this is the naive forecast.
    """
    history = _as_2d(history)
    last = history[:, -1]
    length = history.shape[1]
    slope = (last - history[:, 0]) / (length - 1) if length > 1 else np.zeros_like(last)
    steps = np.arange(1, horizon + 1, dtype=np.float64)
    return last[:, None] + slope[:, None] * steps[None, :]


def naive_scale(train_prices) -> float:
    """In-sample one-step naive MAE, ``mean |y_t - y_{t-1}|``: the MASE denominator."""
    p = np.asarray(train_prices, dtype=np.float64).ravel()
    if p.size < 2:
        return float("nan")
    return float(np.mean(np.abs(np.diff(p))))


def naive_mae(actual, base) -> float:
    """MAE of the naive forecast (every step = ``base``) on the given pairs: the
    ``rel_mae`` denominator."""
    actual = _as_2d(actual)
    base = np.asarray(base, dtype=np.float64).reshape(-1, 1)
    return float(np.mean(np.abs(actual - base))) if actual.size else float("nan")


def direction_accuracy(base, actual, predicted) -> float:
    """Share of non-zero actual moves whose sign the forecast got right (see module doc).

    NaN when no actual move is non-zero, or when the forecast predicts no move at all
    (it calls no direction, so there is nothing to score).
    """
    actual = _as_2d(actual)
    predicted = _as_2d(predicted)
    base = np.asarray(base, dtype=np.float64).reshape(-1, 1)
    true_move = np.sign(actual - base)
    pred_move = np.sign(predicted - base)
    moving = true_move != 0
    if not moving.any() or not pred_move.any():
        return float("nan")
    return float(np.mean(pred_move[moving] == true_move[moving]))


def _r2(a: np.ndarray, p: np.ndarray) -> float:
    """Coefficient of determination of one column; 1 for a perfect fit of a constant series."""
    residual = float(((a - p) ** 2).sum())
    total = float(((a - a.mean(axis=0)) ** 2).sum())
    if total == 0:
        return 1.0 if residual == 0 else 0.0
    return 1.0 - residual / total


def forecast_metrics(actual, predicted, base, scale: float) -> dict:
    """All of :data:`METRIC_NAMES` for one forecast.

    Parameters
    ----------
    actual, predicted : ndarray, shape (N, horizon) or (N,)
        Prices.
    base : ndarray, shape (N,)
        Today's price of each window.
    scale : float
        MASE denominator (:func:`naive_scale` of the training prices).

    Returns
    -------
    dict of str to float
        Every value NaN when a prediction is not finite.
    """
    actual = _as_2d(actual)
    predicted = _as_2d(predicted)
    if not np.all(np.isfinite(predicted)):
        return {k: float("nan") for k in METRIC_NAMES}
    # One column of (window, step) pairs; the sums run in scikit-learn's order, so the
    # values equal its mean_squared_error & co. to the last bit (tests/test_metrics.py).
    a, p = actual.reshape(-1, 1), predicted.reshape(-1, 1)
    err = p - a
    mse = float(np.mean(err ** 2))
    mae = float(np.mean(np.abs(err)))
    naive = naive_mae(actual, base)
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": mae,
        "r2": _r2(a, p) if a.size > 1 else float("nan"),
        "mape": float(np.mean(np.abs(err) / np.maximum(np.abs(a), np.finfo(np.float64).eps)) * 100.0),
        "mase": mae / scale if scale and np.isfinite(scale) and scale > 0 else float("nan"),
        "rel_mae": mae / naive if np.isfinite(naive) and naive > 0 else float("nan"),
        "direction_accuracy": direction_accuracy(base, actual, predicted),
    }
