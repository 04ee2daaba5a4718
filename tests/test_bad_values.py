"""Input that used to get through, tried as a new user would (issue 18, item 6).

Each case must end like any bad input: exit status 2, one ``error:`` line naming what is
wrong, no traceback, no run folder and no training state left behind. Before the fixes,
an ``inf`` or ``1e308`` price trained to a run folder of null metrics, ``--hidden
100000000`` ended in a MemoryError traceback and ``--seq-len 1000000000`` allocated 8 GB
before saying the series was too short.
"""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import cli
from forecast.config import RunConfig
from forecast.memory import check_training_memory, check_window_memory, training_bytes
from models import build_model
from models.footprint import activation_count, parameter_count
from tests.pipeline_helpers import price_frame, write_csv
from tests.test_cli import TINY, _bad

TINY_NUMPY = [*TINY, "--backend", "numpy"]


def _train_bad(capsys, tmp_path, data, *extra):
    out = str(tmp_path / "out")
    line = _bad(capsys, ["train", *TINY_NUMPY, "--data", data, "--out", out, *extra], out=out)
    assert not [p for p in os.listdir(tmp_path) if p.startswith("out")]   # nor out.partial
    return line


def _csv(tmp_path, change, n=160):
    raw = price_frame(n)
    change(raw)
    return write_csv(tmp_path / "prices.csv", raw)


# -- values in the data --------------------------------------------------------------------

@pytest.mark.parametrize("column, value, words", [
    ("Adj Close", np.inf, ["'adj_close'", "inf", "2015-05-22", "finite"]),
    ("Close", -np.inf, ["'close'", "-inf", "2015-05-22"]),
    ("Adj Close", 1e308, ["'adj_close'", "1e+308", "2015-05-22", "overflow"]),
    ("Close", -1e200, ["'close'", "-1e+200", "overflow"]),
])
def test_non_finite_and_overflowing_prices_are_refused(tmp_path, capsys, column, value, words):
    def change(raw):
        raw[column] = raw[column].astype(float)
        raw.loc[100, column] = value
    line = _train_bad(capsys, tmp_path, _csv(tmp_path, change), *(["--window-norm", "none"]
                                                                  if value < 0 else []))
    for word in words:
        assert word in line


def test_infinity_spelled_in_the_file_is_refused(tmp_path, capsys):
    path = tmp_path / "prices.csv"
    text = write_csv(path, price_frame(160))
    lines = path.read_text().splitlines()
    cells = lines[50].split(",")
    cells[4] = "Infinity"                                # Close
    lines[50] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    assert "'close' holds inf" in _train_bad(capsys, tmp_path, text)


def test_negative_volume_is_refused_only_when_volume_is_used(tmp_path, capsys):
    def change(raw):
        raw.loc[100, "Volume"] = -50
    data = _csv(tmp_path, change)
    line = _train_bad(capsys, tmp_path, data, "--features", "close,volume")
    assert "'volume' holds -50" in line and "negative" in line
    assert cli.main(["train", *TINY_NUMPY, "--data", data, "--out", str(tmp_path / "ok")]) == 0


def test_a_price_that_overflows_after_scaling_is_refused(tmp_path, capsys):
    def change(raw):
        raw.loc[100, ["Close", "Adj Close"]] = 1e-300    # every window around it: 50 / 1e-300
    line = _train_bad(capsys, tmp_path, _csv(tmp_path, change))
    assert "after --window-norm last" in line and "2015-05-22" in line and "overflow" in line


def test_a_series_that_never_moves_is_refused(tmp_path, capsys):
    def change(raw):
        raw.loc[:, ["Open", "High", "Low", "Close", "Adj Close"]] = 50.0
    assert "never moves" in _train_bad(capsys, tmp_path, _csv(tmp_path, change))


def test_dates_outside_pandas_range_select_the_whole_file(tmp_path, capsys):
    data = write_csv(tmp_path / "prices.csv", price_frame(160))
    out = tmp_path / "run"
    assert cli.main(["train", *TINY_NUMPY, "--data", data, "--out", str(out), "--start", "0001-01-01",
                     "--end", "9999-12-31"]) == 0
    capsys.readouterr()
    assert json.loads((out / "summary.json").read_text())["data"]["rows"] == 160


# -- sizes ---------------------------------------------------------------------------------

def test_a_model_too_big_for_memory_is_refused_with_the_estimate(tmp_path, capsys):
    data = write_csv(tmp_path / "prices.csv", price_frame(160))
    start = time.perf_counter()
    line = _train_bad(capsys, tmp_path, data, "--hidden", "100000000")
    assert time.perf_counter() - start < 30
    assert "--hidden 100000000" in line and "2e+16 parameters" in line and "PiB" in line
    assert "available" in line


def test_a_window_too_long_for_the_data_is_refused_without_allocating(tmp_path, capsys):
    data = write_csv(tmp_path / "prices.csv", price_frame(160))
    start = time.perf_counter()
    assert "series too short" in _train_bad(capsys, tmp_path, data, "--seq-len", "1000000000")
    assert time.perf_counter() - start < 10     # it used to allocate 8 GB first


