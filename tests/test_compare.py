"""``cli.py compare`` end to end, on a tiny budget, plus its option parsing and planning.

One small study (2 models x 2 seeds, 1 epoch, width 4, 10-day windows, one year of
data) is trained through ``cli.main`` with two worker processes; the same runs are
then trained again with one process to check that ``--jobs`` changes nothing.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from pathlib import Path

import numpy as np
import pytest

import cli
from forecast.errors import UserInputError
from forecast.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from forecast.study import compare, executors, workers
from forecast.study import plan as planning
from forecast.study.report import fmt_stat, metric_header

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--models", "mingru,hybrid", "--seeds", "2", "--epochs", "1", "--hidden", "4",
        "--d-state", "4", "--seq-len", "10", "--start", "2012-01-01", "--batch-size", "32",
        "--backend", "numpy"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "study"
    status = cli.main(["compare", *TINY, "--jobs", "2", "--out", str(out)])
    assert status == 0
    return out


def _run_metrics(out: Path) -> dict:
    """{model: {metric: [per-seed values]}} from the runs' own metrics.json files."""
    values: dict = {}
    for seed_dir in sorted(out.glob("runs/*/seed*")):
        test = json.loads((seed_dir / "metrics.json").read_text())["test"]
        for key, value in test.items():
            values.setdefault(seed_dir.parent.name, {}).setdefault(key, []).append(value)
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    return parser


def test_outputs_exist(study):
    for name in ("report.md", "summary.csv", "summary.json", "study.json"):
        assert (study / name).is_file(), name
    for model in ("mingru", "hybrid"):
        for seed in (0, 1):
            run = study / "runs" / model / f"seed{seed}"
            for name in ("config.json", "history.json", "metrics.json", "predictions.csv",
                         "checkpoint.npz"):
                assert (run / name).is_file(), run / name
            assert json.loads((run / "config.json").read_text())["seed"] == seed
    pngs = sorted((study / "figures").glob("*.png"))
    assert len(pngs) == 5
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC


def test_summary_is_mean_and_std_of_the_runs(study):
    per_run = _run_metrics(study)
    with open(study / "summary.csv", newline="") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    assert {"mingru", "hybrid", "naive_last", "naive_drift"} == set(rows)
    summary = {r["model"]: r for r in json.loads((study / "summary.json").read_text())["rows"]}
    for model, metrics in per_run.items():
        for key in METRIC_NAMES:
            vals = np.array(metrics[key], dtype=float)
            assert float(rows[model][f"{key}_mean"]) == pytest.approx(vals.mean(), rel=1e-12)
            assert float(rows[model][f"{key}_std"]) == pytest.approx(vals.std(ddof=1), rel=1e-12)
            assert summary[model][key]["mean"] == pytest.approx(vals.mean(), rel=1e-12)
        assert float(rows[model]["epochs_mean"]) == 1.0
        assert float(rows[model]["epoch_seconds_mean"]) > 0
    naive = json.loads((study / "runs/hybrid/seed0/metrics.json").read_text())["naive"]
    assert float(rows["naive_last"]["mae_mean"]) == pytest.approx(naive["mae"], rel=1e-12)


