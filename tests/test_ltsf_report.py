"""The long-horizon benchmark report: published figures as data, the summary, the renderers.

A synthetic study folder is written with values the tests control (no training), in the
layout of the study runner: ``runs/<slug>/h<H>/seq<L>/<model>/seed<k>/``.
"""
from __future__ import annotations

import json
import math
import zlib

import numpy as np
import pandas as pd
import pytest

from forecast.errors import UserInputError
from forecast.ltsf.published import HORIZONS, PUBLISHED_DATASETS, REPEAT, load_published, published_name
from forecast.ltsf.labels import row_label
from forecast.ltsf.markdown import render_markdown
from forecast.ltsf.report import build_benchmark_report
from forecast.ltsf.runs import load_runs
from forecast.ltsf.summary import (BASELINE, LINEAR_OURS, MODEL, PUBLISHED, REPEAT_OURS, VS_BRANCH, VS_LINEAR,
                                   summarize_benchmark)
from forecast.stats import holm_adjust

DATASETS = {"ett:ETTh1": "ett-ETTh1", "ltsf:exchange": "ltsf-exchange"}
MODELS = ("mamba", "mingru", "hybrid")
SEEDS = (0, 1)
#: Enough windows for Diebold-Mariano with lags up to H - 1 at every horizon (3 H).
N_WINDOWS = 2200
#: Per-window loss level of each model: the hybrid clearly lowest, the branches close.
BASE = {"hybrid": 0.05, "mamba": 0.20, "mingru": 0.21}
#: ETTh1 at H = 192 is made hard for all of ours, so a published row is best there.
HARD = ("ett:ETTh1", 192)


def _noise(rng, scale: float, width: int = 24) -> np.ndarray:
    """Per-window noise correlated over ``width`` neighbours, as overlapping windows' losses are
    (white noise would give the lag-(H-1) variance estimate no positive long-run part)."""
    raw = rng.normal(0, scale, N_WINDOWS + width - 1)
    return np.convolve(raw, np.ones(width) / np.sqrt(width), mode="valid")


def _window_losses(dataset, horizon, lookback, model, seed) -> pd.DataFrame:
    """Deterministic per-window losses: model level + seed offset + noise; baselines shared
    by every run of one dataset/horizon/lookback (as the protocol makes them)."""
    key = zlib.crc32(f"{dataset}/{horizon}/{lookback}".encode())   # stable across processes
    shared = np.random.default_rng(key)
    own = np.random.default_rng([key, MODELS.index(model), seed])
    shift = 5.0 if (dataset, horizon) == HARD else 0.0
    frame = pd.DataFrame({"window": np.arange(N_WINDOWS)})
    frame["model_mse"] = BASE[model] + shift + 0.004 * seed + _noise(own, 0.01)
    frame["model_mae"] = 0.9 * frame["model_mse"]
    frame["repeat_mse"] = 1.0 + shift + _noise(shared, 0.01)
    frame["repeat_mae"] = 0.9 * frame["repeat_mse"]
    frame["linear_mse"] = 0.5 + shift + _noise(shared, 0.01)
    frame["linear_mae"] = 0.9 * frame["linear_mse"]
    return frame


def _write_run(root, dataset, horizon, lookback, model, seed, complete=True, alpha=None):
    path = root / "runs" / DATASETS[dataset] / f"h{horizon}" / f"seq{lookback}" / model / f"seed{seed}"
    path.mkdir(parents=True)
    losses = _window_losses(dataset, horizon, lookback, model, seed)
    losses.to_csv(path / "window_losses.csv", index=False)
    config = {"data": dataset, "protocol": "ltsf", "model": model, "seed": seed, "seq_len": lookback,
              "horizon": horizon, "epochs": 3}
    metrics = {"protocol": "ltsf", "test_windows": N_WINDOWS,
               "test": {"mse": losses["model_mse"].mean(), "mae": losses["model_mae"].mean()},
               "repeat": {"mse": losses["repeat_mse"].mean(), "mae": losses["repeat_mae"].mean()},
               "linear": {"mse": losses["linear_mse"].mean(), "mae": losses["linear_mae"].mean()},
               "val": {"mse": 0.1 * (seed + 1), "mae": 0.2}}
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0 / e} for e in (1, 2, 3)]
    if model == "hybrid":
        for e, record in enumerate(history):
            record["alpha"] = 0.5 + 0.01 * e + (alpha if alpha is not None else 0.0) * (e == 2)
    (path / "config.json").write_text(json.dumps(config))
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "history.json").write_text(json.dumps(history))
    if complete:
        (path / "summary.json").write_text(json.dumps({"training": {"best_epoch": 2 + seed},
                                                       "seconds": 10.0 + seed}))
    return path


