"""The report of a long-horizon benchmark study (``compare --protocol ltsf``).

Data flows one way::

    run folders --load_runs--> RunResult list --summarize_benchmark--> BenchmarkSummary
        --> render_markdown (benchmark.md), write_benchmark_csv, write_benchmark_json,
            plot_mse_vs_horizon, plot_mse_vs_lookback (figures/*.png)

The summary is computed once and frozen; the renderers read nothing else, so every
number and every sentence of the report comes from the run files through it. Nothing is
concluded in advance: the answer paragraph is assembled from the summary's verdicts.

The study folder (written by the study runner)::

    OUT/study.json                       command, environment, wall_seconds, study
    OUT/runs/<slug>/h<H>/seq<L>/<model>/seed<k>/
        config.json  metrics.json  window_losses.csv  history.json  summary.json  checkpoint.npz

A run folder counts once its ``summary.json`` exists (it is written last); others are
listed as skipped. All figures are on the standardised scale of the protocol.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.errors import UserInputError
from forecast.fileio import atomic_write_json, atomic_write_text, to_jsonable
from forecast.ltsf.protocol import LTSF
from forecast.ltsf.published import (HORIZONS, MAIN_LOOKBACK, PUBLISHED_DATASETS, REPEAT, load_published,
                                     published_name)
from forecast.stats import SIGNIFICANCE_LEVEL, diebold_mariano, holm_adjust
from models.names import BRANCHES, HYBRID, STUDY_ORDER

__all__ = ["MODEL", "BASELINE", "PUBLISHED", "REPEAT_OURS", "LINEAR_OURS", "VS_BRANCH", "VS_LINEAR",
           "DM_NOTE", "RunResult", "Entry", "DMTest", "Verdict", "Standing", "BenchmarkSummary",
           "load_runs", "summarize_benchmark", "render_markdown", "write_benchmark_csv",
           "write_benchmark_json", "plot_mse_vs_horizon", "plot_mse_vs_lookback",
           "build_benchmark_report", "dataset_label", "row_label"]

NAN = float("nan")
#: ``Entry.group``: one of our trained models, one of our deterministic baselines, a published row.
MODEL, BASELINE, PUBLISHED = "model", "baseline", "published"
#: Names of our two deterministic baselines (``metrics.json`` keys ``repeat`` and ``linear``).
REPEAT_OURS, LINEAR_OURS = "repeat", "linear"
#: The two families of Diebold-Mariano tests; Holm adjusts within one family at one
#: dataset and lookback.
VS_BRANCH, VS_LINEAR = "hybrid vs branch", "model vs linear map"
#: How the tests are done, for the report and the JSON.
DM_NOTE = ("Diebold-Mariano (Harvey-Leybourne-Newbold corrected, two-sided, Student's t with n - 1 "
           "degrees of freedom) on the per-window loss differential: each test window's MSE (over its "
           "steps and channels), averaged over seeds, minus the other forecast's, in time order. Test "
           "windows start one row apart and share H - 1 of their H target rows, so neighbouring "
           "differentials are correlated: the variance of their mean takes the autocovariances up to "
           "lag H - 1, as for H-step forecasts (where that estimate is not positive the test falls back "
           "to the lag-0 variance and says so in its note). Correlation beyond lag H - 1 (the series' "
           "own persistence) is not counted, so p-values may still be somewhat optimistic. Holm "
           "adjustment within the tests of one kind at one dataset and lookback (over horizons and "
           "models). Statistic of model minus the other: negative means the model's loss is smaller.")
#: Figure file names (under ``figures/``).
FIG_HORIZON, FIG_LOOKBACK = "mse_vs_horizon.png", "mse_vs_lookback.png"
_BASELINE_LABELS = {REPEAT_OURS: "Repeat (ours)", LINEAR_OURS: "Linear map (ours)"}
_AVERAGE = "average"


# -- loading ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RunResult:
    """One finished run as read back from its folder (standardised scale).

    ``repeat`` and ``linear`` are the deterministic baselines on the same test windows;
    ``window_losses`` has one row per test window in time order.
    """

    dataset: str
    horizon: int
    lookback: int
    model: str
    seed: int
    path: Path
    test_mse: float
    test_mae: float
    val_mse: float
    repeat_mse: float
    repeat_mae: float
    linear_mse: float
    linear_mae: float
    test_windows: int
    seconds: float
    best_epoch: float
    fusion_weight: float
    window_losses: pd.DataFrame = field(repr=False, compare=False)


def _read_json(path: Path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _float(value) -> float:
    """A JSON number as float; None (NaN written by :func:`to_jsonable`) and lists
    (per-channel values: their mean) handled."""
    if value is None:
        return NAN
    if isinstance(value, (list, tuple)):
        arr = np.asarray(value, dtype=float)
        return float(arr.mean()) if arr.size else NAN
    return float(value)


def _pair(metrics: dict, key: str) -> tuple[float, float]:
    part = metrics.get(key) or {}
    return _float(part.get("mse")), _float(part.get("mae"))


def _last_fusion_weight(history) -> float:
    """The hybrid's last logged Mamba weight; ``forecast.train`` logs ``sigmoid(alpha)``
    under ``alpha`` (``fusion_weight`` accepted too). NaN when never logged."""
    for record in reversed(list(history or [])):
        for key in ("fusion_weight", "alpha"):
            if isinstance(record, dict) and record.get(key) is not None:
                return _float(record[key])
    return NAN


def _load_run(path: Path) -> RunResult:
    config = _read_json(path / "config.json")
    metrics = _read_json(path / "metrics.json")
    info = _read_json(path / "summary.json")
    history = _read_json(path / "history.json") if (path / "history.json").exists() else []
    if isinstance(history, dict):
        history = history.get("history", [])
    losses = pd.read_csv(path / "window_losses.csv").sort_values("window").set_index("window")
    test_mse, test_mae = _pair(metrics, "test")
    repeat = _pair(metrics, "repeat")
    linear = _pair(metrics, "linear")
    training = info.get("training") or {}
    return RunResult(
        dataset=str(config["data"]), horizon=int(config["horizon"]), lookback=int(config["seq_len"]),
        model=str(config["model"]), seed=int(config["seed"]), path=path,
        test_mse=test_mse, test_mae=test_mae, val_mse=_pair(metrics, "val")[0],
        repeat_mse=repeat[0], repeat_mae=repeat[1], linear_mse=linear[0], linear_mae=linear[1],
        test_windows=int(metrics.get("test_windows") or len(losses)),
        seconds=_float(info.get("seconds")), best_epoch=_float(training.get("best_epoch")),
        fusion_weight=_last_fusion_weight(history) if config["model"] == HYBRID else NAN,
        window_losses=losses)


def _skip_reason(path: Path) -> str | None:
    """Why a run folder cannot be used, or None."""
    if not (path / "summary.json").exists():
        return "unfinished (no summary.json)"
    missing = [n for n in ("config.json", "metrics.json", "window_losses.csv") if not (path / n).exists()]
    if missing:
        return "missing " + ", ".join(missing)
    protocol = _read_json(path / "config.json").get("protocol")
    if protocol not in (None, LTSF):
        return f"protocol {protocol!r}, not {LTSF}"
    return None


def load_runs(runs_dir) -> tuple[list[RunResult], list[str]]:
    """Load every complete run below ``runs_dir``.

    Returns
    -------
    (runs, skipped) : tuple
        The runs, and one ``"<folder relative to runs_dir>: <reason>"`` per folder left out.
    """
    runs_dir = Path(runs_dir)
    runs, skipped = [], []
    # The layout is fixed; a hidden ".seed0.*.partial" folder being assembled does not match.
    for path in sorted(p for p in runs_dir.glob("*/h*/seq*/*/seed*") if p.is_dir()):
        reason = _skip_reason(path)
        if reason is None:
            runs.append(_load_run(path))
        else:
            skipped.append(f"{path.relative_to(runs_dir).as_posix()}: {reason}")
    return runs, skipped


# -- the summary -----------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One cell row of the benchmark: a forecast at one dataset, lookback and horizon.

    Attributes
    ----------
    dataset : str
        Our source spec (``ett:ETTh1``), also for published rows.
    lookback : int or None
        None for the published Repeat (its forecast does not depend on the lookback).
    horizon : int or None
        None for the average over :data:`HORIZONS` (only when all four are present).
    group, name : str
        ``MODEL`` (``mamba``...), ``BASELINE`` (``repeat``, ``linear``) or ``PUBLISHED``
        (the paper's model name).
    mse, mae : float
        Mean over seeds for our models; the value itself otherwise.
    mse_std, mae_std : float
        Sample std over seeds (ddof=1); NaN for one seed and for non-models.
    n_seeds : int
        Seeds averaged (our models), 0 otherwise.
    val_mse, seconds, best_epoch, fusion_weight : float
        Means over seeds (our models; fusion weight only for the hybrid); NaN otherwise.
    test_windows : int
        Test windows (our rows at one horizon), 0 otherwise.
    source : str
        Citation of a published row.
    """

    dataset: str
    lookback: int | None
    horizon: int | None
    group: str
    name: str
    mse: float
    mae: float
    mse_std: float = NAN
    mae_std: float = NAN
    n_seeds: int = 0
    val_mse: float = NAN
    seconds: float = NAN
    best_epoch: float = NAN
    fusion_weight: float = NAN
    test_windows: int = 0
    source: str = ""


