"""Walk-forward backtest: fold plan, no look-ahead, reuse of the pipeline, files, bad options.

Everything runs on synthetic CSV prices with a tiny minGRU (width 4, 1-2 epochs).
"""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

import cli
from forecast.backtest import plan_folds, run_backtest
from forecast.config import RunConfig
from forecast.errors import UserInputError
from forecast.metrics import METRIC_NAMES
from forecast.pipeline import load_dataset, run_training
from tests.pipeline_helpers import price_frame, write_csv
from tests.test_cli import _bad

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = dict(model="mingru", hidden=4, d_state=4, seq_len=10, epochs=2, batch_size=32, backend="numpy",
            split=(0.6, 0.2))
TINY_ARGS = ["--model", "mingru", "--hidden", "4", "--seq-len", "10", "--epochs", "1", "--batch-size", "32",
             "--backend", "numpy", "--split", "0.6,0.2", "--quiet"]


def _config(data, **kw) -> RunConfig:
    return RunConfig(data=data, **{**TINY, **kw})


@pytest.fixture
def prices(tmp_path):
    return write_csv(tmp_path / "prices.csv", price_frame(220, seed=3))


@pytest.mark.parametrize("horizon", [1, 3])
def test_folds_cut_the_test_windows_and_each_past_ends_at_its_first_today(prices, horizon):
    ds = load_dataset(_config(prices, horizon=horizon))
    test = ds.parts["test"]
    folds = plan_folds(ds, 4)
    np.testing.assert_array_equal(np.concatenate([f.windows for f in folds]), test)
    sizes = [len(f.windows) for f in folds]
    assert max(sizes) - min(sizes) <= 1 and [f.number for f in folds] == [1, 2, 3, 4]
    val_rows = ds.info["split"]["val"]["rows"]
    for f in folds:
        b1, b2 = f.bounds
        # the last past row is the today of the fold's first window, and validation is
        # the last V rows of that past
        assert ds.origin_dates[f.windows[0]] == ds.origin_dates[b2 - ds.seq_len] and b2 - b1 == val_rows
    if horizon == 1:
        # one step ahead, the first fold's past is exactly train's split
        assert folds[0].bounds == (ds.parts["val"][0] + ds.seq_len, ds.parts["test"][0] + ds.seq_len)


def test_bad_fold_counts_are_refused(prices):
    ds = load_dataset(_config(prices))
    for bad in (0, -1, len(ds.parts["test"]) + 1, 2.5):
        with pytest.raises(UserInputError, match="--folds"):
            plan_folds(ds, bad)
    with pytest.raises(UserInputError, match="--refit"):
        run_backtest(_config(prices), folds=2, refit="weekly", write=False, progress=False)
    with pytest.raises(UserInputError, match="--finetune-epochs"):
        run_backtest(_config(prices), folds=2, refit="finetune", finetune_epochs=0, write=False, progress=False)


def test_one_full_fold_reproduces_train(prices):
    # Same split, scalers, seed and settings: the backtest reuses the pipeline, not a copy.
    trained = run_training(_config(prices), progress=False, write=False)
    backtest = run_backtest(_config(prices), folds=1, write=False, progress=False)
    assert backtest["folds"][0]["training"]["best_epoch"] == trained["training"]["best_epoch"]
    for key in METRIC_NAMES:
        assert backtest["overall"]["model"][key] == pytest.approx(trained["metrics"]["test"][key],
                                                                  rel=1e-12, nan_ok=True)
        assert backtest["overall"]["naive"][key] == trained["metrics"]["naive"][key]


