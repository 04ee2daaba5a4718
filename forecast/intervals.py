"""Conformal prediction intervals from the errors on data the model was not trained on.

A forecast ``p`` of a price whose window ends at today's price ``b`` gets the interval
``p +- q * b``: ``q`` is a quantile of the *scores* ``|actual - predicted| / b`` (the
absolute error relative to today's price) of forecasts whose outcome the model never
trained on. Relative scores keep one quantile valid across a decade in which the price
level moves several-fold; absolute errors calibrated in a cheap year give too narrow
intervals in an expensive one. Each step ahead has its own quantile (a forecast five
days out errs more than one a day out).

Two methods (the first the default):

* ``adaptive`` (adaptive conformal inference, Gibbs & Candes 2021): the calibration set
  starts as the validation part's scores and grows with every test outcome once it is
  known (the outcome of a step-``h`` forecast ``h`` days after its origin, never
  earlier), and the miscoverage target ``alpha_t`` is corrected after each:
  ``alpha_{t+1} = alpha_t + gamma * (alpha - err_t)``, ``err_t`` 1 when the revealed
  outcome fell outside its interval. Long-run coverage tends to ``level`` whatever the
  drift.
* ``split`` (split conformal, Vovk et al. 2005; Lei et al. 2018): ``q`` is the
  ``ceil((n + 1) * level) / n`` empirical quantile of the ``n`` calibration scores (the
  validation part's), fixed for the whole test part. Covers ``level`` of future forecasts
  on average when calibration and test errors are exchangeable: a series whose
  volatility drifts breaks that.

Pure NumPy: the core of the intervals has no application dependency.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["INTERVAL_METHODS", "DEFAULT_LEVEL", "ACI_GAMMA", "check_level", "relative_scores",
           "conformal_quantile", "split_bounds", "adaptive_bounds", "interval_bounds", "coverage_metrics"]

#: Interval methods; the first is the default: its long-run coverage holds for any sequence
#: of errors (Gibbs & Candes 2021, Prop. 4.1), where split conformal needs exchangeable
#: ones, which prices whose volatility comes and goes are not.
INTERVAL_METHODS = ("adaptive", "split")
#: Nominal coverage of the intervals, in percent.
DEFAULT_LEVEL = 90.0
#: Step size of adaptive conformal inference (Gibbs & Candes 2021 use 0.005).
ACI_GAMMA = 0.005


def check_level(level) -> float:
    """``level`` in percent as a float strictly between 0 and 100, else ValueError."""
    value = float(level)
    if not 0.0 < value < 100.0 or not math.isfinite(value):
        raise ValueError(f"--level {level}: the interval's coverage in percent, strictly between 0 and 100 "
                         "(e.g. 90)")
    return value


def relative_scores(actual, predicted, base) -> np.ndarray:
    """Conformity scores ``|actual - predicted| / base``, shape (n, horizon).

    Parameters
    ----------
    actual, predicted : array_like, shape (n, horizon)
        Prices.
    base : array_like, shape (n,)
        Today's price of each window (positive).
    """
    actual, predicted = np.asarray(actual, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    base = np.asarray(base, dtype=np.float64).reshape(-1, 1)
    return np.abs(actual - predicted) / base


def conformal_quantile(scores, level: float) -> float:
    """The split-conformal quantile of ``scores`` at ``level`` percent.

    The ``ceil((n + 1) * level / 100)``-th smallest score (the finite-sample correction
    that makes the coverage at least ``level`` under exchangeability); ``inf`` when
    ``n`` is too small for that rank to exist (an honest infinite interval, rather than
    a quantile that cannot cover).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    rank = math.ceil((len(s) + 1) * level / 100.0)
    if rank > len(s) or rank < 1:
        return math.inf
    return float(np.partition(s, rank - 1)[rank - 1])


