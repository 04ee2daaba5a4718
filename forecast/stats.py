"""Significance tests for forecast comparisons: pure functions on arrays.

* :func:`diebold_mariano`: do two forecasts of the same series have equal expected loss?
  Diebold & Mariano (1995) with the small-sample correction of Harvey, Leybourne &
  Newbold (1997), two-sided, p-value from Student's t with ``n - 1`` degrees of freedom.
* :func:`welch_t_test`: do two samples (e.g. a metric over seeds) have equal means,
  without assuming equal variances (Welch 1947, Satterthwaite degrees of freedom)?
* :func:`holm_adjust`: Holm's step-down adjustment of a family of p-values.

Only the t distribution comes from SciPy; the statistics are computed here, so the
tests can check them against SciPy's own tests and against hand computations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["SIGNIFICANCE_LEVEL", "DM_TEST", "WELCH_TEST", "DM_METHOD", "TestResult", "squared_error_differential", "autocovariance",
           "diebold_mariano", "welch_t_test", "holm_adjust"]

#: The level at which the project calls a difference significant (two-sided tests).
SIGNIFICANCE_LEVEL = 0.05
#: Names of the tests in result files (``test`` key).
DM_TEST = "diebold-mariano"
WELCH_TEST = "welch-t"
#: How the project applies the Diebold-Mariano test, for result files and reports.
DM_METHOD = ("squared-error loss, Harvey-Leybourne-Newbold corrected, two-sided, Student's t with "
             "n - 1 degrees of freedom, one test per forecast step with the autocovariances up to "
             "lag step - 1")


@dataclass(frozen=True)
class TestResult:
    """Outcome of one test.

    Attributes
    ----------
    statistic : float
        NaN when the test is undefined (too few values, no variance).
    p_value : float
        Two-sided; NaN when the statistic is.
    df : float
        Degrees of freedom of the reference t distribution.
    n : int
        Number of values the test used (loss differentials, or both samples together).
    note : str
        Why the test is undefined, or which fallback it used; "" otherwise.
    """

    __test__ = False  # not a pytest test class, whatever its name says

    statistic: float
    p_value: float
    df: float
    n: int
    note: str = ""

    @property
    def defined(self) -> bool:
        """Whether the test produced a statistic."""
        return math.isfinite(self.statistic)


def _t_two_sided(statistic: float, df: float) -> float:
    from scipy.stats import t   # SciPy is slow to import; only the tests need it

    return float(2.0 * t.sf(abs(statistic), df))


def _undefined(n: int, df: float, note: str) -> TestResult:
    return TestResult(float("nan"), float("nan"), df, n, note)


def squared_error_differential(actual, forecast_a, forecast_b) -> np.ndarray:
    """Loss differential ``(a - actual)^2 - (b - actual)^2`` per forecast.

    Negative values are days where forecast ``a`` was closer; its mean is the
    difference of the two mean squared errors.
    """
    actual = np.asarray(actual, dtype=np.float64)
    return ((np.asarray(forecast_a, dtype=np.float64) - actual) ** 2
            - (np.asarray(forecast_b, dtype=np.float64) - actual) ** 2)


def autocovariance(x, lag: int) -> float:
    """Sample autocovariance at ``lag``: ``sum_t (x_t - m)(x_{t-lag} - m) / n``.

    Divided by ``n`` (not ``n - lag``), as Diebold & Mariano and R's ``acf`` do.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    centred = x - x.mean()
    if lag >= n:
        return 0.0
    return float(np.dot(centred[lag:], centred[:n - lag]) / n)


def diebold_mariano(loss_differential, horizon: int = 1) -> TestResult:
    """Diebold-Mariano test of equal predictive accuracy, HLN-corrected, two-sided.

    Parameters
    ----------
    loss_differential : array_like, shape (n,)
        ``loss(a) - loss(b)`` per forecast origin, in time order (e.g.
        :func:`squared_error_differential`). A negative statistic says ``a`` had the
        smaller loss.
    horizon : int
        Steps ahead of the forecasts compared. Optimal ``h``-step forecast errors are
        correlated up to lag ``h - 1``, so the variance of the mean differential is
        ``(gamma_0 + 2 * sum_{k=1}^{h-1} gamma_k) / n`` (autocovariances of the
        differential). Pass the forecasts of one step at a time.

    Returns
    -------
    TestResult
        ``statistic = sqrt((n + 1 - 2h + h(h - 1)/n) / n) * mean / sqrt(variance)``,
        ``p_value`` from Student's t with ``df = n - 1``. When the variance estimate of
        an ``h > 1`` test is not positive (negative autocovariances can make it so) the
        test falls back to ``h = 1`` for the variance and the correction, and says so in
        ``note`` (as R's ``forecast::dm.test`` does). Undefined (NaN) for fewer than two
        finite values or a differential without variance.
    """
    d = np.asarray(loss_differential, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    n = int(d.size)
    h = int(horizon)
    if h < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if n < 2:
        return _undefined(n, float(max(n - 1, 0)), "fewer than two loss differentials")
    note = ""
    variance = (autocovariance(d, 0) + 2.0 * sum(autocovariance(d, k) for k in range(1, h))) / n
    if h > 1 and not variance > 0:
        note = (f"long-run variance with lags up to {h - 1} was not positive; "
                "used the lag-0 variance (h = 1)")
        h = 1
        variance = autocovariance(d, 0) / n
    if not variance > 0:
        return _undefined(n, float(n - 1), "the loss differential has no variance")
    correction = (n + 1 - 2 * h + h * (h - 1) / n) / n
    if not correction > 0:
        return _undefined(n, float(n - 1), f"too few values ({n}) for horizon {h}")
    statistic = math.sqrt(correction) * float(d.mean()) / math.sqrt(variance)
    return TestResult(statistic, _t_two_sided(statistic, n - 1), float(n - 1), n, note)


def welch_t_test(a, b) -> TestResult:
    """Welch's two-sample t-test of equal means, two-sided.

    Parameters
    ----------
    a, b : array_like
        Two independent samples (NaN values are dropped). A sample without spread
        (e.g. a naive forecast's metric, the same for every seed) is allowed: the test
        then asks whether the other sample's mean differs from that value.

    Returns
    -------
    TestResult
        ``statistic = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b)`` (sample
        variances, ``ddof=1``), ``df`` by Welch-Satterthwaite. Undefined for a sample
        of fewer than two values or when neither sample has spread.
    """
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    n = int(x.size + y.size)
    if x.size < 2 or y.size < 2:
        return _undefined(n, float("nan"), "each sample needs at least two values")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    if not va + vb > 0:
        return _undefined(n, float("nan"), "neither sample has any spread")
    statistic = float((x.mean() - y.mean()) / math.sqrt(va + vb))
    df = float((va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1)))
    return TestResult(statistic, _t_two_sided(statistic, df), df, n)


def holm_adjust(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN).

    With ``m`` finite p-values sorted ascending, the ``i``-th (from 0) becomes
    ``max_{j <= i} min(1, (m - j) p_(j))``. Rejecting where the adjusted value is
    below the level keeps the chance of any false rejection in the family below it.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out
