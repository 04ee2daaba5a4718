"""The significance tests of forecast/stats.py against independent references.

References: SciPy's own tests (one-sample t, Welch), hand computation on small series,
and known properties (size under the null, the effect of the autocovariance term).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from forecast.stats import (autocovariance, diebold_mariano, holm_adjust, squared_error_differential,
                            welch_t_test)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_step_dm_with_hln_correction_is_the_one_sample_t_test(seed):
    # With h = 1: DM = mean / sqrt(gamma0 / n) with gamma0 dividing by n, and the HLN
    # factor sqrt((n - 1) / n) turns it into mean / (s / sqrt(n)) with s the ddof=1
    # deviation: exactly the one-sample t statistic, with the same n - 1 degrees of freedom.
    rng = np.random.default_rng(seed)
    d = rng.normal(0.2, 1.0, 37)
    ours = diebold_mariano(d, horizon=1)
    ref = sps.ttest_1samp(d, 0.0)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours.df == 36 and ours.n == 37 and ours.note == ""


def test_multi_step_dm_by_hand():
    # d = 2, 4, 3, 1, 0, 2: mean 2, centred 0, 2, 1, -1, -2, 0, n = 6.
    # gamma0 = 10/6; gamma1 = (0*2 + 2*1 + 1*-1 + -1*-2 + -2*0)/6 = 3/6;
    # gamma2 = (0*1 + 2*-1 + 1*-2 + -1*0)/6 = -4/6.
    d = np.array([2.0, 4.0, 3.0, 1.0, 0.0, 2.0])
    assert autocovariance(d, 0) == pytest.approx(10 / 6)
    assert autocovariance(d, 1) == pytest.approx(3 / 6)
    assert autocovariance(d, 2) == pytest.approx(-4 / 6)
    # h = 2: V = (10/6 + 2*3/6) / 6 = 4/9, DM = 2 / (2/3) = 3;
    # HLN: sqrt((6 + 1 - 4 + 2*1/6) / 6) = sqrt(5/9), so the statistic is sqrt(5).
    two = diebold_mariano(d, horizon=2)
    assert two.statistic == pytest.approx(math.sqrt(5), rel=1e-12)
    assert two.p_value == pytest.approx(2 * sps.t.sf(math.sqrt(5), 5), rel=1e-10)
    # h = 3: V = (10/6 + 2*(3/6 - 4/6)) / 6 = 2/9, DM = 2 / sqrt(2/9) = 3 sqrt(2);
    # HLN: sqrt((7 - 6 + 3*2/6) / 6) = sqrt(1/3), so the statistic is sqrt(6).
    three = diebold_mariano(d, horizon=3)
    assert three.statistic == pytest.approx(math.sqrt(6), rel=1e-12)
    assert three.df == 5 and three.note == ""


def test_non_positive_long_run_variance_falls_back_to_one_step():
    # d = 1, -2, 3, 0, 2, -1 alternates: gamma1 = -11.75/6 outweighs gamma0 = 17.5/6.
    d = np.array([1.0, -2.0, 3.0, 0.0, 2.0, -1.0])
    assert autocovariance(d, 0) + 2 * autocovariance(d, 1) < 0
    res = diebold_mariano(d, horizon=2)
    assert "not positive" in res.note
    assert res.statistic == pytest.approx(sps.ttest_1samp(d, 0.0).statistic, rel=1e-12)


def test_undefined_cases_are_nan_with_a_reason():
    for d, why in (([1.0], "fewer than two"), ([0.5, 0.5, 0.5], "no variance"),
                   ([np.nan, 1.0], "fewer than two")):
        res = diebold_mariano(d)
        assert math.isnan(res.statistic) and math.isnan(res.p_value) and why in res.note
        assert not res.defined
    with pytest.raises(ValueError):
        diebold_mariano([1.0, 2.0], horizon=0)


def test_squared_error_differential_is_negative_where_the_first_forecast_is_closer():
    actual = np.array([10.0, 10.0, 10.0])
    d = squared_error_differential(actual, [10.5, 9.0, 10.0], [11.0, 9.5, 10.0])
    np.testing.assert_allclose(d, [0.25 - 1.0, 1.0 - 0.25, 0.0])


def _ma1_differentials(rng, reps, n, theta):
    e = rng.normal(0.0, 1.0, (reps, n + 1))
    return e[:, 1:] + theta * e[:, :-1]


def test_two_step_dm_holds_its_size_where_ignoring_the_autocovariance_does_not():
    # Under the null (mean-zero MA(1) differential, what 2-step forecast errors give),
    # the test with the lag-1 autocovariance rejects at about the nominal 5%; the
    # one-step variance underestimates the spread (by (1 + theta)^2 / (1 + theta^2) =
    # 1.8 here) and rejects far too often.
    rng = np.random.default_rng(12345)
    sims = _ma1_differentials(rng, 2000, 60, 0.5)
    with_lag = np.mean([diebold_mariano(d, horizon=2).p_value < 0.05 for d in sims])
    without = np.mean([diebold_mariano(d, horizon=1).p_value < 0.05 for d in sims])
    assert 0.03 <= with_lag <= 0.08
    assert without > 0.10


@pytest.mark.parametrize("sizes, scales", [((5, 5), (1.0, 1.0)), ((3, 8), (0.5, 2.0)),
                                           ((10, 4), (3.0, 0.2))])
def test_welch_matches_scipy(sizes, scales):
    rng = np.random.default_rng(sum(sizes))
    a = rng.normal(1.0, scales[0], sizes[0])
    b = rng.normal(1.5, scales[1], sizes[1])
    ours = welch_t_test(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours.df == pytest.approx(ref.df, rel=1e-12)


def test_welch_against_a_constant_sample_is_the_one_sample_test():
    # A naive forecast's metric is the same for every seed: the test then asks whether
    # the models' per-seed values have that mean.
    a = np.array([1.2, 1.4, 1.1, 1.3])
    ours = welch_t_test(a, [1.0, 1.0, 1.0, 1.0])
    ref = sps.ttest_1samp(a, 1.0)
    assert ours.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours.df == pytest.approx(3.0)
    assert math.isnan(welch_t_test([1.0, 1.0], [2.0, 2.0]).statistic)
    assert math.isnan(welch_t_test([1.0], [2.0, 3.0]).p_value)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04;
    # running maximum 0.02, 0.03, 0.06, 0.06; back in the given order:
    np.testing.assert_allclose(holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    adjusted = holm_adjust([0.5, np.nan, 0.6])
    assert math.isnan(adjusted[1])
    np.testing.assert_allclose(adjusted[[0, 2]], [1.0, 1.0])     # capped at 1
    assert holm_adjust([]).size == 0