def split_bounds(calibration, predicted, base, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Split-conformal ``(lower, upper)``, each shape (n, horizon).

    Parameters
    ----------
    calibration : array_like, shape (n_cal, horizon)
        Scores (:func:`relative_scores`) of calibration forecasts.
    predicted : array_like, shape (n, horizon)
    base : array_like, shape (n,)
    level : float
        Percent.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    calibration = np.asarray(calibration, dtype=np.float64).reshape(-1, predicted.shape[1])
    q = np.array([conformal_quantile(calibration[:, h], level) for h in range(predicted.shape[1])])
    half = q[None, :] * np.asarray(base, dtype=np.float64)[:, None]
    return predicted - half, predicted + half


def adaptive_bounds(calibration, scores, predicted, base, level: float, gamma: float = ACI_GAMMA,
                    steps=None) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive conformal ``(lower, upper)`` over consecutive windows, each shape (n, horizon).

    Window ``t``'s step-``h`` outcome is known from window ``t + h`` on (the windows are
    consecutive days): only then does its score join the calibration set and
    its hit or miss correct ``alpha`` (see the module docstring).

    Parameters
    ----------
    calibration : array_like, shape (n_cal, horizon)
        Scores known before the first window.
    scores : array_like, shape (n, horizon)
        Scores of the windows themselves, revealed one by one as their outcomes arrive.
    predicted : array_like, shape (n, horizon)
    base : array_like, shape (n,)
    level : float
        Percent.
    gamma : float
        Step size of the ``alpha`` correction.
    steps : sequence of int, optional
        The step ahead of each column (default ``1 .. horizon``): column ``c``'s outcome
        is known ``steps[c]`` windows after its origin.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    n, horizon = predicted.shape
    calibration = np.asarray(calibration, dtype=np.float64).reshape(-1, horizon)
    scores = np.asarray(scores, dtype=np.float64).reshape(n, horizon)
    base = np.asarray(base, dtype=np.float64)
    alpha = 1.0 - level / 100.0
    q = np.empty((n, horizon))
    lags = np.arange(1, horizon + 1) if steps is None else np.asarray(steps, dtype=np.int64)
    for h in range(horizon):
        known = list(calibration[:, h][np.isfinite(calibration[:, h])])
        alpha_t = alpha
        for t in range(n):
            j = t - int(lags[h])     # the window whose outcome at this step is today's price
            if j >= 0:
                known.append(scores[j, h])
                alpha_t += gamma * (alpha - float(scores[j, h] > q[j, h]))
            # alpha_t <= 0 asks for an interval certain to cover: the widest score known
            # (Gibbs & Candes take an infinite one; a finite bound keeps widths comparable).
            target = min(max(100.0 * (1.0 - alpha_t), 0.0), 100.0)
            q[t, h] = conformal_quantile(known, target) if target < 100.0 else math.inf
            if not math.isfinite(q[t, h]) and known:
                q[t, h] = max(known)
    half = q * base[:, None]
    return predicted - half, predicted + half


def interval_bounds(method: str, calibration, scores, predicted, base, level: float):
    """``(lower, upper)`` of ``method`` (one of :data:`INTERVAL_METHODS`); ``scores`` (the
    windows' own, revealed as their outcomes arrive) is used by ``adaptive`` only."""
    if method == "split":
        return split_bounds(calibration, predicted, base, level)
    if method == "adaptive":
        return adaptive_bounds(calibration, scores, predicted, base, level)
    raise ValueError(f"interval method {method!r}: choose one of {', '.join(INTERVAL_METHODS)}")


def coverage_metrics(actual, lower, upper) -> dict:
    """``coverage`` (share of forecasts whose outcome lies in its interval, over every
    window and step) and ``interval_width`` (mean ``upper - lower``, in price units)."""
    actual = np.asarray(actual, dtype=np.float64)
    inside = (actual >= lower) & (actual <= upper)
    width = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    return {"coverage": float(inside.mean()) if inside.size else float("nan"),
            "interval_width": float(width.mean()) if width.size else float("nan")}
