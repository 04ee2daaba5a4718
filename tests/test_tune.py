"""``cli.py tune``: the study, its outputs, continuing it, ``--config`` and bad input.

Every tune here is tiny (minGRU, or the hybrid on a small series, NumPy kernels, 2-12
epochs, a 400-day synthetic CSV), so a trial takes a fraction of a second. Two tests run
trials on 2-worker Dask LocalClusters (``local:2``, and a cluster reached by address whose
worker is killed mid-trial), bounded in time, and check the workers are gone afterwards.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time

import optuna
import pandas as pd
import pytest

import cli
from forecast.config import RunConfig
from forecast.tune import space as spaces
from forecast.pipeline import load_dataset
from forecast.tune.objective import loss_unit
from forecast.tune.tuner import plan_tune, run_tune
from tests.pipeline_helpers import price_frame, write_csv

TINY = ["--model", "mingru", "--backend", "numpy", "--epochs", "2", "--seq-len", "12", "--quiet"]
#: Upper bound of a Dask test's wait (a busy 2-core machine).
BOUND = 240.0


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("tune-data") / "prices.csv", price_frame(400))


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, data):
    """One finished 4-trial tune, shared by the output tests."""
    out = tmp_path_factory.mktemp("tune") / "out"
    assert cli.main(["tune", "--data", data, "--out", str(out), "--trials", "4", *TINY]) == 0
    return out


def _trials(out):
    return pd.read_csv(out / "trials.csv", float_precision="round_trip")


def _bad(capsys, argv, out=None):
    """Run argv; assert exit 2, one ``error:`` line, and no output folder; return the line."""
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    if out is not None:
        assert not out.exists()
    return err[0]


# -- the outputs -------------------------------------------------------------------------

def test_outputs(tuned):
    for name in ("best.json", "trials.csv", "tune.json", "study.db", "figures/history.png",
                 "figures/importances.png", "figures/curves.png"):
        assert (tuned / name).stat().st_size > 0, name
    table = _trials(tuned)
    assert list(table["number"]) == [0, 1, 2, 3]
    assert set(table["state"]) <= {"COMPLETE", "PRUNED"}
    summary = json.loads((tuned / "tune.json").read_text())
    assert summary["trials"] == 4 and summary["figures skipped"] == {}
    assert set(summary["space"]) == {"hidden", "layers", "lr", "weight_decay", "batch_size"}


def test_first_trial_is_the_default_and_best_is_no_worse(tuned):
    table = _trials(tuned).set_index("number")
    defaults = RunConfig(model="mingru", backend="numpy", epochs=2, seq_len=12).validate()
    for name in ("hidden", "layers", "lr", "weight_decay", "batch_size"):
        assert table.loc[0, f"params_{name}"] == getattr(defaults, name), name
    assert table.loc[0, "state"] == "COMPLETE"
    summary = json.loads((tuned / "tune.json").read_text())
    assert summary["first trial"]["number"] == 0
    assert summary["best trial"]["value"] <= summary["first trial"]["value"]
    assert summary["best trial"]["value"] == table["value"][table["state"] == "COMPLETE"].min()


def test_best_json_trains_to_the_best_trials_validation_loss(tuned, tmp_path):
    best = json.loads((tuned / "best.json").read_text())
    summary = json.loads((tuned / "tune.json").read_text())
    assert {k: best[k] for k in summary["best trial"]["params"]} == summary["best trial"]["params"]
    out = tmp_path / "run"
    assert cli.main(["train", "--config", str(tuned / "best.json"), "--out", str(out), "--quiet"]) == 0
    trained = json.loads((out / "summary.json").read_text())["training"]["best_val_loss"]
    # the trial scores the trainer's loss in the target's own units (the scaler undone)
    unit = loss_unit(load_dataset(RunConfig.from_dict({**best, "out": None})))
    assert trained * unit == pytest.approx(summary["best trial"]["value"], rel=1e-12, abs=0)


def test_trials_are_scored_in_the_targets_units_whatever_the_window(tmp_path):
    """seq_len changes the training windows, so the min-max scaler's range; the score must
    not change with it: the loss on the scaled target times loss_unit is the loss on the
    target itself."""
    import numpy as np

    frame = price_frame(400)
    for col in ("Open", "High", "Low", "Close", "Adj Close"):
        frame.loc[15:, col] *= 1.2      # a 20% jump on day 15: a target of seq_len 10's windows, not 30's
    data = write_csv(tmp_path / "jump.csv", frame)
    units = set()
    for seq_len in (10, 30):
        ds = load_dataset(RunConfig(data=data, seq_len=seq_len, target="return"))
        _, y = ds.part("val")
        guess = np.full_like(y, y.mean())        # any forecast will do
        scaled_mse = float(np.mean((y - guess) ** 2))
        raw = ds.target_scaler.inverse_transform(y.reshape(-1, 1))
        raw_guess = ds.target_scaler.inverse_transform(guess.reshape(-1, 1))
        assert scaled_mse * loss_unit(ds) == pytest.approx(float(np.mean((raw - raw_guess) ** 2)), rel=1e-10)
        units.add(round(loss_unit(ds), 15))
    assert len(units) == 2          # the two windows' scalers differ: scores in scaled units would too


def test_command_line_overrides_config_file(tuned, tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "1", "--config", str(tuned / "best.json"), "--seed", "3",
                     "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    best = json.loads((tuned / "best.json").read_text())
    assert config["epochs"] == 1 and config["seed"] == 3
    assert (config["hidden"], config["lr"], config["model"]) == (best["hidden"], best["lr"], best["model"])


def test_compare_reads_the_config_file(tuned, tmp_path):
    from forecast.study.plan import plan_study

    parser = cli.build_parser("compare")
    args = parser.parse_args(["compare", "--config", str(tuned / "best.json"), "--models", "gru,mingru",
                              "--seeds", "1", "--lr", "0.005", "--out", str(tmp_path / "c")])
    plan = plan_study(args)
    best = json.loads((tuned / "best.json").read_text())
    assert plan.base["hidden"] == best["hidden"] and plan.base["epochs"] == best["epochs"]
    assert plan.base["lr"] == 0.005                   # typed beats the file
    assert plan.seq_lens == [best["seq_len"]] and plan.models == ["gru", "mingru"]


def test_running_again_continues_the_study(data, tmp_path):
    out = tmp_path / "out"
    argv = ["tune", "--data", data, "--out", str(out), *TINY]
    assert cli.main([*argv, "--trials", "2"]) == 0
    first = _trials(out)
    assert cli.main([*argv, "--trials", "2"]) == 0
    again = _trials(out)
    assert list(again["number"]) == [0, 1, 2, 3]
    assert again.iloc[:2]["value"].tolist() == first["value"].tolist()
    # Only the first run enqueues the starting configuration; the sampler's seed moves on,
    # so the continued run does not draw the first run's values again.
    assert [value is True for value in again["user_attrs_start"]] == [True, False, False, False]
    assert again.loc[2, "params_lr"] != again.loc[1, "params_lr"]


# -- pruning -------------------------------------------------------------------------------

def test_pruned_trials_are_recorded_and_the_start_is_never_pruned(data, tmp_path):
    plan = plan_tune({"model": "mingru", "backend": "numpy", "data": data, "epochs": 3, "seq_len": 12})
    summary = run_tune(plan, 3, out=tmp_path / "out", pruner=optuna.pruners.ThresholdPruner(upper=0.0),
                       progress=False)
    table = _trials(tmp_path / "out")
    assert table["state"].tolist() == ["COMPLETE", "PRUNED", "PRUNED"]
    assert (table["user_attrs_epochs"].tolist()) == [3, 1, 1]      # pruned after their first epoch
    assert summary["states"]["pruned"] == 2 and summary["best trial"]["number"] == 0


def test_on_epoch_can_stop_fit():
    import numpy as np

    from forecast.train import TrainSettings, fit
    from tests.pipeline_helpers import TinyModel

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 5, 2)), rng.normal(size=(40, 1))
    seen = []
    result = fit(TinyModel(2), (X, y), (X, y), TrainSettings(epochs=6, patience=0), progress=False,
                 on_epoch=lambda record: seen.append(record["epoch"]) or record["epoch"] == 2)
    assert seen == [1, 2] and len(result.history) == 2 and result.stop_reason == "stopped"
    plain = fit(TinyModel(2), (X, y), (X, y), TrainSettings(epochs=6, patience=0), progress=False)
    assert [h["val_loss"] for h in plain.history[:2]] == [h["val_loss"] for h in result.history]
    assert len(plain.history) == 6 and plain.stop_reason == "completed"


# -- the long-horizon protocol -----------------------------------------------------------

def test_long_horizon_tune_and_its_best_json(tmp_path, capsys):
    from tests.test_ltsf_cli import series_csv

    data = series_csv(tmp_path / "series.csv")
    argv = ["tune", "--protocol", "ltsf", "--model", "hybrid", "--data", data, "--seq-len", "24",
            "--horizon", "12", "--d-state", "2", "--epochs", "2", "--backend", "numpy", "--quiet"]
    line = _bad(capsys, [*argv, "--out", str(tmp_path / "bad")], tmp_path / "bad")
    assert "seg_len 16 does not divide seq_len 24" in line
    out = tmp_path / "out"
    assert cli.main([*argv, "--out", str(out), "--trials", "3", "--space", "seg_len=6,12",
                     "--space", "hidden=4,8"]) == 0
    best = json.loads((out / "best.json").read_text())
    summary = json.loads((out / "tune.json").read_text())
    assert best["protocol"] == "ltsf" and best["seg_len"] in (6, 12) and best["norm"] is not None
    assert set(summary["space"]) == {"hidden", "layers", "lr", "weight_decay", "batch_size", "seg_len",
                                     "norm", "fusion"}
    run = tmp_path / "run"
    assert cli.main(["train", "--config", str(out / "best.json"), "--out", str(run), "--quiet"]) == 0
    trained = json.loads((run / "summary.json").read_text())["training"]["best_val_loss"]
    assert trained == pytest.approx(summary["best trial"]["value"], rel=1e-12, abs=0)


# -- the search space ----------------------------------------------------------------------

def test_space_per_model_and_protocol():
    hybrid = spaces.default_space("hybrid", "stock")
    assert list(hybrid) == ["hidden", "d_state", "layers", "lr", "weight_decay", "batch_size", "seq_len", "fusion"]
    assert "d_state" not in spaces.default_space("gru", "stock")
    ltsf = spaces.default_space("hybrid", "ltsf")
    assert {"seg_len", "norm", "fusion"} <= set(ltsf) and "seq_len" not in ltsf
    for name in ("stock", "ltsf"):      # every default lies in its space: trial 0 is the default
        plan = plan_tune({"model": "hybrid", "protocol": name,
                          "data": "ett:ETTh1" if name == "ltsf" else "sample:AAPL"})
        defaults = RunConfig(model="hybrid", protocol=name, epochs=plan.base.epochs,
                             data=plan.base.data).validate()
        assert plan.start == {k: getattr(defaults, k) for k in plan.space}


def test_space_narrowing_and_fixing():
    plan = plan_tune({"model": "gru", "hidden": 32}, None,
                     ["lr=1e-3:5e-3", "layers=1", "batch_size=16,32", "clip=0.5:2"])
    assert "hidden" not in plan.space and plan.base.hidden == 32            # typed: fixed
    assert "layers" not in plan.space and plan.base.layers == 1             # one value: fixed
    assert plan.space["lr"] == spaces.FloatRange(1e-3, 5e-3, log=True)
    assert plan.space["batch_size"] == spaces.Choice((16, 32))
    assert plan.space["clip"] == spaces.FloatRange(0.5, 2.0)                # added
    assert plan.start["batch_size"] == 16 and plan.start["lr"] == 3e-3      # default moved into the space


def test_config_file_sets_the_start_not_the_space(tmp_path):
    path = tmp_path / "start.json"
    path.write_text(json.dumps({"model": "gru", "hidden": 32, "lr": 0.002}))
    from forecast.config_file import read_config_file

    plan = plan_tune({}, read_config_file(path))
    assert plan.base.model == "gru" and "hidden" in plan.space and plan.start["hidden"] == 32
    assert plan.start["lr"] == 0.002


# -- bad input -----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--trials", "0"], "--trials"),
    (["--storage", "sqlite:////nonexistent-dir/x/study.db"], "--storage"),
    (["--storage", "nosuchdb://host/db"], "--storage"),
    (["--space", "hidden=0,8"], "hidden"),
    (["--space", "colour=red"], "cannot be tuned"),
    (["--space", "lr=5:1"], "LOW must be below HIGH"),
    (["--space", "fusion=scalar"], "only the hybrid"),
    (["--hidden", "8", "--space", "hidden=8,16"], "fixes it"),
    (["--scheduler", "nowhere"], "--scheduler"),
    (["--timeout", "0"], "--timeout"),
])
def test_bad_tune_input(capsys, data, tmp_path, argv, words):
    out = tmp_path / "out"
    line = _bad(capsys, ["tune", "--data", data, "--out", str(out), *TINY, *argv], out)
    assert words in line


@pytest.mark.parametrize("content, words", [
    ({"model": "hybrid", "colour": "red"}, "unknown option(s) 'colour'"),
    ({"model": "transformer"}, "unknown model 'transformer'"),
    ([1, 2], "expected a JSON object"),
])
@pytest.mark.parametrize("command", ["tune", "train", "compare"])
def test_bad_config_file(capsys, data, tmp_path, content, words, command):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(content))
    out = tmp_path / "out"
    line = _bad(capsys, [command, "--config", str(path), "--data", data, "--out", str(out)], out)
    assert words in line and str(path) in line


def test_missing_config_file(capsys, tmp_path):
    assert "cannot read it" in _bad(capsys, ["train", "--config", str(tmp_path / "none.json")])


def test_continuing_with_other_options_is_refused(capsys, data, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["tune", "--data", data, "--out", str(out), "--trials", "1", *TINY]) == 0
    before = sorted(p.name for p in out.iterdir())
    line = _bad(capsys, ["tune", "--data", data, "--out", str(out), "--trials", "1", *TINY, "--epochs", "3"])
    assert "epochs 2 (now 3)" in line
    line = _bad(capsys, ["tune", "--data", data, "--out", str(out), "--trials", "1", *TINY,
                         "--space", "hidden=8,16"])
    assert "another space" in line
    assert sorted(p.name for p in out.iterdir()) == before and len(_trials(out)) == 1


def test_an_unrelated_folder_is_not_used(capsys, data, tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    assert "no tuning study" in _bad(capsys, ["tune", "--data", data, "--out", str(tmp_path), *TINY])
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


# -- on a Dask cluster ---------------------------------------------------------------------

def test_trials_on_a_local_dask_cluster(data, tmp_path):
    pytest.importorskip("distributed")
    psutil = pytest.importorskip("psutil")
    plan = plan_tune({"model": "mingru", "backend": "numpy", "data": data, "epochs": 2, "seq_len": 12})
    box: dict = {}

    def call():
        try:
            box["summary"] = run_tune(plan, 4, scheduler="local:2", out=tmp_path / "out", progress=False)
        except BaseException as exc:       # re-raised in the test's thread
            box["error"] = exc

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(BOUND)
    assert not thread.is_alive(), f"tune on local:2 did not finish within {BOUND:.0f} s"
    if "error" in box:
        raise box["error"]
    summary = box["summary"]
    assert "LocalCluster (2 worker processes" in summary["executor"]
    assert summary["trials"] == 4 and summary["states"]["complete"] + summary["states"]["pruned"] == 4
    assert summary["first trial"]["state"] == "complete"
    # Trial 0 is the same configuration as in a single process: the same validation loss.
    alone = run_tune(dataclasses.replace(plan), 1, out=tmp_path / "alone", progress=False)
    assert alone["first trial"]["value"] == pytest.approx(summary["first trial"]["value"], rel=1e-12)
    left = _new_children(psutil, before)
    for _ in range(20):                  # a closed cluster's processes take a moment to exit
        if not left:
            break
        time.sleep(0.5)
        left = _new_children(psutil, before)
    assert not left, f"worker processes left behind: {left}"


def _new_children(psutil, before) -> set:
    pids = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.pid not in before and "resource_tracker" not in " ".join(proc.cmdline()):
                pids.add(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def test_worker_killed_mid_trial_costs_at_most_that_trial(data, tmp_path):
    """A worker killed while it trains a trial: the tune still ends, with every trial recorded."""
    distributed = pytest.importorskip("distributed")
    psutil = pytest.importorskip("psutil")
    import os
    import signal

    plan = plan_tune({"model": "mingru", "backend": "numpy", "data": data, "epochs": 12, "seq_len": 12},
                     None, ["batch_size=32"])
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    box: dict = {}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=":0", silence_logs=50) as cluster:

        def call():
            try:
                box["summary"] = run_tune(plan, 3, scheduler=cluster.scheduler_address, out=tmp_path / "out",
                                          pruner="none", progress=False)
            except BaseException as exc:     # re-raised in the test's thread
                box["error"] = exc

        with distributed.Client(cluster.scheduler_address, timeout=30) as client:
            thread = threading.Thread(target=call, daemon=True)
            thread.start()
            victim, deadline = None, time.monotonic() + BOUND
            while victim is None and time.monotonic() < deadline and thread.is_alive():
                executing = client.run(lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing])
                busy = [w for w, keys in executing.items() if any(k.startswith("trial-") for k in keys)]
                if busy:
                    victim = client.run(os.getpid, workers=busy[:1])[busy[0]]
                time.sleep(0.05)
            assert victim is not None, "no trial was seen running on a worker"
            os.kill(victim, signal.SIGKILL)
            thread.join(BOUND)
            assert not thread.is_alive(), "the tune did not finish after a worker was killed"
    if "error" in box:
        raise box["error"]
    summary = box["summary"]
    assert summary["trials"] == 3 and summary["states"]["running"] == 0
    assert summary["states"]["fail"] <= 1 and summary["states"]["complete"] >= 2
    left = _new_children(psutil, before)
    for _ in range(20):
        if not left:
            break
        time.sleep(0.5)
        left = _new_children(psutil, before)
    assert not left, f"worker processes left behind: {left}"