def _make_study(root, datasets=tuple(DATASETS), horizons=(96, 192), lookbacks=(96, 336), models=MODELS):
    for dataset in datasets:
        for h in horizons:
            for L in lookbacks:
                for model in models:
                    for seed in SEEDS:
                        _write_run(root, dataset, h, L, model, seed, alpha=0.1 * seed)
    (root / "study.json").write_text(json.dumps({
        "command": "mamba-gru compare --protocol ltsf --data ett:ETTh1,ltsf:exchange",
        "wall_seconds": 3725.0, "environment": {"python": "3.11"}, "study": {"seeds": 2}}))
    return root


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = _make_study(tmp_path_factory.mktemp("ltsf_study"))
    # An unfinished run (no summary.json) and a folder being assembled must be ignored.
    _write_run(root, "ett:ETTh1", 96, 96, "mamba", 7, complete=False)
    (root / "runs" / "ett-ETTh1" / "h96" / "seq96" / "mamba" / ".seed8.x.partial").mkdir()
    path = build_benchmark_report(root)
    runs, skipped = load_runs(root / "runs")
    summary = summarize_benchmark(runs, skipped, json.loads((root / "study.json").read_text()))
    return root, path, summary


def _file_metric(root, dataset, h, L, model, key):
    return [json.loads((root / "runs" / DATASETS[dataset] / f"h{h}" / f"seq{L}" / model / f"seed{s}" /
                        "metrics.json").read_text())["test"][key] for s in SEEDS]


# -- published.csv -----------------------------------------------------------------------

def test_published_table_is_complete_and_consistent():
    pub = load_published()
    assert list(pub.columns) == ["dataset", "model", "lookback", "horizon", "mse", "mae", "source"]
    assert set(pub["dataset"]) == set(PUBLISHED_DATASETS.values())
    assert not pub.duplicated(["dataset", "model", "lookback", "horizon"]).any()
    for _, group in pub.groupby(["dataset", "model", pub["lookback"].fillna(-1)]):
        assert sorted(group["horizon"]) == list(HORIZONS)
        assert group["source"].nunique() == 1 and group["source"].iloc[0].strip()
    repeat = pub[pub["model"] == REPEAT]
    assert set(repeat["dataset"]) == set(PUBLISHED_DATASETS.values())
    assert repeat["lookback"].isna().all()
    assert set(pub["lookback"].dropna()) == {96, 336}
    assert ((pub["mse"] > 0) & (pub["mae"] > 0)).all()
    # the papers' own average column is not stored: horizons only
    assert set(pub["horizon"]) == set(HORIZONS)


def test_published_name_maps_our_specs():
    assert published_name("ett:ETTh2") == "ETTh2"
    assert published_name("LTSF:Exchange") == "Exchange"
    assert published_name("sample:AAPL") is None


# -- the summary -------------------------------------------------------------------------

def test_means_and_stds_over_seeds(study):
    root, _, summary = study
    for dataset in DATASETS:
        for model in MODELS:
            e = summary.entry(dataset, 336, 192, MODEL, model)
            mse, mae = _file_metric(root, dataset, 192, 336, model, "mse"), _file_metric(root, dataset, 192, 336,
                                                                                         model, "mae")
            assert e.n_seeds == 2
            assert e.mse == pytest.approx(np.mean(mse)) and e.mse_std == pytest.approx(np.std(mse, ddof=1))
            assert e.mae == pytest.approx(np.mean(mae)) and e.mae_std == pytest.approx(np.std(mae, ddof=1))
            assert e.val_mse == pytest.approx(0.15)
            assert e.best_epoch == pytest.approx(2.5) and e.seconds == pytest.approx(10.5)