def test_report_shows_the_numbers_and_names_the_best(study):
    per_run = _run_metrics(study)
    report = (study / "report.md").read_text()
    results = report.split("## Results")[1].split("### Figures")[0]
    for model, label in (("mingru", "| minGRU |"), ("hybrid", "| Hybrid (Mamba+minGRU) |")):
        line = next(x for x in results.splitlines() if x.startswith(label))
        for key in METRIC_NAMES:
            vals = np.array(per_run[model][key], dtype=float)
            assert fmt_stat(vals.mean(), vals.std(ddof=1)) in line, (model, key)
    # The conclusion names the best mean of every metric (naive rows included).
    with open(study / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    conclusion = report.split("## Conclusion")[1]
    verdicts = {x.split("|")[1].strip(): x for x in conclusion.splitlines() if x.startswith("| ")}
    for key in METRIC_NAMES:
        line = verdicts[metric_header(key, "USD")]
        means = {r["model"]: float(r[f"{key}_mean"]) for r in rows
                 if math.isfinite(float(r[f"{key}_mean"]))}
        pick = max if key in HIGHER_IS_BETTER else min
        best = pick(means, key=means.get)
        assert f"**{best}**" in line or f"tied with {best}" in line, (key, best, line)
    assert "Environment" in report and "jobs (runs at once) | 2" in report
    assert "](figures/1_convergence.png)" in report


def test_results_do_not_depend_on_jobs(study, tmp_path):
    args = _parser().parse_args([*TINY, "--jobs", "1", "--out", str(tmp_path / "serial")])
    plan = planning.plan_study(args)
    assert plan.jobs == 1
    executors.execute(plan, progress=False)
    for spec in plan.runs:
        twin = study / spec.run_dir.relative_to(tmp_path / "serial")
        for name in ("metrics.json", "predictions.csv"):
            assert (spec.run_dir / name).read_bytes() == (twin / name).read_bytes(), spec.label
        losses = [(h["train_loss"], h["val_loss"])
                  for h in json.loads((spec.run_dir / "history.json").read_text())]
        assert losses == [(h["train_loss"], h["val_loss"])
                          for h in json.loads((twin / "history.json").read_text())]


def test_report_only_rebuilds_the_same_summary(study):
    before = (study / "summary.csv").read_bytes()
    (study / "summary.csv").unlink()
    assert cli.main(["compare", "--report-only", "--out", str(study)]) == 0
    assert (study / "summary.csv").read_bytes() == before


def test_resume_reuses_finished_runs_and_drops_the_others(study, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(study, copy)
    stamp = (copy / "runs/mingru/seed0/metrics.json").stat().st_mtime_ns
    argv = [a if a != "mingru,hybrid" else "mingru" for a in TINY]
    assert cli.main(["compare", *argv, "--resume", "--out", str(copy)]) == 0
    assert "0 run(s) to train (2 reused)" in capsys.readouterr().err
    assert (copy / "runs/mingru/seed0/metrics.json").stat().st_mtime_ns == stamp
    assert not (copy / "runs/hybrid").exists()
    with open(copy / "summary.csv", newline="") as fh:
        assert {r["model"] for r in csv.DictReader(fh)} == {"mingru", "naive_last", "naive_drift"}


def test_existing_output_is_not_overwritten(study, capsys):
    assert cli.main(["compare", *TINY, "--out", str(study)]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--models", "mamba,lstm"], "unknown model"),
    (["--seeds", "0"], "at least 1"),
    (["--seeds", "two"], "neither a count"),
    (["--seq-lens", "30,abc"], "integers"),
    (["--epochs", "0"], "--epochs"),
    (["--jobs", "0"], "--jobs"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    status = cli.main(["compare", *argv, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_parse_seeds_and_lists():
    assert planning.parse_seeds("3") == [0, 1, 2]
    assert planning.parse_seeds("7,11,13") == [7, 11, 13]
    assert planning.parse_seeds("5,") == [5]
    assert planning.parse_int_list("30, 60,120,60", "--seq-lens") == [30, 60, 120]
    with pytest.raises(UserInputError):
        planning.parse_seeds("-1,2")


def test_plan_passes_study_options_to_every_run(tmp_path):
    args = _parser().parse_args(["--models", "hybrid,gru", "--seeds", "4,9", "--seq-lens",
                                 "30,60", "--horizon", "3", "--fusion", "gate", "--epochs",
                                 "7", "--out", str(tmp_path), "--jobs", "3"])
    plan = planning.plan_study(args, cores=8)
    assert len(plan.runs) == 2 * 2 * 2 and plan.jobs == 3 and plan.threads == 2
    first = plan.runs[0]
    assert first.run_dir == tmp_path / "runs" / "seq30" / "hybrid" / "seed4"
    assert {(s.seq_len, s.model, s.seed) for s in plan.runs} == {
        (L, m, s) for L in (30, 60) for m in ("hybrid", "gru") for s in (4, 9)}
    for spec in plan.runs:
        assert spec.config["horizon"] == 3 and spec.config["fusion"] == "gate"
        assert spec.config["epochs"] == 7 and spec.config["seq_len"] == spec.seq_len
    # One window: no seq folder level.
    args = _parser().parse_args(["--models", "mamba", "--seeds", "1", "--out", str(tmp_path)])
    assert planning.plan_study(args, cores=8).runs[0].run_dir == tmp_path / "runs/mamba/seed0"


def test_default_jobs_never_oversubscribe():
    for cores in (1, 2, 3, 8, 64):
        for n_runs in (1, 2, 5, 12, 100):
            for backend in ("numpy", "numba"):
                jobs = planning.default_jobs(backend, n_runs, cores)
                threads = int(workers.thread_env(backend, max(1, cores // jobs))
                              ["NUMBA_NUM_THREADS"])
                assert 1 <= jobs <= min(cores, n_runs)
                assert jobs * threads <= cores
    env = workers.thread_env("numpy", 4)
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert workers.thread_env("numba", 4)["NUMBA_NUM_THREADS"] == "4"


def test_spawned_workers_start_with_the_thread_variables():
    # The mechanism execute() relies on: variables set around the pool's creation are
    # in the workers' environment from their first instruction.
    env = workers.thread_env("numba", 1)
    with workers.patched_environ(env):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            seen = pool.submit(os.getenv, "OPENBLAS_NUM_THREADS").result()
    assert seen == "1"
