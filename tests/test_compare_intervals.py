"""The comparison reports' prediction intervals: per model and naive baseline, coverage
at the nominal level, the other method's beside it, width and width over naive's.

One tiny study (minGRU x 2 seeds and the Theta baseline, 1 epoch, width 4, 10-day
windows, two bundled tickers) is trained through ``cli.main``; every number the reports,
``summary.json`` and ``scripts/study_tables.py`` show is recomputed here from the run
folders' own ``metrics.json``. Copies of it with the interval keys stripped stand for
runs written before intervals existed.
"""
from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cli
from forecast.study.coverage import TOLERANCE_POINTS, off_level, versus_naive
from forecast.study.coverage_report import NO_INTERVALS
from forecast.study.cross import build_cross_report
from forecast.study.report import build_report

TINY = ["--models", "mingru,theta", "--seeds", "2", "--epochs", "1", "--hidden", "4", "--d-state", "4",
        "--seq-len", "10", "--start", "2012-01-01", "--batch-size", "32", "--backend", "numpy",
        "--jobs", "2", "--data", "sample:AAPL,sample:IBM"]
SOURCES = {"sample:AAPL": "sample-AAPL", "sample:IBM": "sample-IBM"}
LABELS = {"mingru": "minGRU", "theta": "Theta (auto)", "naive": "naive: tomorrow = today",
          "drift": "naive: drift"}
LEVEL = 90.0


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("intervals") / "study"
    assert cli.main(["compare", *TINY, "--out", str(out)]) == 0
    return out


def _expected(folder: Path) -> dict:
    """``{row: {"coverage", "split", "width", "ratio": [per-run values]}}`` read straight
    from the run folders' metrics.json (rows: the models, ``naive`` and ``drift``)."""
    values: dict = {}
    for path in sorted(folder.glob("runs/*/seed*/metrics.json")):
        metrics = json.loads(path.read_text())
        naive_width = metrics["naive"]["interval_width"]
        forecasts = {path.parent.parent.name: "test", "naive": "naive", "drift": "drift"}
        for row, key in forecasts.items():
            entry = values.setdefault(row, {"coverage": [], "split": [], "width": [], "ratio": []})
            entry["coverage"].append(metrics[key]["coverage"])
            entry["split"].append(metrics["intervals"]["methods"]["split"][key]["coverage"])
            entry["width"].append(metrics[key]["interval_width"])
            entry["ratio"].append(metrics[key]["interval_width"] / naive_width)
    return values


def _pct(values, spread: bool) -> str:
    mean = f"{100 * np.mean(values):.1f}"
    return f"{mean} ± {100 * np.std(values, ddof=1):.1f}" if spread else mean


def _flagged(values) -> str:
    points = 100 * np.mean(values)
    return ("below" if points < LEVEL - TOLERANCE_POINTS
            else "above" if points > LEVEL + TOLERANCE_POINTS else "")