@dataclass(frozen=True)
class DMTest:
    """One Diebold-Mariano test of ``model`` against ``against`` (see :data:`DM_NOTE`)."""

    dataset: str
    lookback: int
    horizon: int
    kind: str
    model: str
    against: str
    n_windows: int
    mean_difference: float
    statistic: float
    p_value: float
    p_holm: float
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    """How ``model`` fares against ``against`` over the horizons of one dataset and lookback.

    ``lower``: horizons where the model's mean test MSE is lower. ``significantly_lower``
    / ``significantly_higher``: horizons where the Holm-adjusted DM p-value is below the
    level, by the sign of the statistic (empty when ``tested`` is False).
    """

    dataset: str
    lookback: int
    model: str
    against: str
    tested: bool
    horizons: tuple[int, ...]
    lower: tuple[int, ...]
    significantly_lower: tuple[int, ...] = ()
    significantly_higher: tuple[int, ...] = ()


@dataclass(frozen=True)
class Standing:
    """Our best model against the best published lookback-96 entry at one scope.

    ``horizon`` None is the four-horizon average. ``rank`` is our best model's place
    (1 = lowest MSE) among the ``of`` forecasts: every published lookback-96 model plus ours.
    """

    dataset: str
    horizon: int | None
    model: str
    mse: float
    published_model: str
    published_mse: float
    rank: int
    of: int


@dataclass(frozen=True)
class BenchmarkSummary:
    """Everything the report shows, computed once from the runs."""

    datasets: tuple[str, ...]
    lookbacks: tuple[int, ...]
    horizons: tuple[int, ...]
    models: tuple[str, ...]
    entries: tuple[Entry, ...]
    tests: tuple[DMTest, ...]
    verdicts: tuple[Verdict, ...]
    standings: tuple[Standing, ...]
    n_runs: int
    skipped: tuple[str, ...] = ()
    context: dict = field(default_factory=dict)
    level: float = SIGNIFICANCE_LEVEL

    def entry(self, dataset, lookback, horizon, group, name) -> Entry | None:
        """The entry with exactly these keys, or None."""
        for e in self.entries:
            if (e.dataset, e.lookback, e.horizon, e.group, e.name) == (dataset, lookback, horizon, group, name):
                return e
        return None

    def published(self, dataset, lookback) -> list[Entry]:
        """Published entries that belong in the table of ``lookback``: those run at that
        lookback, and Repeat (lookback-free)."""
        return [e for e in self.entries if e.group == PUBLISHED and e.dataset == dataset
                and e.lookback in (lookback, None)]

    @property
    def main_lookback(self) -> int:
        """The lookback of the headline figure: the published tables' if the study has it."""
        return MAIN_LOOKBACK if MAIN_LOOKBACK in self.lookbacks else self.lookbacks[0]


