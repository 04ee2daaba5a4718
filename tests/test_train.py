"""The training loop and the pipeline: early stopping, non-finite losses, determinism,
and the look-ahead guarantee."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecast.pipeline import RunConfig, load_dataset, run_training
from forecast.train import TrainSettings, evaluate_loss, fit
from tests.pipeline_helpers import TinyModel, price_frame, write_csv


def _xy(n, seed, flip=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5, 3))
    y = X[:, -1, :1] * 0.8 - X[:, -1, 1:2] * 0.3
    return X, (-y if flip else y)


def _settings(**kw):
    base = dict(epochs=20, batch_size=16, lr=0.05, weight_decay=0.0, clip=1.0, patience=2, warmup=0, seed=0)
    base.update(kw)
    return TrainSettings(**base)


def test_early_stopping_restores_the_best_weights():
    # Validation targets have the opposite sign: the better the fit, the worse val gets.
    model = TinyModel(input_size=3)
    train, val = _xy(64, 0), _xy(32, 1, flip=True)
    res = fit(model, train, val, _settings(patience=2), progress=False)
    assert res.stop_reason == "early_stopping"
    assert len(res.history) == res.best_epoch + 2 < 20
    assert "early stopping" in res.history[-1]["note"]
    best = min(h["val_loss"] for h in res.history)
    assert res.history[res.best_epoch - 1]["val_loss"] == best
    # the model now holds the best epoch's weights, not the last epoch's
    assert evaluate_loss(model, *val) == pytest.approx(best, rel=1e-12)
    assert evaluate_loss(model, *val) < res.history[-1]["val_loss"]


def test_best_weights_are_restored_even_without_early_stop():
    model = TinyModel(input_size=3)
    res = fit(model, _xy(64, 0), _xy(32, 1, flip=True), _settings(epochs=4, patience=0), progress=False)
    assert res.stop_reason == "completed" and len(res.history) == 4
    assert evaluate_loss(model, *_xy(32, 1, flip=True)) == pytest.approx(res.best_val_loss, rel=1e-12)


def test_non_finite_loss_stops_and_restores_the_best_weights():
    # 64 windows in batches of 16 plus one validation pass: 5 forward calls per epoch.
    model = TinyModel(input_size=3, nan_after=7)
    train, val = _xy(64, 0), _xy(32, 1)
    res = fit(model, train, val, _settings(epochs=10), progress=False)
    assert res.stop_reason == "non_finite" and len(res.history) == 2
    last = res.history[-1]
    assert math.isnan(last["train_loss"]) and "non-finite loss in epoch 2" in last["note"]
    assert "epoch 1 restored" in last["note"] and res.best_epoch == 1
    model.nan_after = None
    assert evaluate_loss(model, *val) == pytest.approx(res.history[0]["val_loss"], rel=1e-12)


def test_non_finite_loss_in_the_first_epoch_restores_the_initial_weights():
    model = TinyModel(input_size=3, nan_after=1)
    initial = model.state_dict()
    res = fit(model, _xy(64, 0), _xy(32, 1), _settings(epochs=5), progress=False)
    assert res.best_epoch is None and "initial weights restored" in res.note
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, initial[k])


def test_shuffle_and_steps_depend_on_the_seed_only():
    runs = [fit(TinyModel(3), _xy(64, 0), _xy(32, 1), _settings(epochs=3, seed=s), progress=False)
            for s in (5, 5, 6)]
    losses = [[h["train_loss"] for h in r.history] for r in runs]
    assert losses[0] == losses[1] and losses[0] != losses[2]


# -- the pipeline ------------------------------------------------------------------------

def _config(path, **kw):
    base = dict(model="mingru", data=str(path), seq_len=8, hidden=4, d_state=4, epochs=2,
                batch_size=32, patience=0, warmup=0, split=(0.6, 0.2))
    base.update(kw)
    return RunConfig(**base)


def _strip_times(history):
    return [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in history]


def test_same_seed_same_history(tmp_path):
    path = write_csv(tmp_path / "p.csv", price_frame(160))
    a = run_training(_config(path, model="hybrid"), progress=False, write=False)
    ds = load_dataset(_config(path, model="hybrid"))
    b = run_training(_config(path, model="hybrid"), progress=False, write=False, dataset=ds)
    assert _strip_times(a["history"]) == _strip_times(b["history"])
    assert a["metrics"] == b["metrics"]
    assert all("alpha" in h for h in a["history"])  # the hybrid's fusion weight is logged
    c = run_training(_config(path, model="hybrid", seed=1), progress=False, write=False)
    assert _strip_times(c["history"]) != _strip_times(a["history"])


@pytest.mark.parametrize("window_norm", ["last", "none"])
@pytest.mark.parametrize("target, features, horizon", [("close", ("close", "volume"), 1),
                                                      ("close", ("open", "close", "return"), 3),
                                                      ("return", ("return",), 3)])
def test_no_look_ahead_prices_after_validation_do_not_change_training(tmp_path, target, features, horizon,
                                                                      window_norm):
    n = 200
    raw = price_frame(n, seed=3)
    later = raw.copy()
    b2 = int(round(n * 0.8))                      # first row of the test part
    later.loc[b2:, ["Open", "High", "Low", "Close", "Adj Close"]] *= 1.7
    later.loc[b2:, "Volume"] *= 3
    p1 = write_csv(tmp_path / "a.csv", raw)
    p2 = write_csv(tmp_path / "b.csv", later)
    kw = dict(target=target, features=features, horizon=horizon, window_norm=window_norm)
    r1 = run_training(_config(p1, **kw), progress=False, write=False)
    r2 = run_training(_config(p2, **kw), progress=False, write=False)
    assert r1["data"]["split"] == r2["data"]["split"]
    assert _strip_times(r1["history"]) == _strip_times(r2["history"])
    # ...while the test part, which does see the changed prices, differs.
    assert r1["metrics"]["test"]["mae"] != r2["metrics"]["test"]["mae"]


class _Oracle:
    """Stands in for a model: returns the given scaled outputs, batch after batch
    (evaluate_model asks for the evaluated part first, then the validation part, which
    calibrates the intervals)."""

    def __init__(self, outputs):
        self.outputs, self.at = outputs, 0

    def forward(self, x):
        out = self.outputs[self.at:self.at + len(x)]
        self.at += len(x)
        return out


@pytest.mark.parametrize("horizon", [1, 3])
def test_metrics_are_in_price_units_whatever_the_window_norm(tmp_path, horizon):
    from forecast.pipeline import evaluate_model

    path = write_csv(tmp_path / "p.csv", price_frame(200, seed=4))
    results = {}
    for norm in ("last", "none"):
        ds = load_dataset(_config(path, horizon=horizon, window_norm=norm))
        idx = ds.parts["test"]
        val = ds.parts["val"]
        perfect, _ = evaluate_model(_Oracle(np.concatenate([ds.y[idx], ds.y[val]])), ds, "test")
        assert perfect["test"]["rmse"] == pytest.approx(0.0, abs=1e-9)
        if norm == "last":
            # A zero relative change is exactly the naive forecast, in price units.
            zero = ds.target_scaler.transform(np.zeros((1, 1)))[0, 0]
            flat, table = evaluate_model(_Oracle(np.full((len(idx) + len(val), horizon), zero)), ds, "test")
            for key, value in flat["naive"].items():
                assert flat["test"][key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True)
            np.testing.assert_allclose(table["predicted"], table["naive"], rtol=1e-12)
        results[norm] = perfect
    # The baselines never see the normalisation (compared as JSON: NaN, the naive
    # forecast's undefined direction accuracy, is null there and equals itself).
    from forecast.fileio import to_jsonable
    assert to_jsonable(results["last"]["naive"]) == to_jsonable(results["none"]["naive"])
    assert to_jsonable(results["last"]["drift"]) == to_jsonable(results["none"]["drift"])


def test_window_norm_is_part_of_the_data_key(tmp_path):
    from forecast.errors import UserInputError

    path = write_csv(tmp_path / "p.csv", price_frame(120))
    assert RunConfig().validate().window_norm == "last"
    assert _config(path).data_key() != _config(path, window_norm="none").data_key()
    ds = load_dataset(_config(path, window_norm="none"))
    with pytest.raises(UserInputError, match="window_norm"):
        run_training(_config(path), progress=False, write=False, dataset=ds)
    with pytest.raises(UserInputError, match="--window-norm"):
        RunConfig(window_norm="zscore").validate()


def test_dataset_for_other_windows_is_refused(tmp_path):
    from forecast.errors import UserInputError

    path = write_csv(tmp_path / "p.csv", price_frame(120))
    ds = load_dataset(_config(path))
    with pytest.raises(UserInputError, match="seq_len"):
        run_training(_config(path, seq_len=9), progress=False, write=False, dataset=ds)


def test_result_dict_describes_data_and_training(tmp_path):
    path = write_csv(tmp_path / "p.csv", price_frame(120))
    res = run_training(_config(path, horizon=2), progress=False, write=False)
    assert set(res) >= {"metrics", "history", "config", "data", "seconds", "training"}
    assert set(res["metrics"]) >= {"test", "naive"}
    assert res["data"]["source"] == "csv" and res["data"]["split"]["test"]["windows"] > 0
    h = res["history"][0]
    assert set(h) >= {"epoch", "train_loss", "val_loss", "lr", "grad_norm", "epoch_seconds"}
    assert pd.Timestamp(res["data"]["first_date"]) < pd.Timestamp(res["data"]["last_date"])
    assert res["out_dir"] is None
