"""Training that survives a kill: the state saved after every epoch, and ``train --resume``.

The end-to-end test kills a real ``cli.py train`` process with SIGKILL once its state shows
two finished epochs, resumes it, and compares the run folder with an uninterrupted run's
to the byte (``epoch_seconds`` aside). The others interrupt in process (cheaper) and
check the refusals: a finished run, nothing to resume, other options, changed data.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import cli
from engine.optim import AdamW
from forecast.errors import UserInputError
from forecast.pipeline import RunConfig, run_training
from forecast.resume import RunState, state_dir
from forecast.train import TrainSettings, fit
from tests.pipeline_helpers import TinyModel, price_frame, write_csv
from tests.test_cli import _bad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tiny, but slow enough per epoch (about 25 ms) for the test to catch the run between epochs 2 and 60.
RUN = ["--model", "mingru", "--hidden", "8", "--seq-len", "16", "--batch-size", "8", "--epochs", "60",
       "--patience", "0", "--split", "0.6,0.2", "--backend", "numpy", "--quiet"]
SAME = ("metrics.json", "predictions.csv")


@pytest.fixture
def prices(tmp_path):
    return write_csv(tmp_path / "prices.csv", price_frame(600))


def _history(folder):
    return [{k: v for k, v in h.items() if k != "epoch_seconds"}
            for h in json.loads((folder / "history.json").read_text())]


def _assert_same_run(a, b):
    assert _history(a) == _history(b)
    for name in SAME:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _saved_epoch(folder) -> int:
    """The last finished epoch in a run's state, read as any user could (no pickle)."""
    path = os.path.join(state_dir(folder), "state.npz")
    if not os.path.exists(path):
        return 0
    try:
        with np.load(path, allow_pickle=False) as archive:
            return int(json.loads(str(archive["meta"]))["epoch"])
    except (OSError, ValueError, KeyError):
        return 0    # replaced while we read it: try again


def _interrupt_after(monkeypatch, epoch: int):
    """Make the state store raise KeyboardInterrupt once ``epoch`` is saved (a Ctrl-C)."""
    real = RunState.save

    def save(self, arrays, meta):
        real(self, arrays, meta)
        if meta["epoch"] == epoch:
            raise KeyboardInterrupt
    monkeypatch.setattr(RunState, "save", save)


# -- end to end: SIGKILL ------------------------------------------------------------------

def test_a_run_killed_mid_training_resumes_to_the_same_bytes(tmp_path, prices, capsys):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli.main(["train", "--data", prices, "--out", str(whole), *RUN]) == 0
    proc = subprocess.Popen([sys.executable, "cli.py", "train", "--data", prices, "--out", str(killed), *RUN],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _saved_epoch(killed) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the run never finished two epochs"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    at = _saved_epoch(killed)
    assert 2 <= at < 60 and not killed.exists()
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--out", str(killed), "--quiet"]) == 0
    capsys.readouterr()
    _assert_same_run(whole, killed)
    assert not os.path.exists(state_dir(killed)) and ".state" not in os.listdir(killed)
    # Resuming it again is one line: the run is finished.
    assert "holds a finished run" in _bad(capsys, ["train", "--resume", "--out", str(killed)])


# -- in process: interrupted, then resumed -------------------------------------------------

def test_an_interrupted_run_keeps_its_state_outside_the_run_folder(tmp_path, prices, monkeypatch, capsys):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert cli.main(["train", "--data", prices, "--out", str(whole), *RUN, "--epochs", "6"]) == 0
    _interrupt_after(monkeypatch, 3)
    assert cli.main(["train", "--data", prices, "--out", str(cut), *RUN, "--epochs", "6"]) == 130
    err = capsys.readouterr().err
    assert f"train --resume --out {cut}" in err
    assert not cut.exists() and sorted(os.listdir(state_dir(cut))) == ["run.json", "state.npz"]
    # A new run there would overwrite the interrupted one: refused.
    assert "--resume" in _bad(capsys, ["train", "--data", prices, "--out", str(cut), *RUN])
    monkeypatch.undo()
    # Options typed again must equal the run's; the others are taken from it.
    assert cli.main(["train", "--resume", "--out", str(cut), "--hidden", "8", "--quiet"]) == 0
    _assert_same_run(whole, cut)
    assert sorted(os.listdir(cut)) == sorted(os.listdir(whole))


def test_resume_refuses_other_options_and_keeps_the_state(tmp_path, prices, monkeypatch, capsys):
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, 1)
    assert cli.main(["train", "--data", prices, "--out", str(out), *RUN]) == 130
    monkeypatch.undo()
    capsys.readouterr()
    line = _bad(capsys, ["train", "--resume", "--out", str(out), "--lr", "0.01"])
    assert "--lr 0.003, not 0.01" in line
    assert "--model mingru, not gru" in _bad(capsys, ["train", "--resume", "--out", str(out), "--model", "gru"])
    assert "needs --out" in _bad(capsys, ["train", "--resume"])
    assert os.path.exists(os.path.join(state_dir(out), "state.npz"))


def test_resume_with_nothing_to_resume_is_one_line(tmp_path, capsys):
    out = tmp_path / "never"
    assert "nothing to resume" in _bad(capsys, ["train", "--resume", "--out", str(out)], out=str(out))