def test_window_arrays_beyond_memory_are_refused():
    assert check_window_memory(1000, 60, 1, 1, available=10 ** 9) < 10 ** 9
    with pytest.raises(Exception, match="--seq-len 50000"):
        check_window_memory(100_000, 50_000, 5, 1, available=10 ** 9)


@pytest.mark.parametrize("config", [
    dict(name="mamba", input_size=3, hidden_size=20, d_state=5, n_layers=2, horizon=2, fusion="scalar"),
    dict(name="mingru", input_size=1, hidden_size=7, d_state=5, n_layers=3, horizon=1, fusion="scalar"),
    dict(name="gru", input_size=4, hidden_size=6, d_state=5, n_layers=2, horizon=3, fusion="scalar"),
    dict(name="hybrid", input_size=2, hidden_size=33, d_state=4, n_layers=1, horizon=1, fusion="scalar"),
    dict(name="hybrid", input_size=2, hidden_size=8, d_state=4, n_layers=2, horizon=1, fusion="channel"),
    dict(name="hybrid", input_size=2, hidden_size=8, d_state=4, n_layers=1, horizon=2, fusion="gate"),
    dict(name="hybrid", input_size=3, hidden_size=8, d_state=4, n_layers=1, horizon=6, fusion="scalar",
         channels="independent", seq_len=24, seg_len=6, norm="revin", linear_path=True),
    dict(name="gru", input_size=3, hidden_size=8, d_state=4, n_layers=1, horizon=6, fusion="scalar",
         channels="mixed", seq_len=24, seg_len=4, norm="none", linear_path=False),
])
def test_parameter_count_is_exact_without_building(config):
    model = build_model(**config, backend="numpy")
    assert parameter_count(model.config) == model.num_parameters()
    assert activation_count(model.config, batch=4, seq_len=24) > 0


def test_training_memory_estimate_grows_with_sizes_and_refuses_over_the_limit():
    small = RunConfig(model="hybrid", hidden=16, seq_len=60, batch_size=64).validate()
    big = RunConfig(model="hybrid", hidden=512, seq_len=60, batch_size=64).validate()
    assert training_bytes(small, 1)[1] < 50 * 2 ** 20 < training_bytes(big, 1)[1]
    # A batch is never larger than the training windows.
    assert training_bytes(small, 1, windows=8)[1] < training_bytes(small, 1)[1]
    assert check_training_memory(small, 1, available=2 ** 30) > 0
    with pytest.raises(Exception, match=r"about .* of memory .* more than the 1.0 MiB available"):
        check_training_memory(big, 1, available=2 ** 20)


# -- options -------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--epochs", "100000000000000000000"], "--epochs 100000000000000000000 is beyond any training"),
    (["--weight-decay", "1e308"], "use a weight decay below"),
    (["--lr", "1", "--weight-decay", "1"], "1 - lr * wd = 0"),
])
def test_absurd_training_options_are_refused(tmp_path, capsys, args, message):
    data = write_csv(tmp_path / "prices.csv", price_frame(160))
    assert message in _train_bad(capsys, tmp_path, data, *args)


# -- training that diverges ----------------------------------------------------------------

def test_a_loss_that_turns_nan_stops_with_one_line_and_no_folder(tmp_path, capsys, monkeypatch):
    import forecast.train as train

    real, calls = train.mse_loss, []

    def loss_turning_nan(pred, target):
        calls.append(1)
        loss, grad = real(pred, target)
        return (float("nan"), grad) if len(calls) > 3 else (loss, grad)
    monkeypatch.setattr(train, "mse_loss", loss_turning_nan)
    data = write_csv(tmp_path / "prices.csv", price_frame(160))
    line = _train_bad(capsys, tmp_path, data, "--epochs", "3")
    assert "training diverged: non-finite loss in epoch" in line and "--lr" in line


def test_forecasts_that_are_not_finite_write_nothing(tmp_path, capsys, monkeypatch):
    import forecast.pipeline as pipeline

    def nan_forecasts(model, X, batch_size=128):
        return np.full((len(X), 1), np.nan)
    monkeypatch.setattr(pipeline, "predict", nan_forecasts)
    data = write_csv(tmp_path / "prices.csv", price_frame(160))
    assert "forecasts are not finite" in _train_bad(capsys, tmp_path, data)


def test_a_checkpoint_with_non_finite_weights_is_refused(tmp_path, capsys):
    from forecast.checkpoint import load_checkpoint, save_checkpoint

    data = write_csv(tmp_path / "prices.csv", price_frame(160))
    out = tmp_path / "run"
    assert cli.main(["train", *TINY_NUMPY, "--data", data, "--out", str(out)]) == 0
    state, meta = load_checkpoint(out / "checkpoint.npz")
    name = next(iter(state))
    state[name] = state[name] * np.nan
    save_checkpoint(tmp_path / "nan.npz", state, meta)
    capsys.readouterr()
    line = _bad(capsys, ["evaluate", "--checkpoint", str(tmp_path / "nan.npz")])
    assert name in line and "non-finite" in line