def test_baselines_and_fusion_weight(study):
    _, _, summary = study
    losses = _window_losses("ltsf:exchange", 96, 96, "mamba", 0)
    rep = summary.entry("ltsf:exchange", 96, 96, BASELINE, REPEAT_OURS)
    lin = summary.entry("ltsf:exchange", 96, 96, BASELINE, LINEAR_OURS)
    assert rep.mse == pytest.approx(losses["repeat_mse"].mean()) and rep.test_windows == N_WINDOWS
    assert lin.mae == pytest.approx(losses["linear_mae"].mean())
    hybrid = summary.entry("ltsf:exchange", 96, 96, MODEL, "hybrid")
    # last alpha per seed: 0.52 + 0.1 * seed -> mean 0.57; other models have none
    assert hybrid.fusion_weight == pytest.approx(0.57)
    assert math.isnan(summary.entry("ltsf:exchange", 96, 96, MODEL, "mamba").fusion_weight)


def test_one_seed_has_nan_std(tmp_path):
    _write_run(tmp_path, "ett:ETTh1", 96, 96, "mamba", 0)
    runs, _ = load_runs(tmp_path / "runs")
    e = summarize_benchmark(runs).entry("ett:ETTh1", 96, 96, MODEL, "mamba")
    assert e.n_seeds == 1 and math.isnan(e.mse_std)


def test_averages_only_when_all_four_horizons_present(study, tmp_path):
    _, _, summary = study
    # the study has horizons 96 and 192 only: no average of ours, but the published ones
    assert not [e for e in summary.entries if e.horizon is None and e.group in (MODEL, BASELINE)]
    assert summary.entry("ett:ETTh1", 96, None, PUBLISHED, "S-Mamba") is not None

    root = _make_study(tmp_path, datasets=("ett:ETTh1",), horizons=HORIZONS, lookbacks=(96,),
                       models=("mamba",))
    _write_run(root, "ett:ETTh1", 96, 96, "hybrid", 0)    # hybrid at one horizon only
    runs, _ = load_runs(root / "runs")
    full = summarize_benchmark(runs)
    avg = full.entry("ett:ETTh1", 96, None, MODEL, "mamba")
    per_h = [full.entry("ett:ETTh1", 96, h, MODEL, "mamba") for h in HORIZONS]
    assert avg.mse == pytest.approx(np.mean([e.mse for e in per_h]))
    per_seed = [np.mean([_file_metric(root, "ett:ETTh1", h, 96, "mamba", "mse")[s] for h in HORIZONS])
                for s in range(len(SEEDS))]
    assert avg.mse_std == pytest.approx(np.std(per_seed, ddof=1))
    assert full.entry("ett:ETTh1", 96, None, MODEL, "hybrid") is None
    assert full.entry("ett:ETTh1", 96, None, BASELINE, LINEAR_OURS) is not None
    # with four horizons at lookback 96 the standing against the published table exists
    standing = {s.horizon: s for s in full.standings}
    pub = load_published()
    lb96 = pub[(pub["dataset"] == "ETTh1") & (pub["lookback"] == 96)]
    best_avg = lb96.groupby("model")["mse"].mean().min()
    assert standing[None].published_mse == pytest.approx(best_avg)
    assert standing[96].published_mse == pytest.approx(lb96[lb96["horizon"] == 96]["mse"].min())
    assert standing[None].of == lb96["model"].nunique() + 1


def test_published_rows_carry_the_csv_values(study):
    root, path, summary = study
    pub = load_published()
    text = path.read_text()
    for dataset, name in (("ett:ETTh1", "ETTh1"), ("ltsf:exchange", "Exchange")):
        mine = pub[pub["dataset"] == name]
        for row in mine.itertuples():
            lb = None if pd.isna(row.lookback) else int(row.lookback)
            e = summary.entry(dataset, lb, int(row.horizon), PUBLISHED, row.model)
            assert (e.mse, e.mae, e.source) == (row.mse, row.mae, row.source)
        smamba = mine[(mine["model"] == "S-Mamba") & (mine["horizon"] == 96)].iloc[0]
        line = next(ln for ln in _table(text, name, 96) if ln.startswith("| S-Mamba ["))
        assert f"{smamba.mse:.3f}" in line and f"{smamba.mae:.3f}" in line
        assert smamba.source in text          # the Sources list
    # lookback-336 table: DLinear of the lookback-336 paper, not the lookback-96 one
    d336 = pub[(pub["dataset"] == "ETTh1") & (pub["model"] == "DLinear") & (pub["lookback"] == 336)]
    line = next(ln for ln in _table(text, "ETTh1", 336) if ln.startswith("| DLinear ["))
    assert f"{d336[d336['horizon'] == 96].iloc[0].mse:.3f}" in line
    assert not any(ln.startswith("| S-Mamba [") for ln in _table(text, "ETTh1", 336))
    assert any(ln.startswith(f"| {REPEAT} (published)") for ln in _table(text, "ETTh1", 336))


