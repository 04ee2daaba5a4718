"""``--protocol ltsf`` from the command line: train, evaluate, compare, and bad input."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

import cli
from forecast.checkpoint import load_checkpoint
from forecast.ltsf.dataset import LOSS_COLUMNS
from tests.test_cli import _bad

TINY = ["--protocol", "ltsf", "--hidden", "4", "--d-state", "2", "--seq-len", "24", "--seg-len", "6",
        "--horizon", "12", "--epochs", "2", "--batch-size", "64", "--backend", "numpy", "--quiet"]


def series_csv(path, rows=500, channels=3, seed=0) -> str:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    values = np.stack([np.sin(2 * np.pi * t / 24 + k) + 0.1 * rng.standard_normal(rows)
                       for k in range(channels)], axis=1)
    frame = pd.DataFrame(values, columns=[f"ch{k}" for k in range(channels)])
    frame.insert(0, "date", pd.date_range("2020-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S"))
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ltsf")
    data = series_csv(root / "series.csv")
    out = root / "run"
    assert cli.main(["train", "--model", "hybrid", "--data", data, "--out", str(out), *TINY]) == 0
    return out, data


def test_train_writes_the_protocol_metrics_and_window_losses(trained, capsys):
    out, _ = trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"] == "ltsf"
    # 500 rows: train 350, test 100 rows (+ 24 early) -> 100 - 12 + 1 windows.
    assert metrics["test_windows"] == 89
    for key in ("test", "repeat", "linear", "val"):
        assert set(metrics[key]) == {"mse", "mae"} and all(np.isfinite(list(metrics[key].values())))
    losses = pd.read_csv(out / "window_losses.csv")
    assert list(losses.columns) == ["window", *LOSS_COLUMNS]
    assert len(losses) == 89
    for name in ("model", "repeat", "linear"):
        key = "test" if name == "model" else name
        assert losses[f"{name}_mse"].mean() == pytest.approx(metrics[key]["mse"], rel=1e-8)
        assert losses[f"{name}_mae"].mean() == pytest.approx(metrics[key]["mae"], rel=1e-8)
    # A sine of period 24 with noise: the linear map must beat repeating the last value.
    assert metrics["linear"]["mse"] < metrics["repeat"]["mse"]
    config = json.loads((out / "config.json").read_text())
    assert (config["protocol"], config["norm"], config["channels"]) == ("ltsf", "revin", "independent")
    assert config["window_norm"] is None and config["features"] is None
    state, meta = load_checkpoint(out / "checkpoint.npz")
    assert meta["protocol"] == "ltsf" and meta["model_config"]["seg_len"] == 6
    assert "encoder.mamba_blocks.0.mixer.A_log" in state and "linear.weight" in state


def test_evaluate_reproduces_the_test_metrics(trained, tmp_path, capsys):
    out, _ = trained
    capsys.readouterr()
    target = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--checkpoint", str(out / "checkpoint.npz"), "--out", str(target)]) == 0
    printed = capsys.readouterr().out
    assert "--protocol ltsf" in printed and "repeat" in printed
    again = json.loads(target.read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test", "repeat", "linear"):
        assert again[key]["mse"] == pytest.approx(metrics[key]["mse"], rel=1e-12)
    assert again["test_windows"] == metrics["test_windows"]


def test_compare_trains_the_grid_and_writes_the_benchmark_table(tmp_path, capsys):
    data = series_csv(tmp_path / "s.csv")
    out = tmp_path / "study"
    argv = ["compare", "--protocol", "ltsf", "--data", data, "--models", "mingru,hybrid", "--seeds", "1",
            "--horizons", "6,12", "--seq-lens", "24", "--seg-len", "6", "--hidden", "4", "--d-state", "2",
            "--epochs", "1", "--backend", "numpy", "--jobs", "1", "--out", str(out)]
    assert cli.main(argv) == 0
    runs = sorted(p.relative_to(out).as_posix() for p in out.rglob("metrics.json"))
    assert runs == [f"runs/csv-s/h{h}/seq24/{m}/seed0/metrics.json" for h in (12, 6) for m in ("hybrid", "mingru")]
    text = (out / "benchmark.md").read_text()
    assert "H = 6" in text and "H = 12" in text and "Linear map (ours)" in text
    assert (out / "figures" / "mse_vs_horizon.png").stat().st_size > 0
    capsys.readouterr()
    assert cli.main(argv[:-2] + ["--out", str(out), "--resume"]) == 0
    assert "0 run(s) to train (4 reused)" in capsys.readouterr().err
    # A study interrupted before its study.json was written still rebuilds its table.
    (out / "study.json").unlink()
    (out / "benchmark.md").unlink()
    assert cli.main(["compare", "--out", str(out), "--report-only"]) == 0
    assert "Linear map (ours)" in (out / "benchmark.md").read_text()


def test_bad_protocol_input_is_one_line(tmp_path, capsys):
    data = series_csv(tmp_path / "s.csv")
    out = str(tmp_path / "out")
    cases = [
        (["--data", data, "--window-norm", "none"], "--window-norm does not apply under --protocol ltsf"),
        (["--data", data, "--features", "close"], "--features does not apply"),
        (["--data", "ett:ETTh3"], "ETTh3"),
        (["--data", "sample:AAPL"], "multichannel series"),
        (["--data", data, "--horizon", "200"], "no val"),
        (["--data", data, "--seg-len", "5"], "must divide"),
    ]
    for extra, message in cases:
        argv = ["train", *TINY, *extra, "--out", out]
        assert message in _bad(capsys, argv, out), extra
    assert "use --protocol ltsf" in _bad(capsys, ["train", "--data", "ett:ETTh1", "--out", out], out)
    assert "--channels does not apply under --protocol stock" in _bad(
        capsys, ["train", "--channels", "mixed", "--out", out], out)
    assert "--horizons sweeps" in _bad(capsys, ["compare", "--horizons", "96", "--out", out], out)
    assert "backtest walks forward" in _bad(capsys, ["backtest", *TINY, "--data", data, "--out", out], out)


def test_bad_series_files_are_one_line(tmp_path, capsys):
    short = series_csv(tmp_path / "short.csv", rows=30)
    text = tmp_path / "text.csv"
    text.write_text("date,a,b\n2020-01-01,1.0,x\n2020-01-02,2.0,y\n")
    out = str(tmp_path / "out")
    assert "longer than the training part" in _bad(capsys, ["train", *TINY, "--data", short, "--out", out], out)
    assert "'b'" in _bad(capsys, ["train", *TINY, "--data", str(text), "--out", out], out)
    assert not os.path.exists(out)


def test_no_linear_path_needs_no_linear_init_but_refuses_an_explicit_one():
    from forecast.config import RunConfig
    from forecast.errors import UserInputError

    cfg = RunConfig(protocol="ltsf", data="ett:ETTh1", linear_path=False).validate()
    assert cfg.linear_init == "random"
    assert RunConfig(protocol="ltsf", data="ett:ETTh1").validate().linear_init == "lstsq"
    with pytest.raises(UserInputError, match="needs --linear-path"):
        RunConfig(protocol="ltsf", data="ett:ETTh1", linear_path=False, linear_init="lstsq").validate()


def test_predict_forecasts_every_channel_after_the_last_row(trained, tmp_path, capsys):
    out, data = trained
    capsys.readouterr()
    target = tmp_path / "next.json"
    assert cli.main(["predict", "--checkpoint", str(out / "checkpoint.npz"), "--steps", "3",
                     "--out", str(target)]) == 0
    got = json.loads(target.read_text())
    rows = pd.DataFrame(got["forecasts"])
    frame = pd.read_csv(data)
    last = pd.Timestamp(frame["date"].iloc[-1])
    # three hourly steps after the last row, each with every channel
    assert list(pd.to_datetime(rows["date"]).unique()) == [last + pd.Timedelta(hours=k) for k in (1, 2, 3)]
    assert list(rows["channel"]) == ["ch0", "ch1", "ch2"] * 3 and list(rows["step"]) == [1] * 3 + [2] * 3 + [3] * 3
    assert (rows["lower"] < rows["forecast"]).all() and (rows["forecast"] < rows["upper"]).all()
    # calibrated on every window whose targets come after the training rows (70% of 500)
    assert got["calibration"]["windows"] == 500 - 24 - 12 + 1 - (350 - 24)
    assert got["protocol"] == "ltsf" and got["interval"] == "split"
    ckpt = str(out / "checkpoint.npz")
    assert "forecasts 1 to 12 steps" in _bad(capsys, ["predict", "--checkpoint", ckpt, "--steps", "13"])
    assert "adaptive" in _bad(capsys, ["predict", "--checkpoint", ckpt, "--interval", "adaptive"])
