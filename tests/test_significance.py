"""Significance tests of a study (summary.json ``tests``, the report's answer), on fake runs.

The expected numbers are recomputed here from the run files with pandas and SciPy,
independently of forecast/study/significance.py.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from forecast.study.report import build_report
from forecast.study.runs import load_study
from forecast.study.significance import comparisons, study_tests, verdict
from tests.test_report import make_run, make_study

# hybrid far closer than naive (random-walk steps of sd 2), mamba far worse
NOISE = {"mamba": 6.0, "mingru": 2.0, "hybrid": 0.5}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = make_study(tmp_path_factory.mktemp("sig"), NOISE)
    build_report(root, draw=False)
    return root


def _tests(root) -> list:
    return json.loads((Path(root) / "summary.json").read_text())["tests"]


def _seed_mean(root, model) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in sorted(Path(root, "runs", model).glob("seed*/predictions.csv"))]
    out = frames[0][["date", "actual", "naive"]].copy()
    out["predicted"] = np.mean([f["predicted"].to_numpy() for f in frames], axis=0)
    return out


def test_pairs_are_every_model_against_naive_and_the_hybrid_against_its_branches():
    assert comparisons(["mamba", "mingru", "hybrid", "gru"]) == [
        ("mamba", "naive"), ("mingru", "naive"), ("hybrid", "naive"), ("gru", "naive"),
        ("hybrid", "mamba"), ("hybrid", "mingru")]
    assert comparisons(["mamba", "gru"]) == [("mamba", "naive"), ("gru", "naive")]


def test_summary_json_holds_the_tests_with_the_agreed_keys(study):
    payload = json.loads((study / "summary.json").read_text())
    assert payload["significance_level"] == 0.05
    tests = payload["tests"]
    keys = {"data", "seq_len", "model", "against", "test", "statistic", "p_value"}
    assert all(keys <= set(t) for t in tests)
    dm = {(t["model"], t["against"]) for t in tests if t["test"] == "diebold-mariano"}
    welch = {(t["model"], t["against"]) for t in tests if t["test"] == "welch-t"}
    assert dm == welch == set(comparisons(list(NOISE)))
    assert {t["data"] for t in tests} == {"sample:AAPL"} and {t["seq_len"] for t in tests} == {20}


def test_dm_uses_the_seed_mean_forecast_and_matches_an_independent_t_test(study):
    # Horizon 1 with the HLN correction is the one-sample t-test of the loss differential.
    for t in (t for t in _tests(study) if t["test"] == "diebold-mariano"):
        model = _seed_mean(study, t["model"])
        actual = model["actual"].to_numpy()
        other = (model["naive"].to_numpy() if t["against"] == "naive"
                 else _seed_mean(study, t["against"])["predicted"].to_numpy())
        d = (model["predicted"].to_numpy() - actual) ** 2 - (other - actual) ** 2
        ref = sps.ttest_1samp(d, 0.0)
        assert t["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
        assert t["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert t["n"] == len(d) and t["mse_model"] == pytest.approx(np.mean((model["predicted"] - actual) ** 2))


# SciPy warns about the naive forecast's per-seed MSE values being identical: they are.
@pytest.mark.filterwarnings("ignore:Precision loss occurred")
def test_welch_uses_the_per_seed_mse_of_the_runs(study):
    def mse(model, key="test"):
        return [json.loads(p.read_text())[key]["mse"]
                for p in sorted(Path(study, "runs", model).glob("seed*/metrics.json"))]

    for t in (t for t in _tests(study) if t["test"] == "welch-t"):
        a = mse(t["model"])
        b = mse(t["model"], "naive") if t["against"] == "naive" else mse(t["against"])
        ref = sps.ttest_ind(a, b, equal_var=False)
        assert t["metric"] == "mse"
        assert t["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
        assert t["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)


def test_holm_is_applied_within_each_family(study):
    for kind in ("diebold-mariano", "welch-t"):
        family = [t for t in _tests(study) if t["test"] == kind]
        p = np.array([t["p_value"] for t in family])
        order = np.argsort(p)
        expected = np.maximum.accumulate(np.minimum(1, (len(p) - np.arange(len(p))) * p[order]))
        np.testing.assert_allclose([family[i]["p_holm"] for i in order], expected)


def test_verdicts_and_the_reported_answer(study):
    tests = {(t["model"], t["against"], t["test"]): t for t in _tests(study)}
    assert verdict(tests["hybrid", "naive", "diebold-mariano"]) == "better"
    assert verdict(tests["mamba", "naive", "diebold-mariano"]) == "worse"
    assert verdict(tests["hybrid", "mamba", "diebold-mariano"]) == "better"
    assert verdict({"statistic": -3.0, "p_holm": 0.2}) == "no significant difference"
    assert verdict({"statistic": None, "p_holm": None}) == "undefined"
    report = (study / "report.md").read_text().split("## Conclusion")[1]
    assert "**Answer at the 5% level.**" in report
    assert "significantly better: " in report and "hybrid" in report.split("significantly better: ")[1]
    assert "significantly worse: mamba" in report
    assert "hybrid vs mamba: better" in report


def _horizon_two_run(path, model, seed, noise):
    """A fake run with horizon 2: predictions per (origin_date, step)."""
    make_run(path, model, seed, 20, noise)
    rng = np.random.default_rng([seed, 7, len(model)])
    price = 100 + np.cumsum(np.random.default_rng(3).normal(0, 1, 62))
    origins = pd.bdate_range("2023-01-02", periods=62)
    rows = []
    for i in range(60):
        for step in (1, 2):
            rows.append({"date": origins[i + step].strftime("%Y-%m-%d"), "actual": price[i + step],
                         "predicted": price[i + step] + rng.normal(0, noise),
                         "naive": price[i], "origin_date": origins[i].strftime("%Y-%m-%d"), "step": step})
    pd.DataFrame(rows).to_csv(Path(path) / "predictions.csv", index=False)
    return pd.DataFrame(rows)


def test_horizon_two_tests_each_step_with_its_own_lags(tmp_path):
    frames = {}
    for model, noise in (("mamba", 1.0), ("hybrid", 0.3)):
        for seed in (0, 1):
            frames[model, seed] = _horizon_two_run(tmp_path / "runs" / model / f"seed{seed}", model, seed, noise)
    tests = study_tests(load_study(tmp_path / "runs"))
    dm = [t for t in tests if t["test"] == "diebold-mariano"]
    assert sorted({(t["model"], t["against"], t["step"]) for t in dm}) == sorted(
        (m, a, s) for m, a in (("mamba", "naive"), ("hybrid", "naive"), ("hybrid", "mamba")) for s in (1, 2))
    # step 2 of hybrid vs naive, by hand: lag-1 autocovariance in the variance, HLN with h = 2
    t = next(t for t in dm if (t["model"], t["against"], t["step"]) == ("hybrid", "naive", 2))
    rows = [f[f["step"] == 2] for k, f in frames.items() if k[0] == "hybrid"]
    pred = np.mean([r["predicted"].to_numpy() for r in rows], axis=0)
    actual, naive = rows[0]["actual"].to_numpy(), rows[0]["naive"].to_numpy()
    d = (pred - actual) ** 2 - (naive - actual) ** 2
    n, c = len(d), d - d.mean()
    variance = (c @ c / n + 2 * (c[1:] @ c[:-1]) / n) / n
    statistic = np.sqrt((n + 1 - 4 + 2 / n) / n) * d.mean() / np.sqrt(variance)
    assert t["statistic"] == pytest.approx(statistic, rel=1e-9)
    assert t["p_value"] == pytest.approx(2 * sps.t.sf(abs(statistic), n - 1), rel=1e-9)


def test_tests_are_grouped_by_data_source(tmp_path):
    root = make_study(tmp_path, {"mamba": 2.0, "hybrid": 1.0}, seeds=(0, 1))
    for cfg in root.glob("runs/*/seed1/config.json"):
        # seed 1 of every model "saw" another source: two groups of one seed each
        config = json.loads(cfg.read_text())
        cfg.write_text(json.dumps({**config, "data": "sample:MSFT"}))
    tests = study_tests(load_study(root / "runs"))
    assert {t["data"] for t in tests} == {"sample:AAPL", "sample:MSFT"}
    for data in ("sample:AAPL", "sample:MSFT"):
        welch = [t for t in tests if t["data"] == data and t["test"] == "welch-t"]
        # one seed per group: the Welch test is undefined and says why
        assert welch and all(t["p_value"] != t["p_value"] and t["note"] for t in welch)
