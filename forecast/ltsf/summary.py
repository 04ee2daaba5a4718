"""The summary of a long-horizon benchmark study, computed once from its runs.

:func:`summarize_benchmark` reduces the runs (:func:`forecast.ltsf.runs.load_runs`) to one
frozen :class:`BenchmarkSummary`: the table entries (our models over seeds, our Repeat and
linear map, the published figures, four-horizon averages), the Diebold-Mariano tests with
their Holm adjustment, the verdicts and the standings against the published table. Nothing
is concluded in advance, and the renderers (:mod:`forecast.ltsf.markdown`,
:mod:`forecast.ltsf.figures`, the CSV and JSON of :mod:`forecast.ltsf.report`) read
nothing else.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecast.errors import UserInputError
from forecast.ltsf.published import HORIZONS, MAIN_LOOKBACK, PUBLISHED_DATASETS, load_published, published_name
from forecast.ltsf.runs import NAN, RunResult
from forecast.stats import SIGNIFICANCE_LEVEL, diebold_mariano, holm_adjust
from forecast.study.names import model_rank
from models.names import BRANCHES, HYBRID

__all__ = ["MODEL", "BASELINE", "PUBLISHED", "REPEAT_OURS", "LINEAR_OURS", "VS_BRANCH", "VS_LINEAR",
           "DM_NOTE", "Entry", "TunedRow", "DMTest", "Verdict", "Standing", "BenchmarkSummary", "summarize_benchmark"]

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
           "lag H - 1, as for H-step forecasts. With fewer than 3 H windows, or where that variance "
           "estimate is not positive, the test is not made (a lag-0 variance would ignore the overlap "
           "and overstate significance); its row says why. Correlation beyond lag H - 1 (the series' "
           "own persistence) is not counted, so p-values may still be somewhat optimistic. Holm "
           "adjustment within the tests of one kind at one dataset and lookback (over horizons and "
           "models). Statistic of model minus the other: negative means the model's loss is smaller.")


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
    tuned : bool
        Our model's runs (some of them, for an average) used a best.json of ``compare --tuned``.
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
    tuned: bool = False


@dataclass(frozen=True)
class TunedRow:
    """A model that trained with a best.json of ``compare --tuned`` at one dataset, lookback
    and horizon: the file and ``{option: {"shared": value, "tuned": value}}`` of what it
    changed (``not_applied``: options of the file the study left out)."""

    dataset: str
    lookback: int
    horizon: int
    model: str
    best_json: str
    changed: dict
    not_applied: dict = field(default_factory=dict)


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
    tuned: tuple[TunedRow, ...] = ()

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
    return tuple(sorted(set(names), key=model_rank))


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
                 test_windows=r0.test_windows, tuned=any(r.tuned for r in runs))


def _at_study_lookback(runs: list[RunResult]) -> list[RunResult]:
    """The runs whose own lookback is the study's (all of them when none is).

    The linear map is fitted on the run's input windows, so a run with a tuned lookback
    carries another one; the baselines of a study lookback come from the runs that have it.
    """
    plain = [r for r in runs if "seq_len" not in ((r.tuned or {}).get("changed") or {})]
    return plain or runs


def _baseline_entries(runs: list[RunResult]) -> list[Entry]:
    # Deterministic, so every run of one dataset/horizon/lookback carries the same value;
    # the mean only guards against a stray rounding difference.
    runs = _at_study_lookback(runs)
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
                 fusion_weight=_mean(e.fusion_weight for e in means) if r0.model == HYBRID else NAN,
                 tuned=any(e.tuned for e in means))


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
    stacked = pd.concat([r.window_losses["linear_mse"] for r in _at_study_lookback(runs)], axis=1, join="inner")
    columns[LINEAR_OURS] = stacked.mean(axis=1)
    return pd.concat(columns, axis=1, join="inner").sort_index()


def _pairs(models) -> list[tuple[str, str, str]]:
    """``(kind, model, against)`` of the tests: the hybrid against each branch present,
    every model against the linear map."""
    pairs = [(VS_BRANCH, HYBRID, b) for b in BRANCHES if HYBRID in models and b in models]
    return pairs + [(VS_LINEAR, m, LINEAR_OURS) for m in models]


#: A test with lags up to H - 1 needs at least this many times H windows.
MIN_WINDOWS_PER_LAG = 3


def _overlap_dm(diff: np.ndarray, horizon: int):
    """Diebold-Mariano with lags up to ``horizon - 1``, or NaN with the reason (see DM_NOTE)."""
    n = int(np.isfinite(diff).sum())
    if n < MIN_WINDOWS_PER_LAG * horizon:
        return n, NAN, NAN, (f"not tested: {n} windows are too few for lags up to H - 1 = {horizon - 1} "
                             f"(at least {MIN_WINDOWS_PER_LAG * horizon} needed)")
    res = diebold_mariano(diff, horizon=horizon)
    if res.note:        # the long-run variance was not positive: no honest lag-0 fallback here
        return n, NAN, NAN, "not tested: the long-run variance estimate was not positive"
    return res.n, res.statistic, res.p_value, ""


def _dm_tests(runs: list[RunResult]) -> list[DMTest]:
    """Raw (not yet Holm-adjusted) tests of one dataset, horizon and lookback."""
    losses = _seed_mean_losses(runs)
    r0 = runs[0]
    out = []
    for kind, model, against in _pairs(_model_order(losses.columns.drop(LINEAR_OURS))):
        diff = (losses[model] - losses[against]).to_numpy()
        # Windows share H - 1 targets with their neighbour: lags up to H - 1 (see DM_NOTE).
        n, statistic, p_value, note = _overlap_dm(diff, r0.horizon)
        out.append(DMTest(r0.dataset, r0.lookback, r0.horizon, kind, model, against, n,
                          _mean(diff), statistic, p_value, NAN, note))
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
    tuned = [TunedRow(g[0].dataset, g[0].lookback, g[0].horizon, g[0].model, str(rec.get("best_json", "?")),
                      dict(rec.get("changed") or {}), dict(rec.get("not_applied") or {}))
             for g in in_order(_group(runs, "dataset", "lookback", "horizon", "model"))
             if (rec := next((r.tuned for r in g if r.tuned), None))]
    return BenchmarkSummary(
        datasets=datasets, lookbacks=tuple(sorted({r.lookback for r in runs})),
        horizons=tuple(sorted({r.horizon for r in runs})), models=models,
        entries=tuple(entries), tests=tuple(tests), verdicts=tuple(_verdicts(entries, tests, level)),
        standings=tuple(_standings(entries, datasets)), n_runs=len(runs), skipped=tuple(skipped),
        context=dict(context or {}), level=level, tuned=tuple(tuned))
