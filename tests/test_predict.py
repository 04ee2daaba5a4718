"""``cli.py predict``: forecasts past the last row agree with the run's own test forecasts,
recursion equals feeding the forecast back, dates follow the exchange or the data's
frequency, intervals are honest about what calibrated them, bad input is one line."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

import cli
from forecast.data.calendar import data_frequency, future_dates
from tests.pipeline_helpers import offline_yahoo, price_frame, write_csv

TINY = ["--model", "mingru", "--hidden", "4", "--seq-len", "8", "--epochs", "2", "--batch-size", "32",
        "--split", "0.6,0.2", "--quiet"]
#: The Thursday before Good Friday 2013 (NYSE closed on 2013-03-29, a weekday).
LAST_DAY = "2013-03-28"


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No test here may reach Yahoo."""
    offline_yahoo(tmp_path, monkeypatch)


def _frame(n=400):
    start = pd.bdate_range(end=LAST_DAY, periods=n)[0].strftime("%Y-%m-%d")
    return price_frame(n, seed=3, start=start)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny one-step model of the close's log return, and its data."""
    root = tmp_path_factory.mktemp("predict")
    frame = _frame()
    data = write_csv(root / "prices.csv", frame)
    out = root / "run"
    assert cli.main(["train", "--data", data, "--target", "return", "--out", str(out), *TINY]) == 0
    return out, frame, root


def _predict(capsys, checkpoint, *args):
    code = cli.main(["predict", "--checkpoint", str(checkpoint), *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def _read(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def test_first_step_equals_the_runs_test_forecast_from_the_same_day(run, tmp_path, capsys):
    out, frame, _ = run
    predictions = pd.read_csv(out / "predictions.csv")
    row = predictions.iloc[12]                      # a test day; its origin is the row before
    origin = frame.index[frame["Date"] == row["date"]][0] - 1
    cut = write_csv(tmp_path / "cut.csv", frame.iloc[:origin + 1])
    _predict(capsys, out / "checkpoint.npz", "--data", cut, "--out", str(tmp_path / "p.json"))
    got = _read(tmp_path / "p.json")
    step = got["forecasts"][0]
    assert step["date"] == row["date"]              # business days, as the CSV's dates
    np.testing.assert_allclose(step["forecast"], row["predicted"], rtol=1e-9)   # the CSV keeps 10 digits
    assert step["lower"] < step["forecast"] < step["upper"]


def test_recursive_steps_equal_feeding_the_forecast_back(run, tmp_path, capsys):
    out, frame, _ = run
    data = write_csv(tmp_path / "d.csv", frame)
    _predict(capsys, out / "checkpoint.npz", "--data", data, "--steps", "3", "--out", str(tmp_path / "a.json"))
    first = _read(tmp_path / "a.json")
    assert first["recursive"] and first["model_horizon"] == 1 and "recursive" in first["note"]
    f1 = first["forecasts"][0]
    extended = pd.concat([frame, frame.iloc[[-1]].assign(Date=f1["date"], Close=f1["forecast"],
                                                         **{"Adj Close": f1["forecast"]})], ignore_index=True)
    data2 = write_csv(tmp_path / "e.csv", extended)
    _predict(capsys, out / "checkpoint.npz", "--data", data2, "--steps", "2", "--out", str(tmp_path / "b.json"))
    second = _read(tmp_path / "b.json")
    np.testing.assert_allclose([s["forecast"] for s in second["forecasts"]],
                               [s["forecast"] for s in first["forecasts"][1:]], rtol=1e-10)
    # Each step's interval is calibrated on that step's own recursive errors.
    assert len(first["calibration"]["relative_half_width"]) == 3


def test_dates_follow_the_exchange_calendar_or_the_datas_frequency(run, tmp_path, capsys):
    out, frame, _ = run
    data = write_csv(tmp_path / "d.csv", frame)
    _predict(capsys, out / "checkpoint.npz", "--data", data, "--steps", "5", "--calendar", "XNYS",
             "--out", str(tmp_path / "x.csv"))
    exchange = pd.read_csv(tmp_path / "x.csv")
    assert list(exchange.columns) == ["date", "step", "forecast", "lower", "upper"]
    # Good Friday and the weekend are skipped by the exchange's sessions...
    assert list(exchange["date"]) == ["2013-04-01", "2013-04-02", "2013-04-03", "2013-04-04", "2013-04-05"]
    assert (exchange["lower"] < exchange["forecast"]).all() and (exchange["forecast"] < exchange["upper"]).all()
    _predict(capsys, out / "checkpoint.npz", "--data", data, "--steps", "2", "--out", str(tmp_path / "f.csv"))
    # ...while a CSV without an exchange steps on at its own frequency (business days).
    assert list(pd.read_csv(tmp_path / "f.csv")["date"]) == ["2013-03-29", "2013-04-01"]


def test_the_printed_table_names_level_method_and_dates(run, tmp_path, capsys):
    out, frame, _ = run
    data = write_csv(tmp_path / "d.csv", frame)
    text = _predict(capsys, out / "checkpoint.npz", "--data", data, "--level", "80", "--interval", "split")
    assert "80% split conformal" in text and LAST_DAY in text and "2013-03-29" in text


def test_data_frequency_of_hourly_and_calendar_daily_series():
    hourly = pd.date_range("2020-01-01", periods=50, freq="h")
    when, how = future_dates(hourly, 3, None)
    assert list(when) == list(pd.date_range("2020-01-03 02:00", periods=3, freq="h"))
    assert "frequency" in how
    daily = pd.date_range("2020-01-01", periods=50, freq="D")
    assert data_frequency(daily) == pd.tseries.frequencies.to_offset("D")


def test_bad_predict_input_is_one_line(run, tmp_path, capsys):
    out, frame, root = run
    ckpt = str(out / "checkpoint.npz")
    volume_run = root / "volume"
    data = write_csv(tmp_path / "d.csv", frame)
    if not volume_run.exists():
        assert cli.main(["train", "--data", data, "--features", "close,volume", "--out", str(volume_run),
                         *TINY]) == 0
    short = write_csv(tmp_path / "short.csv", frame.iloc[-5:])
    cases = [
        (["--checkpoint", str(volume_run / "checkpoint.npz"), "--data", data, "--steps", "3"], "close and return"),
        (["--checkpoint", ckpt, "--data", data, "--steps", "0"], "--steps"),
        (["--checkpoint", ckpt, "--data", data, "--level", "100"], "--level"),
        (["--checkpoint", ckpt, "--data", short], "rows"),
        (["--checkpoint", ckpt, "--data", data, "--out", str(tmp_path / "p.txt")], ".csv or a .json"),
        (["--checkpoint", ckpt, "--data", data, "--calendar", "NOPE"], "exchange code"),
        (["--checkpoint", str(tmp_path / "missing.npz")], "missing.npz"),
    ]
    for argv, words in cases:
        code = cli.main(["predict", *argv])
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (argv, err)
        assert words in lines[0], (argv, lines[0])
    assert not os.path.exists(tmp_path / "p.txt")