def test_resume_after_the_data_changed_is_refused(tmp_path, monkeypatch, capsys):
    raw = price_frame(600)
    data = write_csv(tmp_path / "prices.csv", raw)
    out = tmp_path / "run"
    _interrupt_after(monkeypatch, 1)
    assert cli.main(["train", "--data", data, "--out", str(out), *RUN]) == 130
    monkeypatch.undo()
    raw.loc[10, ["Close", "Adj Close"]] *= 1.01          # a training price, edited in between
    write_csv(data, raw)
    capsys.readouterr()
    assert "its data differ" in _bad(capsys, ["train", "--resume", "--out", str(out)])


def test_failed_runs_leave_no_state(tmp_path, prices, capsys):
    out = tmp_path / "deep" / "run"
    _bad(capsys, ["train", "--data", prices, "--out", str(out), *RUN, "--seq-len", "5000"], out=str(out))
    assert not (tmp_path / "deep").exists()


def test_long_horizon_runs_resume_through_the_same_loop(tmp_path, monkeypatch):
    from tests.test_ltsf_cli import series_csv

    data = series_csv(tmp_path / "series.csv", rows=300)

    def config(out):
        return RunConfig(protocol="ltsf", model="mingru", data=data, hidden=4, seq_len=24, seg_len=6, horizon=6,
                         epochs=4, batch_size=32, patience=0, backend="numpy", out=str(out))
    whole = run_training(config(tmp_path / "whole"), progress=False)
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run_training(config(tmp_path / "cut"), progress=False)
    monkeypatch.undo()
    again = run_training(config(tmp_path / "cut"), progress=False, resume=True)
    assert _history(tmp_path / "whole") == _history(tmp_path / "cut")
    for name in ("metrics.json", "window_losses.csv"):
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "cut" / name).read_bytes()
    assert again["metrics"] == whole["metrics"]


# -- the training loop's state -------------------------------------------------------------

class _MemoryStore:
    """An EpochStore in memory; ``stop_after`` interrupts like a kill after that epoch."""

    where = "memory"

    def __init__(self, stop_after=None):
        self.saved, self.stop_after = None, stop_after

    def load(self):
        return self.saved

    def save(self, arrays, meta):
        self.saved = ({k: np.array(v) for k, v in arrays.items()}, json.loads(json.dumps(meta)))
        if meta["epoch"] == self.stop_after:
            raise KeyboardInterrupt


def _xy(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5, 3))
    return X, X[:, -1, :1] * 0.8 - X[:, -1, 1:2] * 0.3


def _settings(**kw):
    return TrainSettings(**{**dict(epochs=8, batch_size=16, lr=0.05, weight_decay=0.01, warmup=2, seed=3), **kw})


@pytest.mark.parametrize("patience, when", [(0, "middle"), (2, "first"), (2, "last")])
def test_fit_continues_from_any_epoch_as_if_never_stopped(patience, when):
    train, val = _xy(64, 0), _xy(32, 1)
    val = (val[0], -val[1])            # validation disagrees: early stopping has work to do
    whole_model = TinyModel(3)
    whole = fit(whole_model, train, val, _settings(patience=patience), progress=False)
    if patience:
        assert whole.stop_reason == "early_stopping"
    n = len(whole.history)
    # "last": killed after the early stop was saved but before the run could use it.
    store = _MemoryStore(stop_after={"first": 1, "middle": n // 2, "last": n}[when])
    with pytest.raises(KeyboardInterrupt):
        fit(TinyModel(3), train, val, _settings(patience=patience), progress=False, store=store)
    store.stop_after = None
    model = TinyModel(3)
    again = fit(model, train, val, _settings(patience=patience), progress=False, store=store)
    strip = [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in whole.history]
    assert [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in again.history] == strip
    assert (again.best_epoch, again.stop_reason, again.note) == (whole.best_epoch, whole.stop_reason, whole.note)
    for k, v in whole_model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v)


def test_a_finished_state_runs_no_more_epochs():
    train, val = _xy(64, 0), _xy(32, 1)
    store = _MemoryStore()
    first = fit(TinyModel(3), train, val, _settings(epochs=3), progress=False, store=store)
    model = TinyModel(3, nan_after=0)   # any training step would now turn the loss NaN
    again = fit(model, train, val, _settings(epochs=3), progress=False, store=store)
    assert again.stop_reason == "completed" and len(again.history) == 3
    assert again.best_val_loss == first.best_val_loss


def test_a_state_of_another_run_is_refused():
    train, val = _xy(64, 0), _xy(32, 1)
    store = _MemoryStore(stop_after=1)
    with pytest.raises(KeyboardInterrupt):
        fit(TinyModel(3), train, val, _settings(), progress=False, store=store)
    store.stop_after = None
    with pytest.raises(UserInputError, match="training settings differ"):
        fit(TinyModel(3), train, val, _settings(lr=0.01), progress=False, store=store)
    with pytest.raises(UserInputError, match="model or seed differ"):
        fit(TinyModel(3, seed=1), train, val, _settings(), progress=False, store=store)


def test_adam_state_round_trip_continues_the_same_steps():
    def make():
        p, g = np.array([[1.0, -2.0]]), np.array([[0.5, -1.0]])
        return p, g, AdamW([("w", p, g)], lr=0.1, weight_decay=0.1)
    p1, g1, a = make()
    for _ in range(3):
        a.step()
    p2, g2, b = make()
    p2[...] = p1
    saved = {key: (dict((n, v.copy()) for n, v in val.items()) if isinstance(val, dict) else val)
             for key, val in a.state_dict().items()}
    b.load_state_dict(saved)
    a.step()
    b.step()
    np.testing.assert_array_equal(p1, p2)
    with pytest.raises(ValueError, match="shape"):
        b.load_state_dict({**saved, "m": {"w": np.zeros(3)}})
