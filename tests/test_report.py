"""Summary, conclusions, figures and report of a comparison study, on fake run folders.

The fake runs are written in the pipeline's format (config.json, history.json,
metrics.json, predictions.csv, summary.json, checkpoint.npz),
with noise levels chosen per model so that the expected verdicts are known.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast.study.report import build_report, figure_paths, fmt, fmt_stat, metric_header
from forecast.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from forecast.study.runs import load_study
from forecast.study.summary import Stat, SummaryRow, conclude, summarize

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metrics(actual, pred, prev, scale):
    err = pred - actual
    mse = float(np.mean(err ** 2))
    moving = actual != prev
    return {"mse": mse, "rmse": mse ** 0.5, "mae": float(np.mean(np.abs(err))),
            "r2": float(1 - np.sum(err ** 2) / np.sum((actual - actual.mean()) ** 2)),
            "mape": float(100 * np.mean(np.abs(err / actual))),
            "mase": float(np.mean(np.abs(err)) / scale),
            "rel_mae": float(np.mean(np.abs(err)) / np.mean(np.abs(actual - prev))),
            # a forecast that calls no direction (naive) has none: null in the JSON
            "direction_accuracy": (float(np.mean(np.sign(pred - prev)[moving]
                                                 == np.sign(actual - prev)[moving]))
                                   if np.any(pred != prev) else None)}


def make_run(path, model, seed, seq_len, noise, n_test=90, epochs=5, fusion="scalar"):
    """Write one fake run folder; predictions are ``actual + N(0, noise)``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    market = np.random.default_rng(seq_len)
    price = 150 + np.cumsum(market.normal(0.1, 2.0, n_test + 1))
    prev, actual = price[:-1], price[1:]
    rng = np.random.default_rng([seed, seq_len, sum(map(ord, model))])
    pred = actual + rng.normal(0, noise, n_test)
    dates = pd.bdate_range("2023-01-02", periods=n_test).strftime("%Y-%m-%d")
    pd.DataFrame({"date": dates, "actual": actual, "predicted": pred, "naive": prev}).to_csv(
        path / "predictions.csv", index=False)
    scale = 1.5
    (path / "metrics.json").write_text(json.dumps({
        "test": _metrics(actual, pred, prev, scale), "naive": _metrics(actual, prev, prev, scale),
        "drift": _metrics(actual, prev + 0.1, prev, scale)}))
    history = []
    for e in range(epochs - seed % 2):          # odd seeds "stop early"
        entry = {"epoch": e + 1, "train_loss": 0.5 * math.exp(-0.5 * e) + 0.01 * rng.random(),
                 "val_loss": 0.6 * math.exp(-0.3 * e) + 0.05 * rng.random(), "lr": 1e-3,
                 "grad_norm": 1.0, "epoch_seconds": 0.5 + 0.1 * rng.random()}
        if model == "hybrid":
            entry["alpha"] = 1 / (1 + math.exp(-0.2 * e * (seed + 1)))   # logged as sigmoid(alpha)
        history.append(entry)
    (path / "history.json").write_text(json.dumps(history))
    (path / "config.json").write_text(json.dumps({
        "model": model, "seed": seed, "seq_len": seq_len, "data": "sample:AAPL", "epochs": epochs,
        "hidden": 8, "fusion": fusion, "horizon": 1, "lr": 1e-3, "backend": "numpy"}))
    (path / "summary.json").write_text(json.dumps({
        "data": {"source": "sample", "ticker": "AAPL", "first_date": "2015-01-02",
                 "last_date": "2023-06-30",
                 "split": {"test": {"first_date": dates[0], "last_date": dates[-1],
                                    "windows": n_test}}},
        "training": {"epochs_run": epochs - seed % 2}, "seconds": 2.0}))
    np.savez(path / "checkpoint.npz", w=np.zeros(2))


def make_study(root, noise, seeds=(0, 1, 2), seq_lens=(20,)):
    """A study folder with one fake run per (window, model, seed)."""
    root = Path(root)
    for seq_len in seq_lens:
        for model, level in noise.items():
            for seed in seeds:
                sub = root / "runs"
                if len(seq_lens) > 1:
                    sub = sub / f"seq{seq_len}"
                make_run(sub / model / f"seed{seed}", model, seed, seq_len, level)
    return root


NOISE = {"mamba": 2.6, "mingru": 2.4, "hybrid": 0.8, "gru": 3.0}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = make_study(tmp_path_factory.mktemp("study"), NOISE)
    build_report(root, {"command": "python cli.py compare --fake", "wall_seconds": 1.5,
                        "environment": {"python": "3.x", "jobs (runs at once)": 2}})
    return root


def _per_run(root):
    """{model: {metric: [values over seeds]}} read straight from the metrics.json files."""
    out: dict = {}
    for path in sorted(Path(root, "runs").rglob("metrics.json")):
        model = json.loads((path.parent / "config.json").read_text())["model"]
        test = json.loads(path.read_text())["test"]
        for key, value in test.items():
            out.setdefault(model, {}).setdefault(key, []).append(value)
    return out