@pytest.mark.parametrize("refit, horizon, window_norm", [("full", 1, "last"), ("finetune", 2, "none")])
def test_no_fold_depends_on_prices_after_it(tmp_path, refit, horizon, window_norm):
    frame = price_frame(220, seed=5)
    config = dict(horizon=horizon, window_norm=window_norm)
    first = run_backtest(_config(write_csv(tmp_path / "a.csv", frame), **config), folds=3, refit=refit,
                         finetune_epochs=1, write=False, progress=False)
    # Change every price after the last today of fold 2: what fold 3 alone may see.
    cut = pd.Timestamp(first["folds"][1]["last_origin"])
    later = pd.to_datetime(frame["Date"]) > cut
    changed = frame.copy()
    rng = np.random.default_rng(0)
    for col in ("Open", "High", "Low", "Close", "Adj Close"):
        changed.loc[later, col] = changed.loc[later, col] * rng.uniform(0.7, 1.3, later.sum())
    second = run_backtest(_config(write_csv(tmp_path / "b.csv", changed), **config), folds=3, refit=refit,
                          finetune_epochs=1, write=False, progress=False)
    a, b = first["predictions"], second["predictions"]
    early = a["fold"] < 3
    np.testing.assert_array_equal(a.loc[early, "predicted"].to_numpy(), b.loc[early, "predicted"].to_numpy())
    # ...and the change did reach the last fold, so the comparison above could fail.
    assert not np.allclose(a.loc[~early, "predicted"], b.loc[~early, "predicted"])


def test_cli_backtest_writes_its_files(tmp_path, prices, capsys):
    out = tmp_path / "bt"
    assert cli.main(["backtest", "--data", prices, *TINY_ARGS, "--folds", "3", "--horizon", "2",
                     "--refit", "finetune", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fold 3:" in text and "Diebold-Mariano vs naive step 2" in text and "undefined" in text
    assert sorted(os.listdir(out)) == ["backtest.json", "backtest.png", "predictions.csv"]
    assert (out / "backtest.png").read_bytes()[:8] == PNG_MAGIC
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns) == ["date", "fold", "actual", "predicted", "naive", "origin_date", "step",
                                  "lower", "upper"]
    summary = json.loads((out / "backtest.json").read_text())
    assert summary["refit"] == "finetune" and summary["n_folds"] == 3 and summary["finetune_epochs"] == 3
    assert [f["training"]["started_from"] for f in summary["folds"]] == ["scratch", "previous fold",
                                                                         "previous fold"]
    for fold in summary["folds"]:
        rows = pred[pred["fold"] == fold["fold"]]
        assert len(rows) == 2 * fold["windows"]
        # the fold was trained on data up to its first today and no further
        assert fold["val"]["last_date"] == fold["first_origin"] == rows["origin_date"].min()
        assert set(fold["metrics"]) == {"model", "naive", "drift", "intervals"}
        err = rows["predicted"] - rows["actual"]
        assert fold["metrics"]["model"]["mae"] == pytest.approx(err.abs().mean())
        # each fold's intervals come from its own validation windows, scored as the CSV says
        inside = (rows["actual"] >= rows["lower"]) & (rows["actual"] <= rows["upper"])
        assert fold["metrics"]["model"]["coverage"] == pytest.approx(inside.mean())
        assert fold["metrics"]["intervals"]["calibration_windows"] == fold["val"]["windows"]
        assert fold["metrics"]["naive"]["direction_accuracy"] is None
    assert summary["overall"]["model"]["mae"] == pytest.approx((pred["predicted"] - pred["actual"]).abs().mean())
    inside = (pred["actual"] >= pred["lower"]) & (pred["actual"] <= pred["upper"])
    assert summary["overall"]["model"]["coverage"] == pytest.approx(inside.mean())
    assert {(t["against"], t["step"]) for t in summary["tests"]} == {(a, s) for a in ("naive", "drift")
                                                                     for s in (1, 2)}


@pytest.mark.parametrize("extra, needle", [(["--folds", "0"], "--folds"), (["--folds", "100000"], "--folds"),
                                           (["--refit", "weekly"], "--refit"),
                                           (["--refit", "finetune", "--finetune-epochs", "0"], "--finetune-epochs")])
def test_cli_bad_options_are_one_line_errors(tmp_path, prices, capsys, extra, needle):
    out = tmp_path / "bt"
    line = _bad(capsys, ["backtest", "--data", prices, *TINY_ARGS, "--out", str(out), *extra], out=str(out))
    assert needle in line