def _mean(values) -> float:
    """Mean of the finite values (NaN if none): a metric a run could not compute is left out."""
    arr = np.asarray([v for v in values], dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else NAN


def _std(values) -> float:
    """Sample std (ddof=1) of the finite values; NaN for fewer than two: one seed says
    nothing of spread."""
    arr = np.asarray(list(values), dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.std(ddof=1)) if arr.size > 1 else NAN


def _model_order(names) -> tuple[str, ...]:
    names = set(names)
    return tuple([m for m in STUDY_ORDER if m in names] + sorted(names - set(STUDY_ORDER)))


def _dataset_order(names) -> tuple[str, ...]:
    names = set(names)
    known = [d for d in PUBLISHED_DATASETS if d in names]
    return tuple(known + sorted(names - set(known)))


def _group(runs, *keys) -> dict:
    out: dict = {}
    for run in runs:
        out.setdefault(tuple(getattr(run, k) for k in keys), []).append(run)
    return out


def _model_entry(runs: list[RunResult]) -> Entry:
    r0 = runs[0]
    return Entry(r0.dataset, r0.lookback, r0.horizon, MODEL, r0.model,
                 mse=_mean(r.test_mse for r in runs), mae=_mean(r.test_mae for r in runs),
                 mse_std=_std(r.test_mse for r in runs), mae_std=_std(r.test_mae for r in runs),
                 n_seeds=len(runs), val_mse=_mean(r.val_mse for r in runs),
                 seconds=_mean(r.seconds for r in runs), best_epoch=_mean(r.best_epoch for r in runs),
                 fusion_weight=_mean(r.fusion_weight for r in runs) if r0.model == HYBRID else NAN,
                 test_windows=r0.test_windows)


def _baseline_entries(runs: list[RunResult]) -> list[Entry]:
    # Deterministic, so every run of one dataset/horizon/lookback carries the same value;
    # the mean only guards against a stray rounding difference.
    r0 = runs[0]
    return [Entry(r0.dataset, r0.lookback, r0.horizon, BASELINE, REPEAT_OURS,
                  _mean(r.repeat_mse for r in runs), _mean(r.repeat_mae for r in runs),
                  test_windows=r0.test_windows),
            Entry(r0.dataset, r0.lookback, r0.horizon, BASELINE, LINEAR_OURS,
                  _mean(r.linear_mse for r in runs), _mean(r.linear_mae for r in runs),
                  test_windows=r0.test_windows)]


def _model_average(runs: list[RunResult]) -> Entry | None:
    """Average over :data:`HORIZONS` of one model at one dataset and lookback.

    The mean is the mean of the four per-horizon seed means; the spread is the std over
    seeds of each seed's own four-horizon average, for the seeds present at all four.
    """
    by_h = _group(runs, "horizon")
    if not all((h,) in by_h for h in HORIZONS):
        return None
    means = [_model_entry(by_h[(h,)]) for h in HORIZONS]
    common = set.intersection(*({r.seed for r in by_h[(h,)]} for h in HORIZONS))
    per_seed = {s: [next(r for r in by_h[(h,)] if r.seed == s) for h in HORIZONS] for s in sorted(common)}
    r0 = runs[0]
    return Entry(r0.dataset, r0.lookback, None, MODEL, r0.model,
                 mse=_mean(e.mse for e in means), mae=_mean(e.mae for e in means),
                 mse_std=_std(_mean(r.test_mse for r in rs) for rs in per_seed.values()),
                 mae_std=_std(_mean(r.test_mae for r in rs) for rs in per_seed.values()),
                 n_seeds=len(common), val_mse=_mean(e.val_mse for e in means),
                 seconds=_mean(e.seconds for e in means), best_epoch=_mean(e.best_epoch for e in means),
                 fusion_weight=_mean(e.fusion_weight for e in means) if r0.model == HYBRID else NAN)


def _plain_averages(entries: list[Entry]) -> list[Entry]:
    """Four-horizon averages of baseline and published entries (plain means)."""
    out = []
    groups: dict = {}
    for e in entries:
        groups.setdefault((e.dataset, e.lookback, e.group, e.name), {})[e.horizon] = e
    for (dataset, lookback, group, name), by_h in groups.items():
        if all(h in by_h for h in HORIZONS):
            cells = [by_h[h] for h in HORIZONS]
            out.append(Entry(dataset, lookback, None, group, name, _mean(c.mse for c in cells),
                             _mean(c.mae for c in cells), source=cells[0].source))
    return out


def _published_entries(datasets, published: pd.DataFrame) -> list[Entry]:
    out = []
    for spec in datasets:
        name = published_name(spec)
        if name is None:
            continue
        for row in published[published["dataset"] == name].itertuples(index=False):
            lookback = None if pd.isna(row.lookback) else int(row.lookback)
            out.append(Entry(spec, lookback, int(row.horizon), PUBLISHED, str(row.model), float(row.mse),
                             float(row.mae), source=str(row.source)))
    return out


def _seed_mean_losses(runs: list[RunResult]) -> pd.DataFrame:
    """Per-window MSE, one column per model (mean over its seeds) plus ``linear``.

    Only windows every run has are kept (they should all have the same ones).
    """
    columns = {}
    for (model,), group in _group(runs, "model").items():
        stacked = pd.concat([r.window_losses["model_mse"] for r in group], axis=1, join="inner")
        columns[model] = stacked.mean(axis=1)
    stacked = pd.concat([r.window_losses["linear_mse"] for r in runs], axis=1, join="inner")
    columns[LINEAR_OURS] = stacked.mean(axis=1)
    return pd.concat(columns, axis=1, join="inner").sort_index()


def _pairs(models) -> list[tuple[str, str, str]]:
    """``(kind, model, against)`` of the tests: the hybrid against each branch present,
    every model against the linear map."""
    pairs = [(VS_BRANCH, HYBRID, b) for b in BRANCHES if HYBRID in models and b in models]
    return pairs + [(VS_LINEAR, m, LINEAR_OURS) for m in models]


def _dm_tests(runs: list[RunResult]) -> list[DMTest]:
    """Raw (not yet Holm-adjusted) tests of one dataset, horizon and lookback."""
    losses = _seed_mean_losses(runs)
    r0 = runs[0]
    out = []
    for kind, model, against in _pairs(_model_order(losses.columns.drop(LINEAR_OURS))):
        diff = (losses[model] - losses[against]).to_numpy()
        # Windows share H - 1 targets with their neighbour: lags up to H - 1 (see DM_NOTE).
        res = diebold_mariano(diff, horizon=r0.horizon)
        out.append(DMTest(r0.dataset, r0.lookback, r0.horizon, kind, model, against, res.n,
                          _mean(diff), res.statistic, res.p_value, NAN, res.note))
    return out


def _holm(tests: list[DMTest]) -> list[DMTest]:
    """Holm-adjust within each (dataset, lookback, kind) family."""
    families: dict = {}
    for i, t in enumerate(tests):
        families.setdefault((t.dataset, t.lookback, t.kind), []).append(i)
    adjusted = list(tests)
    for idx in families.values():
        p_holm = holm_adjust([tests[i].p_value for i in idx])
        for i, p in zip(idx, p_holm):
            adjusted[i] = replace(tests[i], p_holm=float(p))
    return adjusted


def _verdicts(entries: list[Entry], tests: list[DMTest], level: float) -> list[Verdict]:
    """Hybrid vs each branch and every model vs the linear map (tested), and every model
    vs our Repeat (compared by mean test MSE only)."""
    ours = {(e.dataset, e.lookback, e.horizon, e.name): e for e in entries
            if e.group in (MODEL, BASELINE) and e.horizon is not None}
    by_test = {(t.dataset, t.lookback, t.model, t.against): [] for t in tests}
    for t in tests:
        by_test[(t.dataset, t.lookback, t.model, t.against)].append(t)
    out = []
    for (dataset, lookback, model, against), group in by_test.items():
        group = sorted(group, key=lambda t: t.horizon)
        lower = tuple(t.horizon for t in group if _lower(ours, dataset, lookback, t.horizon, model, against))
        sig = [t for t in group if math.isfinite(t.p_holm) and t.p_holm < level]
        out.append(Verdict(dataset, lookback, model, against, True, tuple(t.horizon for t in group), lower,
                           tuple(t.horizon for t in sig if t.statistic < 0),
                           tuple(t.horizon for t in sig if t.statistic > 0)))
    models = sorted({(e.dataset, e.lookback, e.name) for e in entries if e.group == MODEL and e.horizon is not None})
    for dataset, lookback, model in models:
        hs = tuple(sorted(e.horizon for e in entries if e.group == MODEL and e.horizon is not None
                          and (e.dataset, e.lookback, e.name) == (dataset, lookback, model)))
        lower = tuple(h for h in hs if _lower(ours, dataset, lookback, h, model, REPEAT_OURS))
        out.append(Verdict(dataset, lookback, model, REPEAT_OURS, False, hs, lower))
    return out


def _lower(ours, dataset, lookback, horizon, model, against) -> bool:
    a, b = ours.get((dataset, lookback, horizon, model)), ours.get((dataset, lookback, horizon, against))
    return a is not None and b is not None and a.mse < b.mse


def _standings(entries: list[Entry], datasets) -> list[Standing]:
    """Our best lookback-96 model against the published lookback-96 models, by the
    four-horizon average and at horizon 96."""
    out = []
    for dataset in datasets:
        for horizon in (None, HORIZONS[0]):
            ours = [e for e in entries if e.group == MODEL and e.dataset == dataset
                    and e.lookback == MAIN_LOOKBACK and e.horizon == horizon and math.isfinite(e.mse)]
            theirs = [e for e in entries if e.group == PUBLISHED and e.dataset == dataset
                      and e.lookback == MAIN_LOOKBACK and e.horizon == horizon]
            if not ours or not theirs:
                continue
            best = min(ours, key=lambda e: e.mse)
            top = min(theirs, key=lambda e: e.mse)
            rank = 1 + sum(e.mse < best.mse for e in theirs)
            out.append(Standing(dataset, horizon, best.name, best.mse, top.name, top.mse, rank, len(theirs) + 1))
    return out


def summarize_benchmark(runs: list[RunResult], skipped=(), context: dict | None = None,
                        published: pd.DataFrame | None = None,
                        level: float = SIGNIFICANCE_LEVEL) -> BenchmarkSummary:
    """Reduce the runs of a benchmark study to one :class:`BenchmarkSummary`.

    Parameters
    ----------
    runs : list of RunResult
        From :func:`load_runs`.
    skipped : sequence of str
        Folders left out, to be reported.
    context : dict, optional
        ``command``, ``environment``, ``wall_seconds``, ``study`` (from ``study.json``).
    published : pandas.DataFrame, optional
        The published figures; :func:`load_published` by default.
    level : float
        Significance level of the verdicts (applied to Holm-adjusted p-values).
    """
    if not runs:
        raise UserInputError("no finished long-horizon runs (summary.json) in this study")
    published = load_published() if published is None else published
    datasets = _dataset_order(r.dataset for r in runs)
    models = _model_order(r.model for r in runs)

    def in_order(groups: dict) -> list:
        # Tables and files list datasets and models in the study's order, not alphabetically.
        def key(item):
            run = item[1][0]
            return (datasets.index(run.dataset), run.lookback, run.horizon, models.index(run.model))
        return [g for _, g in sorted(groups.items(), key=key)]

    entries: list[Entry] = []
    tests: list[DMTest] = []
    for group in in_order(_group(runs, "dataset", "lookback", "horizon", "model")):
        entries.append(_model_entry(group))
    for group in in_order(_group(runs, "dataset", "lookback", "horizon")):
        entries += _baseline_entries(group)
        tests += _dm_tests(group)
    for group in in_order(_group(runs, "dataset", "lookback", "model")):
        average = _model_average(group)
        if average is not None:
            entries.append(average)
    pub = _published_entries(datasets, published)
    entries += _plain_averages([e for e in entries if e.group == BASELINE]) + pub + _plain_averages(pub)
    tests = _holm(tests)
    return BenchmarkSummary(
        datasets=datasets, lookbacks=tuple(sorted({r.lookback for r in runs})),
        horizons=tuple(sorted({r.horizon for r in runs})), models=models,
        entries=tuple(entries), tests=tuple(tests), verdicts=tuple(_verdicts(entries, tests, level)),
        standings=tuple(_standings(entries, datasets)), n_runs=len(runs), skipped=tuple(skipped),
        context=dict(context or {}), level=level)


# -- names and numbers -----------------------------------------------------------------

def dataset_label(spec: str) -> str:
    """The name a reader knows a dataset by (``ETTh1`` for ``ett:ETTh1``)."""
    return published_name(spec) or spec


def row_label(group: str, name: str) -> str:
    """The name of a forecast in tables and legends."""
    if group == MODEL:
        from forecast.study.figures import display_name   # matplotlib only when a name is needed
        return display_name(name)
    if group == BASELINE:
        return _BASELINE_LABELS.get(name, name)
    return name


def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if x is not None and math.isfinite(x) else "–"


def _p(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.2e}" if x < 1e-3 else f"{x:.3f}"


# -- Markdown --------------------------------------------------------------------------

def _source_numbers(summary: BenchmarkSummary) -> dict:
    """Citation number per source text, in order of first appearance."""
    numbers: dict = {}
    for e in summary.entries:
        if e.group == PUBLISHED and e.source not in numbers:
            numbers[e.source] = len(numbers) + 1
    return numbers


def _table_rows(summary: BenchmarkSummary, dataset: str, lookback: int, columns) -> list[tuple]:
    """``(label, n seeds text, {column: entry})`` for every row of one table."""
    numbers = _source_numbers(summary)
    rows = []

    def cells(group, name, lb):
        return {c: summary.entry(dataset, lb, None if c == _AVERAGE else c, group, name) for c in columns}

    for model in summary.models:
        found = cells(MODEL, model, lookback)
        if any(found.values()):
            n = sorted({e.n_seeds for c, e in found.items() if e is not None and c != _AVERAGE})
            rows.append((row_label(MODEL, model), "/".join(map(str, n)), found))
    for name in (REPEAT_OURS, LINEAR_OURS):
        rows.append((row_label(BASELINE, name), "–", cells(BASELINE, name, lookback)))
    seen = []
    for e in summary.published(dataset, lookback):
        if (e.name, e.lookback) not in seen:
            seen.append((e.name, e.lookback))
            label = f"{e.name} (published) [{numbers[e.source]}]" if e.name == REPEAT else \
                f"{e.name} [{numbers[e.source]}]"
            rows.append((label, "–", cells(PUBLISHED, e.name, e.lookback)))
    return rows


def _best(rows, column, metric) -> float:
    """Lowest value of a column, at the printed precision (published figures have three
    decimals, so a tie there is a tie)."""
    values = [round(getattr(r[2][column], metric), 3) for r in rows
              if r[2][column] is not None and math.isfinite(getattr(r[2][column], metric))]
    return min(values) if values else NAN


def _cell(entry: Entry | None, best: tuple[float, float]) -> str:
    if entry is None:
        return "–"
    parts = []
    for metric, low in zip(("mse", "mae"), best):
        value = getattr(entry, metric)
        text = _num(value)
        if math.isfinite(value) and round(value, 3) == low:
            text = f"**{text}**"
        spread = getattr(entry, metric + "_std")
        parts.append(f"{text} ± {_num(spread)}" if math.isfinite(spread) else text)
    return " / ".join(parts)


def _main_table(summary: BenchmarkSummary, dataset: str, lookback: int) -> list[str]:
    columns = sorted(set(HORIZONS) | set(summary.horizons)) + [_AVERAGE]
    rows = _table_rows(summary, dataset, lookback, columns)
    best = {c: (_best(rows, c, "mse"), _best(rows, c, "mae")) for c in columns}
    lines = [f"### {dataset_label(dataset)}, lookback {lookback}", "",
             "| forecast | seeds | " + " | ".join(f"H = {c}" if c != _AVERAGE else c for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for label, n, found in rows:
        lines.append(f"| {label} | {n} | " + " | ".join(_cell(found[c], best[c]) for c in columns) + " |")
    windows = {h: e.test_windows for h in summary.horizons
               if (e := summary.entry(dataset, lookback, h, BASELINE, REPEAT_OURS)) is not None}
    lines += ["", "Test windows (ours, every window): "
              + ", ".join(f"H = {h}: {n}" for h, n in windows.items()) + "."]
    return lines + [""]


def _at(hs, of) -> str:
    """Which horizons: "none", "all 4", or "H = 96, 336"."""
    if not hs:
        return "none"
    if len(of) > 1 and set(hs) == set(of):
        return f"all {len(of)}"
    return "H = " + ", ".join(str(h) for h in hs)


def _verdict_clause(v: Verdict, head: str) -> str:
    """``head`` ("Mamba lower", "lower than Mamba") at k of n horizons (which), and where
    the test says so."""
    k, n = len(v.lower), len(v.horizons)
    text = f"{head} at {k} of {n} horizon{'s' if n != 1 else ''}"
    if 0 < k < n:
        text += f" ({_at(v.lower, v.horizons)})"
    if v.tested:
        text += (f", significantly lower at {_at(v.significantly_lower, v.horizons)}, significantly higher at "
                 f"{_at(v.significantly_higher, v.horizons)}")
    return text


def _verdict_lines(summary: BenchmarkSummary, verdicts: list[Verdict]) -> list[str]:
    """Three bullets: the hybrid against its branches, every model against the linear
    map, every model against Repeat (compared by mean only: no test was asked for)."""
    def ordered(against):
        return sorted((v for v in verdicts if v.against in against), key=lambda v: (
            summary.models.index(v.model), against.index(v.against)))

    lines = []
    branch = ordered(BRANCHES)
    if branch:
        lines.append(f"- {row_label(MODEL, HYBRID)} against its branches: " + "; ".join(
            _verdict_clause(v, "lower MSE than " + row_label(MODEL, v.against)) for v in branch) + ".")
    for against, how in ((LINEAR_OURS, "our linear map"), (REPEAT_OURS, "our Repeat (mean test MSE, not tested)")):
        found = ordered((against,))
        if found:
            lines.append(f"- Against {how}: " + "; ".join(
                _verdict_clause(v, row_label(MODEL, v.model) + " lower") for v in found) + ".")
    return lines


def _standing_sentence(s: Standing) -> str:
    scope = "the four-horizon average" if s.horizon is None else f"horizon {s.horizon}"
    return (f"{dataset_label(s.dataset)}, {scope}: our best model is {row_label(MODEL, s.model)} "
            f"(MSE {_num(s.mse)}); the best published lookback-{MAIN_LOOKBACK} entry is "
            f"{s.published_model} ({_num(s.published_mse)}); ours ranks {s.rank} of {s.of} "
            f"(the published lookback-{MAIN_LOOKBACK} models and ours).")


def _answer(summary: BenchmarkSummary) -> list[str]:
    """The answer paragraph: facts from the verdicts and standings, nothing else."""
    level = f"{summary.level:g}"
    lines = ["## Answer", "",
             f"Generated from the runs. \"Significantly\" means a Holm-adjusted Diebold-Mariano p-value "
             f"below {level} (per-window losses; see the caveat under the tests).", ""]
    for dataset in summary.datasets:
        for lookback in summary.lookbacks:
            here = [v for v in summary.verdicts if v.dataset == dataset and v.lookback == lookback]
            if not here:
                continue
            lines += [f"**{dataset_label(dataset)}, lookback {lookback}.**"] + _verdict_lines(summary, here) + [""]
    lines.append(f"**Against the published table (lookback {MAIN_LOOKBACK}).**")
    for dataset in summary.datasets:
        found = [s for s in summary.standings if s.dataset == dataset]
        if found:
            lines += [f"- {_standing_sentence(s)}" for s in found]
        elif published_name(dataset) is None:
            lines.append(f"- {dataset_label(dataset)}: no published figures for this dataset.")
        else:
            lines.append(f"- {dataset_label(dataset)}: no like-for-like comparison; the study has no "
                         f"lookback-{MAIN_LOOKBACK} runs of this dataset.")
    return lines + [""]


def _tests_table(summary: BenchmarkSummary) -> list[str]:
    lines = ["## Diebold-Mariano tests", "", DM_NOTE, "",
             "| dataset | lookback | H | test | windows | mean MSE difference | DM statistic | p | p (Holm) | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for t in sorted(summary.tests, key=lambda t: (summary.datasets.index(t.dataset), t.lookback, t.kind != VS_BRANCH,
                                                  summary.models.index(t.model), t.against, t.horizon)):
        against = row_label(MODEL, t.against) if t.against in BRANCHES else row_label(BASELINE, t.against)
        if not math.isfinite(t.p_holm):
            verdict = "undefined" + (f" ({t.note})" if t.note else "")
        elif t.p_holm < summary.level:
            verdict = "model lower" if t.statistic < 0 else "model higher"
        else:
            verdict = "no significant difference"
        lines.append(f"| {dataset_label(t.dataset)} | {t.lookback} | {t.horizon} | {row_label(MODEL, t.model)} vs "
                     f"{against} | {t.n_windows} | {t.mean_difference:+.4f} | {_num(t.statistic, 2)} | "
                     f"{_p(t.p_value)} | {_p(t.p_holm)} | {verdict} |")
    return lines + [""]


def _lookback_section(summary: BenchmarkSummary) -> list[str]:
    if len(summary.lookbacks) < 2:
        return []
    lines = ["## Test MSE against lookback", "",
             "Mean ± std over seeds; the linear map is refitted at each lookback, Repeat does not depend on it.", "",
             "| dataset | H | forecast | " + " | ".join(f"L = {L}" for L in summary.lookbacks) + " |",
             "|---|---|---|" + "---|" * len(summary.lookbacks)]
    for dataset in summary.datasets:
        for horizon in summary.horizons:
            for group, name in [(MODEL, m) for m in summary.models] + [(BASELINE, LINEAR_OURS)]:
                found = [summary.entry(dataset, L, horizon, group, name) for L in summary.lookbacks]
                if not any(found):
                    continue
                cells = ["–" if e is None else (f"{_num(e.mse)} ± {_num(e.mse_std)}" if math.isfinite(e.mse_std)
                                                else _num(e.mse)) for e in found]
                lines.append(f"| {dataset_label(dataset)} | {horizon} | {row_label(group, name)} | "
                             + " | ".join(cells) + " |")
    return lines + [""]


def _training_table(summary: BenchmarkSummary) -> list[str]:
    lines = ["## Training", "",
             "Means over seeds. Fusion weight: the hybrid's last logged weight of the Mamba branch, "
             "sigmoid(alpha) (0.5 = equal weights, 1 = Mamba only).", "",
             "| dataset | lookback | H | model | seeds | validation MSE | best epoch | seconds per run | fusion weight |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in summary.entries:
        if e.group == MODEL and e.horizon is not None:
            lines.append(f"| {dataset_label(e.dataset)} | {e.lookback} | {e.horizon} | {row_label(MODEL, e.name)} | "
                         f"{e.n_seeds} | {_num(e.val_mse)} | {_num(e.best_epoch, 1)} | {_num(e.seconds, 1)} | "
                         f"{_num(e.fusion_weight)} |")
    return lines + [""]


def _wall(seconds) -> str:
    if seconds is None or not math.isfinite(float(seconds)):
        return "not recorded"
    s = float(seconds)
    return f"{s:.0f} s ({int(s // 3600)} h {int(s % 3600 // 60):02d} min)"


def _context_section(summary: BenchmarkSummary) -> list[str]:
    ctx = summary.context
    lines = ["## How this was run", "", f"- Wall time of the study: {_wall(ctx.get('wall_seconds'))}.",
             f"- Finished runs: {summary.n_runs}."]
    if ctx.get("command"):
        lines += ["", "```", str(ctx["command"]), "```"]
    for key in ("study", "environment"):
        if ctx.get(key):
            lines += ["", f"{key.capitalize()}:", "", "```json",
                      json.dumps(to_jsonable(ctx[key]), indent=2, sort_keys=True), "```"]
    if summary.skipped:
        lines += ["", f"Skipped run folders ({len(summary.skipped)}):", ""]
        lines += [f"- `{s}`" for s in summary.skipped]
    return lines + [""]


def render_markdown(summary: BenchmarkSummary, figures: dict | None = None) -> str:
    """``benchmark.md`` from the summary.

    Parameters
    ----------
    summary : BenchmarkSummary
    figures : dict, optional
        ``{title: path relative to the report}`` of the drawn figures, linked in order.
    """
    lines = ["# Long-horizon benchmark (`compare --protocol ltsf`)", "",
             "Test MSE / MAE on the standardised scale (scaler fitted on the training rows), every test "
             "window, step and channel, multivariate. Our models: mean ± std over seeds (std with ddof = 1, "
             "omitted for one seed). Repeat: the last input value for every step; linear map: the closed-form "
             "least-squares map from lookback to horizon, shared by the channels. Bold: the lowest value of "
             "each column among all rows, at three decimals. [n]: published figure, see Sources. Our figures "
             "use every test window; some published tables dropped the last incomplete test batch. Published averages "
             "are computed here from the four horizons and can differ from a paper's printed average in the "
             "last digit.", ""]
    lines += _answer(summary)
    lines += ["## Results", ""]
    for dataset in summary.datasets:
        for lookback in summary.lookbacks:
            lines += _main_table(summary, dataset, lookback)
    for title, rel in (figures or {}).items():
        lines += [f"![{title}]({rel})", ""]
    lines += _tests_table(summary) + _lookback_section(summary) + _training_table(summary)
    lines += _context_section(summary)
    numbers = _source_numbers(summary)
    if numbers:
        lines += ["## Sources", ""] + [f"{k}. {src}" for src, k in numbers.items()] + [""]
    return "\n".join(lines)


# -- CSV and JSON ----------------------------------------------------------------------

_CSV_COLUMNS = ("dataset", "dataset_name", "lookback", "horizon", "group", "model", "n_seeds", "mse", "mse_std",
                "mae", "mae_std", "val_mse", "best_epoch", "seconds", "fusion_weight", "test_windows")


def benchmark_frame(summary: BenchmarkSummary) -> pd.DataFrame:
    """One row per dataset, horizon, lookback and forecast of ours (models, Repeat, linear map)."""
    rows = [dict(asdict(e), model=e.name, dataset_name=dataset_label(e.dataset)) for e in summary.entries
            if e.group in (MODEL, BASELINE) and e.horizon is not None]
    return pd.DataFrame(rows, columns=list(_CSV_COLUMNS))


def write_benchmark_csv(summary: BenchmarkSummary, path) -> Path:
    """Write :func:`benchmark_frame` as CSV (NaN as an empty field)."""
    path = Path(path)
    atomic_write_text(path, benchmark_frame(summary).to_csv(index=False, lineterminator="\n"))
    return path


def write_benchmark_json(summary: BenchmarkSummary, path) -> Path:
    """Write the whole summary as JSON (NaN as null), with the test method."""
    path = Path(path)
    payload = asdict(summary)
    payload["dm_note"] = DM_NOTE
    payload["horizons_of_average"] = list(HORIZONS)
    atomic_write_json(path, payload)
    return path


# -- figures ---------------------------------------------------------------------------

def _plt():
    import matplotlib
    matplotlib.use("Agg")   # files only, also in workers and CI
    import matplotlib.pyplot as plt
    return plt


def _series(summary, dataset, lookback, group, name, xs, by_lookback=False):
    """x, mean and std arrays of one forecast over horizons (or lookbacks)."""
    pts = []
    for x in xs:
        e = summary.entry(dataset, x if by_lookback else lookback, lookback if by_lookback else x, group, name)
        if e is not None and math.isfinite(e.mse):
            pts.append((x, e.mse, e.mse_std))
    arr = np.asarray(pts, dtype=float).reshape(-1, 3)
    return arr[:, 0], arr[:, 1], arr[:, 2]


def _draw_ours(ax, summary, dataset, fixed, xs, by_lookback):
    from forecast.study.figures import model_color
    for model in summary.models:
        x, m, s = _series(summary, dataset, fixed, MODEL, model, xs, by_lookback)
        if not x.size:
            continue
        color = model_color(model)
        ax.plot(x, m, "-o", color=color, lw=2, ms=4, label=row_label(MODEL, model))
        ok = np.isfinite(s)
        if ok.sum() > 1:
            ax.fill_between(x[ok], (m - s)[ok], (m + s)[ok], color=color, alpha=0.2, lw=0)
    for name, marker, color in ((REPEAT_OURS, "s", model_color("naive_last")),
                                (LINEAR_OURS, "^", model_color("naive_drift"))):
        x, m, _ = _series(summary, dataset, fixed, BASELINE, name, xs, by_lookback)
        if x.size:
            ax.plot(x, m, ":", marker=marker, color=color, lw=1.8, ms=4, label=row_label(BASELINE, name))


def _legend(fig, axes):
    """One legend for the figure, outside the panels, so it covers no data."""
    seen = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        # Below the panels: beside them it would collide with the figure title.
        fig.legend(list(seen.values()), list(seen.keys()), loc="outside lower center", fontsize=8,
                   frameon=False, ncol=min(5, len(seen)))


def _save(fig, plt, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_mse_vs_horizon(summary: BenchmarkSummary, path) -> Path:
    """Test MSE against horizon, one panel per dataset, at the main lookback.

    Ours solid with a ±1 std band over seeds; Repeat and the linear map dotted;
    published lookback-96 models (and the published Repeat) dashed and lighter.
    """
    plt = _plt()
    lookback = summary.main_lookback
    xs = sorted(set(HORIZONS) | set(summary.horizons))
    n = len(summary.datasets)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n + 2.6, 4.6), squeeze=False, layout="constrained")
    names = list(dict.fromkeys(e.name for e in summary.entries if e.group == PUBLISHED))
    # Published curves bunch together: a hollow marker each tells them apart where colours fail.
    palette, markers = plt.get_cmap("Dark2"), "vDPX*h<>p"
    for ax, dataset in zip(axes[0], summary.datasets):
        for k, e_name in enumerate(names):
            for lb in (MAIN_LOOKBACK, None):
                if lb == MAIN_LOOKBACK and lookback != MAIN_LOOKBACK:
                    continue   # published lookback-96 curves beside ours only when ours are at 96 too
                x, m, _ = _series(summary, dataset, lb, PUBLISHED, e_name, xs)
                if x.size:
                    ax.plot(x, m, "--", marker=markers[k % len(markers)], mfc="none", ms=5,
                            color=palette(k % 8), lw=1.0, alpha=0.55, label=f"{e_name} (published)")
        _draw_ours(ax, summary, dataset, lookback, xs, by_lookback=False)
        ax.set_title(dataset_label(dataset))
        ax.set_xlabel("horizon H (steps ahead)")
        ax.set_ylabel("test MSE, standardised (log scale), ↓ better")
        ax.set_yscale("log")
        ax.set_xticks(xs)
        ax.grid(True, which="both", alpha=0.3)
    _legend(fig, axes)
    fig.suptitle(f"Test MSE against horizon at lookback {lookback} (ours solid, band ±1 std over seeds)",
                 fontsize=11)
    return _save(fig, plt, path)


def plot_mse_vs_lookback(summary: BenchmarkSummary, path) -> Path:
    """Test MSE against lookback: one panel per dataset (rows) and horizon (columns)."""
    plt = _plt()
    rows, cols = len(summary.datasets), len(summary.horizons)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols + 2.6, 3.3 * rows + 0.6), squeeze=False,
                             layout="constrained")
    xs = list(summary.lookbacks)
    for i, dataset in enumerate(summary.datasets):
        for j, horizon in enumerate(summary.horizons):
            ax = axes[i, j]
            _draw_ours(ax, summary, dataset, horizon, xs, by_lookback=True)
            ax.set_title(f"{dataset_label(dataset)}, H = {horizon}", fontsize=10)
            if i == rows - 1:
                ax.set_xlabel("lookback L (input steps)")
            if j == 0:
                ax.set_ylabel("test MSE, standardised, ↓ better")
            ax.set_xticks(xs)
            ax.grid(True, alpha=0.3)
    _legend(fig, axes)
    fig.suptitle("Test MSE against lookback (band ±1 std over seeds)", fontsize=11)
    return _save(fig, plt, path)