def _table(text, name, lookback) -> list[str]:
    """Lines of one results table of the Markdown report."""
    start = text.index(f"### {name}, lookback {lookback}\n")
    block = text[start:].split("\n\n")[1]
    return block.splitlines()


def _columns(line) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_best_of_each_column_is_bold(study):
    _, path, _ = study
    text = path.read_text()
    pub = load_published()
    # Exchange: the hybrid is lowest at both horizons, in MSE and MAE
    rows = _table(text, "Exchange", 96)
    head = _columns(rows[0])
    col = head.index("H = 96")
    for line in rows[2:]:
        cell = _columns(line)[col]
        if line.startswith(f"| {row_label(MODEL, 'hybrid')} "):
            assert cell.count("**") == 4
        else:
            assert "**" not in cell
    # ETTh1 at H = 192 ours are made poor: the lowest published MSE is bold, wherever it is
    rows = _table(text, "ETTh1", 96)
    col = _columns(rows[0]).index("H = 192")
    cand = pub[(pub["dataset"] == "ETTh1") & (pub["horizon"] == 192) & (pub["lookback"].isna() | (pub["lookback"] == 96))]
    best = f"**{cand['mse'].min():.3f}**"
    bold_rows = [ln for ln in rows[2:] if _columns(ln)[col].startswith(best)]
    expected = cand[cand["mse"] == cand["mse"].min()]["model"].tolist()
    assert len(bold_rows) == len(expected)
    assert all(any(ln.startswith(f"| {m} [") for m in expected) for ln in bold_rows)


def test_dm_direction_and_holm(study):
    _, _, summary = study
    tests = [t for t in summary.tests if t.kind == VS_BRANCH and t.against == "mamba"]
    assert len(tests) == len(DATASETS) * 2 * 2
    for t in tests:
        assert t.model == "hybrid" and t.n_windows == N_WINDOWS
        assert t.statistic < 0 and t.mean_difference < 0 and t.p_holm < 1e-6
    # every model's losses (~0.2) are below the linear map's (~0.5)
    lin = [t for t in summary.tests if t.kind == VS_LINEAR and t.model == "mamba"]
    assert all(t.statistic < 0 for t in lin)
    # Holm within each (dataset, lookback, kind)
    families = {}
    for t in summary.tests:
        families.setdefault((t.dataset, t.lookback, t.kind), []).append(t)
    assert {len(f) for k, f in families.items() if k[2] == VS_BRANCH} == {4}        # 2 branches x 2 horizons
    assert {len(f) for k, f in families.items() if k[2] == VS_LINEAR} == {6}        # 3 models x 2 horizons
    for family in families.values():
        expected = holm_adjust([t.p_value for t in family])
        assert [t.p_holm for t in family] == pytest.approx(list(expected), nan_ok=True)
        assert all(t.p_holm >= t.p_value for t in family)


def test_holm_changes_borderline_p_values(tmp_path):
    # Models only slightly better than the linear map, relative to the noise: moderate
    # p-values that Holm visibly raises (with p ~ 0 the check would be empty).
    root = _make_study(tmp_path, datasets=("ett:ETTh1",), horizons=(96,), lookbacks=(96,))
    rng = np.random.default_rng(3)
    for k, model in enumerate(MODELS):
        for seed in SEEDS:
            f = root / "runs" / "ett-ETTh1" / "h96" / "seq96" / model / f"seed{seed}" / "window_losses.csv"
            frame = pd.read_csv(f)
            frame["model_mse"] = frame["linear_mse"] - 0.002 * (k + 1) + _noise(rng, 0.02, width=96)
            frame.to_csv(f, index=False)
    runs, _ = load_runs(root / "runs")
    tests = [t for t in summarize_benchmark(runs).tests if t.kind == VS_LINEAR]
    assert len(tests) == 3
    p = np.array([t.p_value for t in tests])
    assert 1e-4 < p.min() and p.max() < 1      # borderline, not degenerate
    order = np.argsort(p)
    expected = np.maximum.accumulate(np.minimum(1, (3 - np.arange(3)) * p[order]))
    assert [tests[i].p_holm for i in order] == pytest.approx(list(expected))
    assert any(t.p_holm > t.p_value for t in tests)