def test_outputs_exist_and_figures_are_pngs(study):
    for name in ("report.md", "summary.csv", "summary.json"):
        assert (study / name).stat().st_size > 0
    pngs = sorted((study / "figures").glob("*.png"))
    assert [p.stem for p in pngs] == ["1_convergence", "2_predictions", "3_fusion_weight",
                                      "4_errors", "5_metrics"]
    import matplotlib.image as mpimg
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC
        height, width = mpimg.imread(png).shape[:2]
        assert width >= 600 and height >= 300
    report = (study / "report.md").read_text()
    for png in pngs:
        assert f"](figures/{png.name})" in report


def test_summary_files_equal_mean_and_std_of_run_metrics(study):
    per_run = _per_run(study)
    with open(study / "summary.csv", newline="") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    payload = json.loads((study / "summary.json").read_text())
    by_model = {r["model"]: r for r in payload["rows"]}
    assert set(per_run) | {"naive_last", "naive_drift"} == set(rows) == set(by_model)
    for model, metrics in per_run.items():
        assert int(rows[model]["n_seeds"]) == 3
        for key in METRIC_NAMES:
            values = np.array(metrics[key])
            assert float(rows[model][f"{key}_mean"]) == pytest.approx(values.mean(), rel=1e-12)
            assert float(rows[model][f"{key}_std"]) == pytest.approx(values.std(ddof=1),
                                                                     rel=1e-12)
            assert by_model[model][key]["mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert by_model[model][key]["std"] == pytest.approx(values.std(ddof=1), rel=1e-12)
    # Epoch counts come from the histories: seeds 0 and 2 ran 5 epochs, seed 1 ran 4.
    assert float(rows["mamba"]["epochs_mean"]) == pytest.approx(14 / 3)
    assert float(rows["naive_last"]["mse_std"]) == 0.0


def test_report_table_shows_the_summary_numbers_and_bolds_the_best(study):
    per_run = _per_run(study)
    report = (study / "report.md").read_text()
    table = report.split("## Results")[1].split("### Figures")[0]
    lines = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "Hybrid (Mamba+minGRU)" in lines and "Mamba" in lines
    for model, label in (("mamba", "Mamba"), ("hybrid", "Hybrid (Mamba+minGRU)")):
        for key in METRIC_NAMES:
            values = np.array(per_run[model][key])
            assert fmt_stat(values.mean(), values.std(ddof=1)) in lines[label]
    # Hybrid has by far the smallest noise: its RMSE cell (3rd column) is bold.
    rmse_cells = {label: line.split("|")[3].strip() for label, line in lines.items()}
    assert rmse_cells["Hybrid (Mamba+minGRU)"].startswith("**")
    assert not rmse_cells["Mamba"].startswith("**")
    assert "RMSE (USD) ↓" in table and "R² ↑" in table


def test_conclusion_names_the_best_model_of_each_metric(study):
    rows = summarize(load_study(study / "runs")).rows
    conclusion_text = (study / "report.md").read_text().split("## Conclusion")[1]
    verdict_lines = {line.split("|")[1].strip(): line
                     for line in conclusion_text.splitlines() if line.startswith("| ")}
    for metric in METRIC_NAMES:
        cand = [r for r in rows if math.isfinite(r.mean(metric))]
        sign = -1 if metric in HIGHER_IS_BETTER else 1
        best = min(cand, key=lambda r: sign * r.mean(metric)).model
        line = verdict_lines[metric_header(metric, "USD")]
        assert f"**{best}**" in line, (metric, best, line)
    assert "hybrid distinguishable from all others" in conclusion_text


def _row(model, values, metric="rmse"):
    return SummaryRow(seq_len=20, model=model, seeds=(0, 1, 2), stats={metric: Stat.of(values)})


def test_conclusion_within_seed_spread_is_not_distinguishable():
    rows = [_row("mamba", [1.00, 1.20, 0.80]), _row("mingru", [1.05, 1.25, 0.85]),
            _row("hybrid", [0.98, 1.30, 0.70]), _row("naive_last", [2.0, 2.0, 2.0])]
    verdict = conclude(rows, 20).verdicts[0]
    assert verdict.best == verdict.best_model == "hybrid"     # lowest mean RMSE
    assert verdict.gaps and not any(g.separated for g in verdict.gaps)
    fusion = conclude(rows, 20).fusion
    assert {(f[1], f[2], f[3].separated) for f in fusion} == {("mamba", True, False),
                                                             ("mingru", True, False)}


def test_conclusion_clear_gap_is_distinguishable_and_respects_direction():
    rows = [_row("mamba", [0.50, 0.51, 0.49], "direction_accuracy"),
            _row("hybrid", [0.60, 0.61, 0.59], "direction_accuracy"),
            _row("naive_last", [0.0, 0.0, 0.0], "direction_accuracy")]
    verdict = conclude(rows, 20).verdicts[0]
    assert verdict.best == "hybrid"                 # higher is better here
    assert [g.separated for g in verdict.gaps] == [True]
    # Exactly at the spread is not "larger than the spread".
    gap = conclude([_row("a", [1.0, 1.0, 1.0]), _row("b", [2.0, 2.0, 2.0])], 20).verdicts[0].gaps[0]
    assert gap.difference == 1.0 and gap.separated


def test_naive_best_is_reported_and_rel_mae_decides_beating_naive():
    # MASE above 1 for everyone (an in-sample scale from a lower price level); the MAE
    # relative to naive on the test days is what says who beats it.
    rows = [SummaryRow(20, "mamba", (0, 1), {"rel_mae": Stat.of([1.2, 1.3]), "mase": Stat.of([6, 7])}),
            SummaryRow(20, "hybrid", (0, 1), {"rel_mae": Stat.of([0.9, 0.95]), "mase": Stat.of([5, 5])}),
            SummaryRow(20, "naive_last", (0, 1), {"rel_mae": Stat.of([0.8, 0.8]),
                                                  "mase": Stat.of([5.5, 5.5])})]
    c = conclude(rows, 20, metrics=["rel_mae"])
    assert c.verdicts[0].best == "naive_last" and c.verdicts[0].naive_best
    assert c.verdicts[0].best_model == "hybrid"
    assert c.beats_naive == {"mamba": False, "hybrid": True}


def test_not_distinguishable_wording_in_report(tmp_path):
    # Every model has the same noise level: the seed spread swamps the gaps.
    same = {"mamba": 2.0, "mingru": 2.0, "hybrid": 2.0}
    root = make_study(tmp_path, same, seeds=(0, 1), seq_lens=(20, 30))
    build_report(root, draw=False)          # the figures are tested elsewhere
    report = (root / "report.md").read_text()
    assert "not distinguishable (all gaps within the seed spread)" in report
    assert not (root / "figures").exists() and "Figures were not drawn" in report
    # Two windows: a section per window, the cross-window table, suffixed figure names.
    assert figure_paths(root, 30, several=True)["metrics"].name == "5_metrics_seq30.png"
    assert figure_paths(root, 30, several=False)["metrics"].name == "5_metrics.png"
    assert "### Window 20 days" in report and "### Window 30 days" in report
    assert "| window | metric |" in report and "hybrid rank" in report
    with open(root / "summary.csv", newline="") as fh:
        assert {int(r["seq_len"]) for r in csv.DictReader(fh)} == {20, 30}


def test_without_hybrid_no_fusion_figure(tmp_path):
    root = make_study(tmp_path, {"mamba": 2.0, "gru": 2.5}, seeds=(0,))
    build_report(root)
    report = (root / "report.md").read_text()
    assert not (root / "figures" / "3_fusion_weight.png").exists()
    assert "not drawn" in report and "Fusion question: not answered" in report
    # One seed: the spread is 0, shown as such rather than NaN.
    assert "± 0 " in report or "± 0 |" in report


def test_fmt_is_stable():
    assert fmt(3.14159) == "3.142" and fmt(0.0123456) == "0.01235"
    assert fmt(float("nan")) == "–" and fmt(None) == "–" and fmt(12345.6) == "12346"
    assert fmt_stat(1.5, 0.123) == "1.5 ± 0.12"


def test_the_summary_is_computed_once_and_renderers_get_only_it(tmp_path, monkeypatch):
    # Data flows one way, runs -> summary -> renderers: one summarize() per report (per
    # source for the cross-source page), and no renderer sees a run record.
    from forecast.study import cross, figures, report
    from forecast.study import summary as summary_module
    from forecast.study.figure_data import WindowFigures
    from forecast.study.runs import RunRecord
    from forecast.study.summary import StudySummary, SummaryRow

    calls = []

    def counting(records):
        calls.append(len(records))
        return summary_module.summarize(records)

    def no_records(name, kind):
        real = getattr(figures, name)

        def spy(data, path, *args, **kwargs):
            assert not any(isinstance(x, RunRecord) for x in (data if isinstance(data, list) else [data]))
            assert isinstance(data, kind) or all(isinstance(r, kind) for r in data), (name, data)
            seen.append(name)
            return real(data, path, *args, **kwargs)
        monkeypatch.setattr(figures, name, spy)

    seen = []
    for name in ("plot_convergence", "plot_predictions", "plot_fusion_weight", "plot_errors"):
        no_records(name, WindowFigures)
    no_records("plot_metrics", SummaryRow)
    rendered = []
    real_render = report.render_report
    monkeypatch.setattr(report, "render_report",
                        lambda summary, *a, **k: rendered.append(summary) or real_render(summary, *a, **k))
    monkeypatch.setattr(report, "summarize", counting)
    monkeypatch.setattr(cross, "summarize", counting)

    one = make_study(tmp_path / "one", {"mamba": 2.0, "hybrid": 1.0}, seeds=(0, 1))
    report.build_report(one)
    assert calls == [4]
    assert len(seen) == 5 and len(rendered) == 1 and isinstance(rendered[0], StudySummary)
    two = make_study(tmp_path / "two", {"mamba": 2.0, "gru": 1.0}, seeds=(0,))
    calls.clear()
    cross.build_cross_report(tmp_path, [one, two])
    assert calls == [4, 2]                 # once per source, nothing recomputed while rendering