# -- the whole report ------------------------------------------------------------------

def _context(out_dir: Path, context: dict | None) -> dict:
    """``study.json`` if present, overridden key by key by ``context``."""
    found = {}
    if (out_dir / "study.json").exists():
        found = _read_json(out_dir / "study.json")
    return {**found, **dict(context or {})}


def build_benchmark_report(out_dir, context: dict | None = None, draw: bool = True) -> Path:
    """Summarise the study in ``out_dir`` and write its report.

    Writes ``benchmark.md``, ``benchmark.csv``, ``benchmark.json`` and, with ``draw``,
    ``figures/mse_vs_horizon.png`` (and ``figures/mse_vs_lookback.png`` when the study
    has several lookbacks).

    Parameters
    ----------
    out_dir : str or Path
        The study folder; runs are read from ``out_dir/runs``.
    context : dict, optional
        ``command``, ``environment``, ``wall_seconds``, ``study``; read from
        ``out_dir/study.json`` when not given (given keys win).
    draw : bool
        False: no figures (a rebuild in a second).

    Returns
    -------
    Path
        The written ``benchmark.md``.

    Raises
    ------
    UserInputError
        No finished run below ``out_dir/runs``.
    """
    out_dir = Path(out_dir)
    runs, skipped = load_runs(out_dir / "runs")
    if not runs:
        raise UserInputError(f"no finished long-horizon runs (summary.json) below {out_dir / 'runs'}")
    summary = summarize_benchmark(runs, skipped, _context(out_dir, context))
    fig_dir = out_dir / "figures"
    for name in (FIG_HORIZON, FIG_LOOKBACK):
        if (fig_dir / name).exists():
            (fig_dir / name).unlink()   # a rebuilt report must not show figures of an older study
    made = {}
    if draw:
        made["Test MSE against horizon"] = plot_mse_vs_horizon(summary, fig_dir / FIG_HORIZON)
        if len(summary.lookbacks) > 1:
            made["Test MSE against lookback"] = plot_mse_vs_lookback(summary, fig_dir / FIG_LOOKBACK)
    write_benchmark_csv(summary, out_dir / "benchmark.csv")
    write_benchmark_json(summary, out_dir / "benchmark.json")
    path = out_dir / "benchmark.md"
    atomic_write_text(path, render_markdown(summary, {t: p.relative_to(out_dir).as_posix() for t, p in made.items()}))
    return path