def test_verdicts_and_answer(study):
    _, path, summary = study
    v = next(v for v in summary.verdicts if (v.dataset, v.lookback, v.model, v.against)
             == ("ltsf:exchange", 96, "hybrid", "mamba"))
    assert v.tested and v.lower == (96, 192) and v.significantly_lower == (96, 192)
    assert v.significantly_higher == ()
    rep = next(v for v in summary.verdicts if (v.dataset, v.lookback, v.model, v.against)
               == ("ett:ETTh1", 96, "mamba", REPEAT_OURS))
    assert not rep.tested and rep.lower == (96, 192)
    text = path.read_text()
    answer = text[text.index("## Answer"):text.index("## Results")]
    assert "Hybrid (Mamba+minGRU) against its branches: lower MSE than Mamba at 2 of 2 horizons, " \
           "significantly lower at all 2, significantly higher at none" in answer
    assert "autocovariances up to lag H - 1" in text
    # no lookback-96 run has all four horizons: the standing is stated only at H = 96
    assert all(s.horizon == 96 for s in summary.standings)
    assert "ETTh1, horizon 96: our best model is" in answer


def test_incomplete_runs_skipped(study):
    _, path, summary = study
    assert summary.n_runs == len(DATASETS) * 2 * 2 * len(MODELS) * len(SEEDS)
    assert len(summary.skipped) == 1 and "seed7" in summary.skipped[0]
    assert summary.entry("ett:ETTh1", 96, 96, MODEL, "mamba").n_seeds == 2
    assert "seed7" in path.read_text()


def test_files_and_figures_written(study, tmp_path):
    root, path, _ = study
    assert path == root / "benchmark.md"
    for name in ("mse_vs_horizon.png", "mse_vs_lookback.png"):
        png = root / "figures" / name
        assert png.stat().st_size > 10_000
        assert f"figures/{name}" in path.read_text()
    frame = pd.read_csv(root / "benchmark.csv")
    assert len(frame) == len(DATASETS) * 2 * 2 * (len(MODELS) + 2)
    assert set(frame["model"]) == set(MODELS) | {REPEAT_OURS, LINEAR_OURS}
    data = json.loads((root / "benchmark.json").read_text(),
                      parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert data["n_runs"] == len(DATASETS) * 2 * 2 * len(MODELS) * len(SEEDS)
    assert "wall_seconds" in data["context"] and "3725 s" in path.read_text()
    assert "mamba-gru compare --protocol ltsf" in path.read_text()
    # one lookback: no lookback figure or section; draw=False: no figures at all
    one = _make_study(tmp_path, datasets=("ltsf:exchange",), horizons=(96,), lookbacks=(96,))
    text = build_benchmark_report(one).read_text()
    assert (one / "figures" / "mse_vs_horizon.png").exists()
    assert not (one / "figures" / "mse_vs_lookback.png").exists()
    assert "## Test MSE against lookback" not in text
    build_benchmark_report(one, draw=False)
    assert not (one / "figures" / "mse_vs_horizon.png").exists()


def test_render_is_a_function_of_the_summary(study):
    _, path, summary = study
    assert render_markdown(summary, {"Test MSE against horizon": "figures/mse_vs_horizon.png",
                                     "Test MSE against lookback": "figures/mse_vs_lookback.png"}) \
        == path.read_text()


def test_no_runs_is_a_user_error(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(UserInputError):
        build_benchmark_report(tmp_path)


def test_dm_is_not_made_with_too_few_windows_for_the_overlap(tmp_path):
    # 96-step windows need 3 x 96 windows for lags up to 95; with fewer the row says why
    # instead of falling back to a lag-0 variance that would ignore the overlap.
    root = _make_study(tmp_path, datasets=("ltsf:exchange",), horizons=(96,), lookbacks=(96,))
    for f in root.rglob("window_losses.csv"):
        pd.read_csv(f).iloc[:200].to_csv(f, index=False)
    runs, _ = load_runs(root / "runs")
    tests = summarize_benchmark(runs).tests
    assert tests and all(np.isnan(t.p_value) and "too few" in t.note for t in tests)
    assert all(np.isnan(t.p_holm) for t in tests)
