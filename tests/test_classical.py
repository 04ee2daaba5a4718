"""Classical baselines (``arima``, ``ets``, ``theta``): statsforecast's forecasts, no look-ahead,
one run in a study beside the neural models, walk-forward backtest, bad names.

Everything runs on synthetic CSV prices of a few hundred days, so each fit takes a
fraction of a second. Speed on the bundled data is the bench's business, not asserted here.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cli
from forecast.classical import closes, is_classical
from forecast.classical_run import CLASSICAL_RUN_FILES, classical_run
from forecast.config import RunConfig
from forecast.pipeline import load_dataset
from forecast.study.significance import ONE_RUN
from models.names import CLASSICAL
from tests.pipeline_helpers import price_frame, write_csv
from tests.test_cli import _bad
from tests.test_layering import ROOT, _imports

pytest.importorskip("statsforecast")

SPLIT = (0.6, 0.2)


def _config(data, **kw) -> RunConfig:
    return RunConfig(data=data, **{"model": "arima", "seq_len": 10, "split": SPLIT, "backend": "numpy", **kw})


@pytest.fixture(scope="module")
def prices(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("classical") / "prices.csv", price_frame(260, seed=7))


@pytest.mark.parametrize("name, target", [("arima", "close"), ("ets", "close"), ("theta", "close"),
                                          ("arima", "return")])
def test_forecasts_are_statsforecast_applied_to_the_history_of_each_day(prices, name, target):
    from statsforecast import models as sf

    horizon = 2
    run = classical_run(_config(prices, model=name, target=target, horizon=horizon))
    ds = run.dataset
    close = closes(ds)
    b1 = ds.info["split"]["train"]["rows"]
    # The same model, fitted independently on the training rows, then applied to each
    # day's history with its fitted parameters (statsforecast's forward).
    cls = {"arima": sf.AutoARIMA, "ets": sf.AutoETS, "theta": sf.AutoTheta}[name]
    series = close if target == "close" else np.log(close[1:] / close[:-1])
    offset = 0 if target == "close" else 1
    model = cls(season_length=1).fit(series[:b1 - offset])
    pred = run.predictions
    test = ds.parts["test"]
    assert len(pred) == len(test) * horizon
    for k in (0, len(test) // 2, len(test) - 1):
        today = int(test[k]) + ds.seq_len - 1
        mean = model.forward(y=series[:today + 1 - offset], h=horizon)["mean"]
        expected = mean if target == "close" else close[today] * np.exp(np.cumsum(mean))
        got = pred.loc[pred["origin_date"] == str(pd.Timestamp(ds.origin_dates[test[k]]).date()), "predicted"]
        np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-12)
    # Metrics in price units beside the same naive forecast every run reports.
    err = pred["predicted"] - pred["actual"]
    assert run.metrics["test"]["mae"] == pytest.approx(err.abs().mean(), rel=1e-12)
    assert run.metrics["naive"]["mae"] == pytest.approx((pred["naive"] - pred["actual"]).abs().mean(), rel=1e-12)
    files = run.files()
    assert tuple(files) == CLASSICAL_RUN_FILES and json.loads(files["history.json"]) == []
    summary = json.loads(files["summary.json"])
    assert summary["training"]["stop_reason"] == "fitted" and summary["training"]["fit_rows"] == b1
    assert summary["model_config"]["class"] == cls.__name__
    assert summary["model_config"]["series"] == ("close" if target == "close" else "log return")


def test_closes_are_the_rows_of_the_dataset(prices):
    ds = load_dataset(_config(prices, model="hybrid", horizon=3))
    close = closes(ds)
    frame = pd.read_csv(prices)
    np.testing.assert_array_equal(close, frame["Adj Close"].to_numpy(float))


@pytest.mark.parametrize("name, horizon", [("arima", 1), ("ets", 3), ("theta", 2)])
def test_no_forecast_depends_on_a_price_after_its_day(tmp_path, name, horizon):
    frame = price_frame(260, seed=11)
    first = classical_run(_config(write_csv(tmp_path / "a.csv", frame), model=name, horizon=horizon))
    ds = first.dataset
    origins = pd.to_datetime(ds.origin_dates[ds.parts["test"]])
    cut = origins[len(origins) // 2]
    # Change every price after that day: the forecasts made on or before it must not move.
    later = pd.to_datetime(frame["Date"]) > cut
    changed = frame.copy()
    rng = np.random.default_rng(0)
    for col in ("Open", "High", "Low", "Close", "Adj Close"):
        changed.loc[later, col] = changed.loc[later, col] * rng.uniform(0.7, 1.3, later.sum())
    second = classical_run(_config(write_csv(tmp_path / "b.csv", changed), model=name, horizon=horizon))
    known = np.repeat(np.asarray(origins <= cut), horizon)     # predictions.csv: window by step
    a, b = first.predictions["predicted"].to_numpy(), second.predictions["predicted"].to_numpy()
    np.testing.assert_array_equal(a[known], b[known])
    # ...and the change reached the later forecasts, so the comparison above could fail.
    assert not np.allclose(a[~known], b[~known])


# -- in a study ---------------------------------------------------------------------------

TINY = ["--models", "mingru,hybrid,arima,ets", "--seeds", "2", "--epochs", "1", "--hidden", "4",
        "--d-state", "4", "--seq-len", "10", "--batch-size", "32", "--backend", "numpy", "--split", "0.6,0.2"]


@pytest.fixture(scope="module")
def study(tmp_path_factory, prices):
    out = tmp_path_factory.mktemp("compare") / "study"
    assert cli.main(["compare", "--data", prices, *TINY, "--jobs", "1", "--out", str(out)]) == 0
    return out


def test_a_study_runs_each_classical_model_once_with_the_files_of_a_run(study):
    for name in ("arima", "ets"):
        assert sorted(p.name for p in (study / "runs" / name).iterdir()) == ["seed0"]
        run = study / "runs" / name / "seed0"
        assert sorted(p.name for p in run.iterdir()) == sorted(CLASSICAL_RUN_FILES)
        assert json.loads((run / "config.json").read_text())["model"] == name
        pred = pd.read_csv(run / "predictions.csv")
        assert list(pred.columns) == ["date", "actual", "predicted", "naive", "lower", "upper"]
        # a baseline's intervals are calibrated like a trained model's, on the validation days
        metrics = json.loads((run / "metrics.json").read_text())
        inside = (pred["actual"] >= pred["lower"]) & (pred["actual"] <= pred["upper"])
        assert metrics["test"]["coverage"] == pytest.approx(inside.mean())
        assert metrics["intervals"]["calibration"] == "val" and metrics["intervals"]["calibration_windows"] > 0
    assert sorted(p.name for p in (study / "runs" / "mingru").iterdir()) == ["seed0", "seed1"]


def test_summary_rows_and_tests_include_the_classical_models(study):
    with open(study / "summary.csv", newline="") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    for name in ("arima", "ets"):
        assert rows[name]["n_seeds"] == "1" and float(rows[name]["rmse_std"]) == 0.0
        metrics = json.loads((study / "runs" / name / "seed0" / "metrics.json").read_text())
        assert float(rows[name]["rmse_mean"]) == metrics["test"]["rmse"]
    tests = json.loads((study / "summary.json").read_text())["tests"]
    dm = {(t["model"], t["against"]) for t in tests if t["test"] == "diebold-mariano"}
    assert {("arima", "naive"), ("ets", "naive"), ("hybrid", "arima"), ("hybrid", "ets"),
            ("hybrid", "mingru"), ("mingru", "naive"), ("hybrid", "naive")} == dm
    for t in tests:
        if t["test"] == "diebold-mariano":
            assert t["p_value"] is not None and math.isfinite(t["p_value"])
        elif "arima" in (t["model"], t["against"]) or "ets" in (t["model"], t["against"]):
            assert t["note"] == ONE_RUN and t["p_value"] is None
    report = (study / "report.md").read_text()
    assert "| ARIMA (auto) |" in report and "| ETS (auto) |" in report
    assert "hybrid vs arima:" in report and f"– ({ONE_RUN})" in report


def test_plan_gives_a_classical_model_one_seed(tmp_path):
    import argparse

    from forecast.study import compare, plan as planning

    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    args = parser.parse_args(["--models", "gru,theta", "--seeds", "3", "--out", str(tmp_path)])
    runs = planning.plan_study(args, cores=2).runs
    assert sorted((s.model, s.seed) for s in runs) == [("gru", 0), ("gru", 1), ("gru", 2), ("theta", 0)]


# -- backtest and bad input ---------------------------------------------------------------

def test_backtest_refits_a_classical_model_before_each_fold(tmp_path, prices, capsys):
    out = tmp_path / "bt"
    assert cli.main(["backtest", "--model", "ets", "--data", prices, "--seq-len", "10", "--split", "0.6,0.2",
                     "--horizon", "2", "--folds", "3", "--quiet", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fold 3:" in text and "ETS(" in text and "Diebold-Mariano vs naive step 2" in text
    summary = json.loads((out / "backtest.json").read_text())
    assert summary["model"] == "ets" and summary["n_folds"] == 3
    pred = pd.read_csv(out / "predictions.csv")
    for fold in summary["folds"]:
        assert fold["training"]["stop_reason"] == "fitted" and fold["training"]["epochs_run"] == 0
        # each fold's fit reads its own training rows: they grow fold by fold
        assert fold["training"]["fit_rows"] == fold["train"]["rows"]
        assert len(pred[pred["fold"] == fold["fold"]]) == 2 * fold["windows"]
    assert len({f["training"]["fit_rows"] for f in summary["folds"]}) == 3


@pytest.mark.parametrize("argv, needle", [
    (["compare", "--models", "arima,prophet"], "unknown model(s) prophet"),
    (["compare", "--protocol", "ltsf", "--data", "ett:ETTh1", "--models", "arima,ets"],
     "arima/ets are not available under --protocol ltsf yet"),
    (["backtest", "--model", "prophet"], "--model"),
    (["backtest", "--model", "arima", "--refit", "finetune"], "--refit finetune"),
    (["train", "--model", "arima"], "--model"),
])
def test_bad_names_are_one_line_errors(tmp_path, capsys, argv, needle):
    out = tmp_path / "x"
    assert needle in _bad(capsys, [*argv, "--out", str(out)], out=str(out))


def test_the_names_have_one_home_and_models_does_not_import_statsforecast():
    assert CLASSICAL == ("arima", "ets", "theta") and all(is_classical(n) for n in CLASSICAL)
    assert not is_classical("hybrid")
    found = [f"{path.relative_to(ROOT)}:{line}" for path in sorted((ROOT / "models").rglob("*.py"))
             for line, name in _imports(path) if name.split(".")[0] == "statsforecast"]
    assert not found
    assert Path(ROOT / "forecast" / "classical.py").is_file()
