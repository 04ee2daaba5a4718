"""``compare --tuned DIR``: runs take the options of their best.json, the reports say so.

One tiny stock study (minGRU and GRU, 1 seed, 1 epoch, width 4, 10-day windows, IBM from
mid-2011) is trained through ``cli.main`` with a hand-written best.json for minGRU; the
GRU keeps the shared options. The same study is resumed after the best.json changed (only
minGRU trains again). Bad folders are one-line errors that write nothing. A tiny
long-horizon study checks the horizon match and the benchmark report. The matching rules
themselves are checked on plans, without training.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

import cli
from forecast.errors import UserInputError
from forecast.study import compare
from forecast.study import plan as planning
from forecast.study.tuned import find_tuned
from tests.test_cli import _bad
from tests.test_ltsf_cli import series_csv

TINY = ["--models", "mingru,gru", "--seeds", "1", "--epochs", "1", "--hidden", "4", "--seq-len", "10",
        "--start", "2011-06-01", "--batch-size", "32", "--backend", "numpy", "--jobs", "2",
        "--data", "sample:IBM"]
#: What ``tune`` would write for minGRU on IBM (a subset: a hand-written file may name any).
MINGRU_BEST = {"protocol": "stock", "model": "mingru", "data": "sample:ibm", "target": "close",
               "hidden": 8, "seq_len": 20, "lr": 0.01,
               # Never applied: set per run (seed), the data's identity (split), the study's
               # workers (backend), another model's option (fusion).
               "seed": 7, "split": [0.6, 0.2], "backend": "numba", "fusion": "gate"}


def write_best(folder: Path, name: str, values: dict) -> Path:
    path = folder / name / "best.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    return parser


@pytest.fixture(scope="module")
def tuned_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuned")
    best = write_best(root / "tune", "stock-sample-IBM-mingru", MINGRU_BEST)
    # Another model's and another source's files match no run here.
    write_best(root / "tune", "stock-sample-AAPL-mingru", {**MINGRU_BEST, "data": "sample:AAPL"})
    write_best(root / "tune", "stock-sample-IBM-hybrid", {**MINGRU_BEST, "model": "hybrid"})
    out = root / "study"
    assert cli.main(["compare", *TINY, "--tuned", str(root / "tune"), "--out", str(out)]) == 0
    return root, out, best


def test_the_matching_run_uses_the_tuned_options(tuned_study):
    _, out, best = tuned_study
    mingru = json.loads((out / "runs/mingru/seed0/config.json").read_text())
    assert (mingru["hidden"], mingru["seq_len"], mingru["lr"]) == (8, 20, 0.01)
    # Options the study keeps: its seed, split, backend; fusion is the hybrid's only.
    assert (mingru["seed"], mingru["split"], mingru["backend"], mingru["fusion"]) == (0, [0.7, 0.15], "numpy",
                                                                                      "scalar")
    record = json.loads((out / "runs/mingru/seed0/summary.json").read_text())["tuned"]
    assert record["best_json"] == str(best)
    assert record["changed"] == {"seq_len": {"shared": 10, "tuned": 20}, "hidden": {"shared": 4, "tuned": 8},
                                 "lr": {"shared": 0.003, "tuned": 0.01}}


def test_the_other_models_keep_the_shared_options(tuned_study):
    _, out, _ = tuned_study
    gru = json.loads((out / "runs/gru/seed0/config.json").read_text())
    assert (gru["hidden"], gru["seq_len"], gru["lr"]) == (4, 10, 0.003)
    assert "tuned" not in json.loads((out / "runs/gru/seed0/summary.json").read_text())
    study = json.loads((out / "study.json").read_text())["study"]["tuned"]
    assert [runs for runs in study["files"].values() if runs] == [["mingru on sample:IBM"]]


def test_the_report_names_the_tuned_row(tuned_study):
    _, out, best = tuned_study
    report = (out / "report.md").read_text()
    results = report.split("## Results")[1].split("###")[0]
    assert "| minGRU (tuned) |" in results and "| GRU |" in results
    tuned = report.split("## Tuned configurations")[1].split("## Results")[0]
    assert f"| sample:IBM | minGRU | `{best}` | seq_len 10 → 20, hidden 4 → 8, lr 0.003 → 0.01 |" in tuned
    # The configuration table shows the shared options, not the tuned run's.
    assert "| hidden | 4 |" in report and "| lr | 0.003 |" in report
    # The tuned run keeps its place in the study's window (10 days), not a window of its own.
    summary = json.loads((out / "summary.json").read_text())
    assert {(r["seq_len"], r["model"], bool(r["tuned"])) for r in summary["rows"] if r["kind"] == "model"} == {
        (10, "mingru", True), (10, "gru", False)}
    assert "saw different data" not in report


def test_resume_trains_again_only_what_a_changed_best_json_changes(tuned_study, tmp_path, capsys):
    root, out, _ = tuned_study
    import shutil

    tune, copy = tmp_path / "tune", tmp_path / "study"
    shutil.copytree(root / "tune", tune)
    shutil.copytree(out, copy)
    argv = ["compare", *TINY, "--tuned", str(tune), "--resume", "--out", str(copy)]
    # Same options, but the record would name another file: trained again, not mislabelled.
    assert cli.main(argv) == 0
    assert "1 run(s) to train (1 reused)" in capsys.readouterr().err
    assert cli.main(argv) == 0
    assert "0 run(s) to train (2 reused)" in capsys.readouterr().err
    write_best(tune, "stock-sample-IBM-mingru", {**MINGRU_BEST, "hidden": 6})
    assert cli.main(argv) == 0
    assert "1 run(s) to train (1 reused)" in capsys.readouterr().err
    assert json.loads((copy / "runs/mingru/seed0/config.json").read_text())["hidden"] == 6


def test_two_best_json_for_one_run_is_one_error_and_nothing_written(tmp_path, capsys):
    write_best(tmp_path / "tune", "a", MINGRU_BEST)
    write_best(tmp_path / "tune", "b", {**MINGRU_BEST, "hidden": 16})
    out = tmp_path / "study"
    line = _bad(capsys, ["compare", *TINY, "--tuned", str(tmp_path / "tune"), "--out", str(out)], out=str(out))
    assert "a/best.json" in line and "b/best.json" in line and "both tune mingru on sample:IBM" in line


@pytest.mark.parametrize("make", ["empty", "missing"])
def test_a_folder_without_best_json_is_one_error(tmp_path, capsys, make):
    tune = tmp_path / "tune"
    if make == "empty":
        (tune / "sub").mkdir(parents=True)
    out = tmp_path / "study"
    line = _bad(capsys, ["compare", *TINY, "--tuned", str(tune), "--out", str(out)], out=str(out))
    assert f"--tuned {tune}" in line
    assert ("no best.json" if make == "empty" else "no such folder") in line


def test_a_best_json_without_model_or_with_an_unknown_option_is_refused(tmp_path):
    write_best(tmp_path, "x", {"data": "sample:IBM", "hidden": 8})
    with pytest.raises(UserInputError, match="names no model"):
        find_tuned(tmp_path)
    write_best(tmp_path, "x", {**MINGRU_BEST, "hiden": 8})
    with pytest.raises(UserInputError, match=r"--tuned: .*unknown option"):
        find_tuned(tmp_path)


def test_matching_needs_protocol_model_source_and_target(tmp_path):
    tune = tmp_path / "tune"
    write_best(tune, "other-target", {**MINGRU_BEST, "target": "return"})
    write_best(tune, "ltsf", {**MINGRU_BEST, "protocol": "ltsf"})
    write_best(tune, "no-target", {k: v for k, v in MINGRU_BEST.items() if k != "target"} | {"model": "gru"})
    args = _parser().parse_args([*TINY, "--tuned", str(tune), "--out", str(tmp_path / "o")])
    plan = planning.plan_study(args, cores=2)
    tuned = {s.model: s.tuned for s in plan.runs}
    # No target in the file: any target matches; another target or protocol: none.
    assert tuned["mingru"] is None and tuned["gru"]["best_json"].endswith("no-target/best.json")


def test_several_windows_keep_the_swept_seq_len(tmp_path):
    write_best(tmp_path / "tune", "a", MINGRU_BEST)
    argv = [a if a != "10" else "10,15" for a in TINY]
    plan = planning.plan_study(_parser().parse_args([*argv, "--tuned", str(tmp_path / "tune"),
                                                     "--out", str(tmp_path / "o")]), cores=2)
    mingru = [s for s in plan.runs if s.model == "mingru"]
    assert [(s.seq_len, s.config["seq_len"], s.config["hidden"]) for s in mingru] == [(10, 10, 8), (15, 15, 8)]
    assert mingru[0].tuned["not_applied"] == {"seq_len": 20}
    assert "--tuned" in planning.command_line(plan)


def test_ltsf_matches_the_horizon_and_the_benchmark_marks_the_row(tmp_path):
    data = series_csv(tmp_path / "series.csv", rows=400)
    best = write_best(tmp_path / "tune", "ltsf-series-12-mingru",
                      {"protocol": "ltsf", "model": "mingru", "data": data, "horizon": 12, "hidden": 8,
                       "seg_len": 12, "seq_len": 48})
    out = tmp_path / "study"
    argv = ["compare", "--protocol", "ltsf", "--models", "mingru,gru", "--seeds", "1", "--horizons", "12,24",
            "--hidden", "4", "--seq-len", "24", "--seg-len", "6", "--epochs", "1", "--batch-size", "64",
            "--backend", "numpy", "--jobs", "2", "--data", data, "--tuned", str(tmp_path / "tune"),
            "--out", str(out)]
    assert cli.main(argv) == 0
    slug = next((out / "runs").iterdir()).name
    tuned = json.loads((out / f"runs/{slug}/h12/seq24/mingru/seed0/config.json").read_text())
    untuned = json.loads((out / f"runs/{slug}/h24/seq24/mingru/seed0/config.json").read_text())
    assert (tuned["hidden"], tuned["seg_len"], tuned["seq_len"]) == (8, 12, 48)
    assert (untuned["hidden"], untuned["seg_len"], untuned["seq_len"]) == (4, 6, 24)
    report = (out / "benchmark.md").read_text()
    assert "| minGRU (tuned at H = 12) |" in report
    assert f"| 24 | 12 | minGRU | `{best}` | seq_len 24 → 48, hidden 4 → 8, seg_len 6 → 12 |" in report
    # The tuned run stays in the study's lookback 24, beside the others.
    assert "lookback 48" not in report
    bench = json.loads((out / "benchmark.json").read_text())
    assert [(t["horizon"], t["model"]) for t in bench["tuned"]] == [(12, "mingru")]
