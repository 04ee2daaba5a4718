"""The Python API (forecast/api.py) end to end, as a notebook uses it: train, load, evaluate,
predict, backtest and compare with keyword options, pandas results, clear exceptions."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecast import api
from forecast.errors import UserInputError
from tests.pipeline_helpers import offline_yahoo, price_frame, write_csv

TINY = dict(hidden=4, d_state=4, seq_len=8, epochs=2, batch_size=32, split="0.6,0.2")


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    offline_yahoo(tmp_path, monkeypatch)


def test_the_api_end_to_end(tmp_path):
    data = write_csv(tmp_path / "prices.csv", price_frame(300, seed=5))
    run = api.train(model="mingru", data=data, out=str(tmp_path / "run"), **TINY)
    # The run's files and the returned frames say the same thing.
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(run.metrics.columns) == ["model", "naive", "drift"]
    assert run.metrics.loc["mae", "model"] == metrics["test"]["mae"]
    assert run.metrics.loc["coverage", "naive"] == metrics["naive"]["coverage"]
    assert np.isnan(run.metrics.loc["direction_accuracy", "naive"])      # undefined: null in the file
    pd.testing.assert_frame_equal(run.predictions, pd.read_csv(tmp_path / "run" / "predictions.csv"))
    assert len(run.history) == 2 and run.config["model"] == "mingru"

    model = api.load(run.checkpoint)
    again = model.evaluate()
    pd.testing.assert_frame_equal(again.metrics, run.metrics)
    ahead = model.predict(steps=2)
    assert list(ahead.columns) == ["date", "step", "forecast", "lower", "upper"]
    assert ahead.attrs["last_date"] == run.predictions["date"].iloc[-1]
    assert (ahead["lower"] < ahead["forecast"]).all() and (ahead["forecast"] < ahead["upper"]).all()

    bt = api.backtest(model="ets", data=data, folds=2, out=str(tmp_path / "bt"), **TINY)
    assert list(bt.folds["fold"]) == [1, 2] and set(bt.tests["against"]) == {"naive", "drift"}
    assert bt.overall.loc["mae", "model"] == pytest.approx((bt.predictions["predicted"]
                                                            - bt.predictions["actual"]).abs().mean())

    study = api.compare(data=data, models=["mingru", "arima"], seeds=1, jobs=1, backend="numpy",
                        out=str(tmp_path / "study"), **TINY)
    assert study.failures == {} and study.report.endswith("report.md")
    assert {"mingru", "arima"} <= set(study.summary["model"])


def test_bad_arguments_raise_clear_exceptions(tmp_path):
    with pytest.raises(UserInputError, match="unknown option 'hiden'.*'hidden'"):
        api.train(hiden=4)
    with pytest.raises(UserInputError, match="--lr"):
        api.run_config(lr=-1)
    with pytest.raises(UserInputError, match="compare: unknown option 'seed_count'"):
        api.compare(seed_count=3, out=str(tmp_path / "never"))
    with pytest.raises(UserInputError, match="missing.npz"):
        api.load(tmp_path / "missing.npz")
    with pytest.raises(UserInputError, match="out=DIR"):
        api.train(resume=True)
    assert not (tmp_path / "never").exists()


def test_a_config_file_and_keywords_combine_as_on_the_command_line(tmp_path):
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"model": "gru", "hidden": 12, "lr": 0.002}))
    cfg = api.run_config(best, hidden=6)
    assert (cfg.model, cfg.hidden, cfg.lr) == ("gru", 6, 0.002)
