"""The command line: outputs of train, evaluate round trip, data, and every bad input.

Bad input must end with exit status 2, exactly one ``error: ...`` line on stderr, no
traceback, and no output folder (or hidden partial folder) left behind.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

import cli
from forecast.metrics import METRIC_NAMES
from forecast.pipeline import RunConfig
from tests.pipeline_helpers import offline_yahoo, price_frame, write_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--model", "mingru", "--hidden", "4", "--d-state", "4", "--seq-len", "8", "--epochs", "1",
        "--batch-size", "32", "--split", "0.6,0.2", "--quiet"]


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No test here may reach Yahoo."""
    offline_yahoo(tmp_path, monkeypatch)


@pytest.fixture
def prices(tmp_path):
    return write_csv(tmp_path / "prices.csv", price_frame(160))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished tiny run, shared by the output and evaluate tests."""
    root = tmp_path_factory.mktemp("run")
    data = write_csv(root / "prices.csv", price_frame(160))
    out = root / "out"
    code = cli.main(["train", "--data", data, "--out", str(out), *TINY])
    assert code == 0
    return out, data


def _bad(capsys, argv, out=None):
    """Run argv, assert the bad-input contract, return the error line."""
    code = cli.main(argv)
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and "Traceback" not in captured.err
    if out is not None:
        assert not os.path.exists(out)
        parent = os.path.dirname(out)
        if os.path.isdir(parent):
            assert not [p for p in os.listdir(parent) if p.endswith(".partial")]
    return lines[0]


# -- train outputs -----------------------------------------------------------------------

def test_train_writes_every_output(trained, capsys):
    out, _ = trained
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "config.json", "history.json", "metrics.json",
                                       "predictions.csv", "summary.json"]
    config = json.loads((out / "config.json").read_text())
    assert RunConfig.from_dict(config).validate().to_dict() == config
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1
    assert set(history[0]) >= {"train_loss", "val_loss", "lr", "grad_norm", "epoch_seconds"}
    metrics = json.loads((out / "metrics.json").read_text())
    keys = set(METRIC_NAMES) | {"coverage", "interval_width"}
    assert set(metrics["test"]) == keys and set(metrics["naive"]) == keys
    # tomorrow = today calls no direction: undefined, stored as null
    assert metrics["naive"]["direction_accuracy"] is None
    assert metrics["naive"]["rel_mae"] == 1.0
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns) == ["date", "actual", "predicted", "naive", "lower", "upper"]
    # The intervals of the default method at the default level, scored as the CSV says.
    assert (metrics["intervals"]["method"], metrics["intervals"]["level"]) == ("adaptive", 90.0)
    assert metrics["intervals"]["calibration"] == "val"
    assert (pred["lower"] < pred["predicted"]).all() and (pred["predicted"] < pred["upper"]).all()
    inside = (pred["actual"] >= pred["lower"]) & (pred["actual"] <= pred["upper"])
    assert metrics["test"]["coverage"] == pytest.approx(inside.mean(), abs=1e-12)
    assert metrics["test"]["interval_width"] == pytest.approx((pred["upper"] - pred["lower"]).mean(), rel=1e-8)
    assert set(metrics["intervals"]["methods"]) == {"adaptive", "split"}
    # horizon 1: the naive forecast of each day is the previous day's actual price
    np.testing.assert_allclose(pred["naive"].to_numpy()[1:], pred["actual"].to_numpy()[:-1])
    summary = json.loads((out / "summary.json").read_text())
    assert len(pred) == summary["data"]["split"]["test"]["windows"]
    with np.load(out / "checkpoint.npz", allow_pickle=False) as ck:
        assert "meta" in ck.files and any(f.startswith("param/") for f in ck.files)


def test_train_prints_a_summary_table(tmp_path, prices, capsys):
    out = tmp_path / "o"
    assert cli.main(["train", "--data", prices, "--out", str(out), *TINY, "--horizon", "2"]) == 0
    text = capsys.readouterr().out
    assert "model" in text and "naive" in text and "direction_accuracy" in text
    # every metric has a row; the naive forecast's direction accuracy is shown as undefined
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[2:] if line.split()}
    assert set(METRIC_NAMES) <= set(rows)
    assert rows["direction_accuracy"][1] == "undefined" and rows["rel_mae"][1] == "1"
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns) == ["date", "actual", "predicted", "naive", "origin_date", "step", "lower", "upper"]
    assert set(pred["step"]) == {1, 2}
    # the intervals' coverage and mean width are in the table too, for the model and the baselines
    assert len(rows["coverage"]) == 3 and len(rows["interval_width"]) == 3


def test_evaluate_reproduces_the_run_metrics(trained, tmp_path, capsys):
    out, _ = trained
    target = tmp_path / "eval.json"
    capsys.readouterr()
    assert cli.main(["evaluate", "--checkpoint", str(out / "checkpoint.npz"), "--out", str(target)]) == 0
    assert "naive" in capsys.readouterr().out
    saved = json.loads((out / "metrics.json").read_text())
    again = json.loads(target.read_text())
    for key, value in saved["test"].items():
        assert again["test"][key] == pytest.approx(value, rel=1e-9, nan_ok=True)
    assert again["naive"] == saved["naive"]


def test_window_norm_is_saved_and_reused_by_evaluate(trained, tmp_path, capsys):
    from forecast.checkpoint import load_checkpoint, save_checkpoint

    out, data = trained
    assert json.loads((out / "config.json").read_text())["window_norm"] == "last"   # the default
    assert load_checkpoint(out / "checkpoint.npz")[1]["window_norm"] == "last"
    raw_run = tmp_path / "raw"
    assert cli.main(["train", "--data", data, "--out", str(raw_run), *TINY, "--window-norm", "none"]) == 0
    assert json.loads((raw_run / "config.json").read_text())["window_norm"] == "none"
    saved = json.loads((raw_run / "metrics.json").read_text())
    # A checkpoint from before window_norm existed (no key anywhere) is read as "none".
    state, meta = load_checkpoint(raw_run / "checkpoint.npz")
    del meta["window_norm"], meta["run_config"]["window_norm"]
    old = tmp_path / "old.npz"
    save_checkpoint(old, state, meta)
    for ckpt in (raw_run / "checkpoint.npz", old):
        target = tmp_path / f"eval-{ckpt.stem}.json"
        assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--out", str(target)]) == 0
        again = json.loads(target.read_text())
        for key, value in saved["test"].items():
            assert again["test"][key] == pytest.approx(value, rel=1e-9, nan_ok=True)
    capsys.readouterr()


def test_evaluate_on_other_data_uses_the_saved_scalers(trained, tmp_path, capsys):
    out, _ = trained
    other = write_csv(tmp_path / "other.csv", price_frame(160, seed=9))
    assert cli.main(["evaluate", "--checkpoint", str(out / "checkpoint.npz"), "--data", other]) == 0
    assert "other.csv" in capsys.readouterr().out


def test_data_command_describes_a_source(tmp_path, capsys):
    raw = price_frame(40)
    raw.loc[5, "Volume"] = np.nan
    path = write_csv(tmp_path / "p.csv", raw)
    assert cli.main(["data", path]) == 0
    text = capsys.readouterr().out
    assert "rows      40" in text and "NaN       1" in text and raw["Date"][0] in text
    assert cli.main(["data", "sample:IBM", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 3270


def test_failure_while_writing_leaves_nothing(tmp_path, prices, monkeypatch):
    import forecast.pipeline as pipeline

    real = pipeline.atomic_write_bytes

    def broken(path, payload):
        if str(path).endswith("checkpoint.npz"):   # the last file: the others are written
            raise OSError("disk full")
        real(path, payload)
    monkeypatch.setattr(pipeline, "atomic_write_bytes", broken)
    out = tmp_path / "deep" / "run"
    cfg = RunConfig(model="mingru", data=prices, hidden=4, seq_len=8, epochs=1, split=(0.6, 0.2))
    with pytest.raises(OSError):
        pipeline.run_training(cfg, out, progress=False)
    assert not (tmp_path / "deep").exists()


# -- bad input ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--model", "lstm"], "invalid choice"),
    (["--backend", "cuda"], "invalid choice"),
    (["--epochs", "abc"], "invalid int"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--seq-len", "0"], "--seq-len must be at least 1"),
    (["--horizon", "-1"], "--horizon must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--lr", "0"], "--lr must be positive"),
    (["--lr", "-0.1"], "--lr must be positive"),
    (["--lr", "nan"], "--lr must be positive"),
    (["--split", "0.8,0.3"], "sum below 1"),
    (["--split", "0.7"], "two fractions"),
    (["--split", "a,b"], "two fractions"),
    (["--features", "close,price"], "unknown feature"),
    (["--window-norm", "zscore"], "invalid choice"),
    (["--data", "ftp:AAPL"], "unknown data source"),
    (["--data", "sample:TSLA"], "no bundled sample"),
    (["--start", "yesterday"], "--start"),
    (["--start", "now"], "--start must be a date"),
    (["--start", "2012-05-01", "--end", "2012-01-01"], "must come after"),
    (["--unknown-flag"], "unrecognized arguments"),
])
def test_bad_train_options(tmp_path, capsys, args, message):
    out = str(tmp_path / "out")
    line = _bad(capsys, ["train", *TINY, "--out", out, *args], out=out)
    assert message in line


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    (b"", "empty"),
    (b"\x00\x01garbage\xff\xfe\x00", "cannot parse"),
    (b"Date,Close\n2020-01-01,1\n2020-01-02,2\n", "series too short"),
])
def test_bad_data_files(tmp_path, capsys, content, message):
    path = tmp_path / "prices.csv"
    if content is not None:
        path.write_bytes(content)
    out = str(tmp_path / "out")
    assert message in _bad(capsys, ["train", *TINY, "--data", str(path), "--out", out], out=out)


def test_nan_gap_beyond_the_policy_is_refused(tmp_path, capsys):
    raw = price_frame(160)
    raw.loc[60:69, ["Close", "Adj Close"]] = np.nan
    path = write_csv(tmp_path / "gappy.csv", raw)
    out = str(tmp_path / "out")
    assert "gap of 10 missing rows" in _bad(capsys, ["train", *TINY, "--data", path, "--out", out], out=out)


def test_non_positive_prices_with_return_target(tmp_path, capsys):
    raw = price_frame(160)
    raw.loc[30, ["Close", "Adj Close"]] = -1.0
    path = write_csv(tmp_path / "neg.csv", raw)
    out = str(tmp_path / "out")
    line = _bad(capsys, ["train", *TINY, "--data", path, "--target", "return", "--out", out], out=out)
    assert "non-positive price" in line


def test_yahoo_offline_with_nothing_cached(tmp_path, capsys):
    line = _bad(capsys, ["data", "yahoo:AAPL"])
    assert "sample:AAPL" in line and "CSV" in line
    out = str(tmp_path / "out")
    _bad(capsys, ["train", *TINY, "--data", "yahoo:AAPL", "--out", out], out=out)


def test_existing_output_folder_is_not_overwritten(tmp_path, prices, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert "already exists" in _bad(capsys, ["train", *TINY, "--data", prices, "--out", str(out)])
    assert os.listdir(out) == ["keep.txt"]


def test_missing_subcommand_and_unknown_subcommand(capsys):
    assert cli.main([]) == 2
    capsys.readouterr()
    assert "invalid choice" in _bad(capsys, ["fly"])


def _rewrite_checkpoint(src, dst, change):
    with np.load(src, allow_pickle=False) as ck:
        entries = {k: ck[k] for k in ck.files}
    change(entries)
    buf = io.BytesIO()
    np.savez(buf, **entries)
    dst.write_bytes(buf.getvalue())
    return str(dst)


def test_bad_checkpoints(trained, tmp_path, capsys):
    out, _ = trained
    good = out / "checkpoint.npz"
    ev = ["evaluate", "--checkpoint"]
    assert "not found" in _bad(capsys, [*ev, str(tmp_path / "none.npz")])

    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "corrupt" in _bad(capsys, [*ev, str(corrupt)])

    text = tmp_path / "text.npz"
    text.write_text("hello")
    assert "not a checkpoint" in _bad(capsys, [*ev, str(text)])

    def add_object(entries):
        entries["param/evil"] = np.array([{"a": 1}], dtype=object)
    pickled = _rewrite_checkpoint(good, tmp_path / "pickled.npz", add_object)
    assert "pickled" in _bad(capsys, [*ev, pickled])

    def reshape(entries):
        name = next(k for k in entries if k.startswith("param/") and entries[k].ndim == 2)
        entries[name] = np.zeros((entries[name].shape[0] + 1, entries[name].shape[1]))
    wrong = _rewrite_checkpoint(good, tmp_path / "shapes.npz", reshape)
    assert "does not fit" in _bad(capsys, [*ev, wrong])

    def drop_meta(entries):
        del entries["meta"]
    nometa = _rewrite_checkpoint(good, tmp_path / "nometa.npz", drop_meta)
    assert "not a checkpoint of this engine" in _bad(capsys, [*ev, nometa])

    def bad_json(entries):
        entries["meta"] = np.array("{not json")
    badmeta = _rewrite_checkpoint(good, tmp_path / "badmeta.npz", bad_json)
    assert "not valid JSON" in _bad(capsys, [*ev, badmeta])

    zipped = tmp_path / "other.npz"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("readme.txt", "not numpy")
    _bad(capsys, [*ev, str(zipped)])


def test_real_entry_point_reports_one_line(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "cli.py", "train", "--epochs", "0", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: --epochs must be at least 1, got 0"]
    assert proc.stdout == "" and not out.exists()


# -- process-wide backend default --------------------------------------------------------

def test_backend_defaults_to_the_environment_variable(monkeypatch):
    monkeypatch.setenv("MAMBA_GRU_BACKEND", "numba")
    args = cli.build_parser("train").parse_args(["train"])
    assert args.backend == "numba"
    assert RunConfig().backend == "numba"
    monkeypatch.delenv("MAMBA_GRU_BACKEND")
    # Unset: numba whenever it imports (numpy stays one flag away).
    from engine.backend import numba_available
    assert cli.build_parser("train").parse_args(["train"]).backend == ("numba" if numba_available() else "numpy")


def test_bad_backend_environment_variable_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("MAMBA_GRU_BACKEND", "cuda")
    assert "MAMBA_GRU_BACKEND" in _bad(capsys, ["train"])