def _table(text: str, first: str) -> dict:
    """``{label: cells}`` of the table rows of a report section whose first cell is ``first``
    (the source on the cross page; absent on a source's report)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and (first is None or cells[0] == first):
            rows[cells[1] if first else cells[0]] = cells[2:] if first else cells[1:]
    return rows


def _section(report: str) -> str:
    return report.split("## Prediction intervals")[1].split("\n## ")[0]


def _check_rows(rows: dict, expected: dict) -> None:
    for name, vals in expected.items():
        cells = rows[LABELS[name]]
        spread = name == "mingru"          # two seeds; theta and the baselines are one value each
        coverage, split, width, ratio, verdict = cells
        assert coverage.split(" *")[0] == _pct(vals["coverage"], spread), name
        assert split.split(" *")[0] == _pct(vals["split"], spread), name
        assert coverage.endswith(f"*{_flagged(vals['coverage'])}*") == bool(_flagged(vals["coverage"])), name
        assert split.endswith(f"*{_flagged(vals['split'])}*") == bool(_flagged(vals["split"])), name
        assert width.startswith(f"{np.mean(vals['width']):.4g}"), name
        assert ratio.startswith(f"{np.mean(vals['ratio']):.3f}"), name
        if name == "naive":
            assert verdict == "reference"
        else:
            assert verdict.startswith(("yes", "no")), name


def test_source_report_shows_the_mean_coverage_of_the_runs(study):
    for source, slug in SOURCES.items():
        folder = study / "sources" / slug
        expected = _expected(folder)
        assert set(expected) == {"mingru", "theta", "naive", "drift"}
        section = _section((folder / "report.md").read_text())
        assert "90 % prediction interval" in section and "**adaptive**" in section
        assert "calibrated on the errors of the validation part" in section
        assert "coverage adaptive (%) ←" in section and "coverage split (%)" in section
        rows = _table(section, None)
        assert set(rows) - {"model", "---"} == {LABELS[n] for n in expected}
        _check_rows(rows, expected)


def test_summary_files_hold_the_interval_means(study):
    folder = study / "sources" / "sample-AAPL"
    expected = _expected(folder)
    block = json.loads((folder / "summary.json").read_text())["intervals"]
    assert block["recorded"] and block["level"] == LEVEL and block["method"] == "adaptive"
    assert block["methods"] == ["adaptive", "split"] and block["calibration"] == "val"
    by_model = {r["model"]: r for r in block["rows"]}
    names = {"mingru": "mingru", "theta": "theta", "naive": "naive_last", "drift": "naive_drift"}
    with open(folder / "summary.csv", newline="") as fh:
        csv_rows = {r["model"]: r for r in csv.DictReader(fh)}
    for name, vals in expected.items():
        row = by_model[names[name]]
        assert row["coverage"]["adaptive"]["mean"] == pytest.approx(np.mean(vals["coverage"]), rel=1e-12)
        assert row["coverage"]["split"]["mean"] == pytest.approx(np.mean(vals["split"]), rel=1e-12)
        assert row["interval_width"]["mean"] == pytest.approx(np.mean(vals["width"]), rel=1e-12)
        assert row["width_vs_naive"]["mean"] == pytest.approx(np.mean(vals["ratio"]), rel=1e-12)
        assert row["off_level"]["adaptive"] == (_flagged(vals["coverage"]) or None)
        line = csv_rows[names[name]]
        assert float(line["coverage_mean"]) == pytest.approx(np.mean(vals["coverage"]), rel=1e-12)
        assert float(line["coverage_split_mean"]) == pytest.approx(np.mean(vals["split"]), rel=1e-12)
        assert float(line["width_vs_naive_mean"]) == pytest.approx(np.mean(vals["ratio"]), rel=1e-12)
    assert by_model["naive_last"]["versus_naive"] is None


def test_intervals_are_not_ranked_like_errors(study):
    report = (study / "sources" / "sample-IBM" / "report.md").read_text()
    results = report.split("## Results")[1].split("## Prediction intervals")[0]
    conclusion = report.split("## Conclusion")[1]
    for text in (results, conclusion):
        assert "coverage" not in text and "interval_width" not in text


def test_cross_page_has_one_table_of_source_by_model(study):
    section = _section((study / "report.md").read_text())
    assert "90 % prediction interval" in section and "validation part" in section
    for source, slug in SOURCES.items():
        expected = _expected(study / "sources" / slug)
        rows = _table(section, source)
        assert set(rows) == {LABELS[n] for n in expected}
        _check_rows(rows, expected)


def _strip_intervals(folder: Path, only: str | None = None) -> None:
    """Rewrite run folders as they were before intervals existed (``only``: one run's)."""
    for path in folder.glob("runs/*/seed*/metrics.json"):
        if only and path.parent.relative_to(folder / "runs").as_posix() != only:
            continue
        metrics = json.loads(path.read_text())
        metrics.pop("intervals")
        for key in ("test", "naive", "drift"):
            metrics[key].pop("coverage")
            metrics[key].pop("interval_width")
        path.write_text(json.dumps(metrics))
        predictions = path.parent / "predictions.csv"
        pd.read_csv(predictions).drop(columns=["lower", "upper"]).to_csv(predictions, index=False)


def test_runs_without_intervals_still_render(study, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(study / "sources" / "sample-AAPL", old)
    _strip_intervals(old)
    report = build_report(old, draw=False).read_text()
    assert NO_INTERVALS in _section(report)
    assert "coverage" not in report.split("## Prediction intervals")[0]
    assert json.loads((old / "summary.json").read_text())["intervals"]["recorded"] is False
    # The cross page over an old and a new source: the new one's rows, a line for the old.
    new = tmp_path / "new"
    shutil.copytree(study / "sources" / "sample-IBM", new)
    page = build_cross_report(tmp_path, [old, new]).read_text()
    section = _section(page)
    assert "No intervals were recorded on sample:AAPL" in section
    assert _table(section, "sample:IBM") and not _table(section, "sample:AAPL")


def test_some_runs_without_intervals_are_counted(study, tmp_path):
    part = tmp_path / "part"
    shutil.copytree(study / "sources" / "sample-IBM", part)
    kept = json.loads((part / "runs/mingru/seed0/metrics.json").read_text())["test"]
    _strip_intervals(part, only="mingru/seed1")
    section = _section(build_report(part, draw=False).read_text())
    assert "1 of 3 runs recorded no intervals" in section
    # The row averages the run that recorded intervals; one value has no spread to show.
    cells = _table(section, None)["minGRU (1 of 2 runs)"]
    assert cells[0].split(" *")[0] == f"{100 * kept['coverage']:.1f}"
    assert cells[2] == f"{kept['interval_width']:.4g}"


def _study_tables():
    path = Path(__file__).resolve().parents[1] / "scripts" / "study_tables.py"
    spec = importlib.util.spec_from_file_location("study_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_study_tables_prints_the_interval_table(study, tmp_path):
    tables = _study_tables()
    (tmp_path / "compare-return").symlink_to(study, target_is_directory=True)
    old = tmp_path / "compare-close" / "sources" / "sample-AAPL"
    shutil.copytree(study / "sources" / "sample-AAPL", old)
    _strip_intervals(old)
    build_report(old, draw=False)
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert tables.main(["study_tables.py", str(tmp_path)]) == 0
    printed = text.getvalue()
    section = printed.split("### compare-return: prediction intervals")[1].split("###")[0]
    assert "90 % intervals by adaptive" in section and "validation part" in section
    names = {"mingru": "mingru", "theta": "theta", "naive": "naive_last", "drift": "naive_drift"}
    for source, slug in SOURCES.items():
        rows = _table(section, source)
        for name, vals in _expected(study / "sources" / slug).items():
            cells = rows[names[name]]
            assert cells[0].split(" *")[0] == _pct(vals["coverage"], name == "mingru")
            assert cells[1].split(" *")[0] == _pct(vals["split"], name == "mingru")
            assert cells[2].startswith(f"{np.mean(vals['width']):.4g}")
    close = printed.split("### compare-close: prediction intervals")[1].split("###")[0]
    assert "No prediction intervals were recorded" in close


@pytest.mark.parametrize("coverage, expected", [(0.869, "below"), (0.87, None), (0.9, None), (0.93, None),
                                                (0.931, "above"), (float("nan"), None)])
def test_off_level_flags_beyond_three_points(coverage, expected):
    assert off_level(coverage, LEVEL) == expected


def test_versus_naive_needs_a_narrower_interval_at_similar_coverage():
    assert versus_naive(0.89, 0.8, 0.90) == "narrower"
    assert versus_naive(0.95, 0.8, 0.90) == "narrower"        # covering more is no fault
    assert versus_naive(0.85, 0.8, 0.90) == "covers less"
    assert versus_naive(0.90, 1.2, 0.90) == "wider"
    assert versus_naive(0.90, float("nan"), 0.90) is None
