"""Reduce the runs of a comparison study to one summary.

The runs are read back by :mod:`forecast.study.runs`. This module computes, once,
everything a study states about them (:func:`summarize` -> :class:`StudySummary`): the
rows aggregated over seeds, the bests, the verdicts (:func:`conclude`), the places, the
significance answers and the data of the figures (:mod:`forecast.study.figure_data`).
Data flows one way, runs -> summary -> renderers: the report, the cross-source page and
the figures only render the summary. It knows nothing about training or plotting, so the
report can be rebuilt from the files alone.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forecast.data.sources import price_currency
from forecast.fileio import atomic_write_json, atomic_write_text
from forecast.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from forecast.study.coverage import (IntervalSetup, interval_rows, interval_setup, interval_values,
                                     is_interval_key)
from forecast.study.figure_data import window_figures
from forecast.study.names import NAIVE_PREFIX, is_naive
from forecast.study.runs import RunRecord
from forecast.study.significance import judge, study_tests
from models.names import BRANCHES, CLASSICAL, HYBRID

__all__ = [
    "WINDOW_METRICS", "Stat", "SummaryRow", "Gap", "MetricVerdict", "FusionTally", "Conclusion",
    "StudySummary", "summarize", "conclude", "rank_values", "write_summary_csv", "write_summary_json",
    "sample_std",
]

#: Per-run quantities that are summarised beside the metrics.
RUN_STATS = ("epoch_seconds", "epochs")
SPREAD_RULE = ("|difference of means| > sqrt(std_a^2 + std_b^2), with std the sample "
               "standard deviation (ddof=1) over seeds")
#: Metrics compared across window lengths and across sources (one table per metric would
#: be too long).
WINDOW_METRICS = ("rmse", "mae", "rel_mae", "direction_accuracy")


def sample_std(values) -> float:
    """Sample standard deviation (ddof=1); 0 for fewer than two values.

    One seed carries no information about spread, and 0 (rather than NaN) keeps the
    tables and the separation rule well defined in that case.
    """
    arr = np.asarray(values, dtype=float)
    return float(arr.std(ddof=1)) if arr.size > 1 else 0.0


# -- aggregation -----------------------------------------------------------------------

@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of a quantity over seeds."""

    mean: float
    std: float
    values: tuple

    @classmethod
    def of(cls, values) -> "Stat":
        vals = tuple(float(v) for v in values)
        finite = [v for v in vals if math.isfinite(v)]
        mean = float(np.mean(finite)) if finite else float("nan")
        # Identical values (a naive baseline) have no spread; rounding in the mean
        # would otherwise leave a spurious 1e-16.
        std = 0.0 if len(set(finite)) <= 1 else sample_std(finite)
        return cls(mean=mean, std=std, values=vals)


@dataclass
class SummaryRow:
    """One line of the summary: a model (or a naive baseline) at one window length.

    Attributes
    ----------
    seq_len : int
    model : str
        Model name, or ``naive_<baseline>`` for a baseline.
    seeds : tuple of int
    stats : dict of str to Stat
        Every metric, plus ``epoch_seconds`` and ``epochs`` for trained models.
    tuned : dict or None
        The ``compare --tuned`` record of the row's runs (best.json, options changed;
        :func:`forecast.study.tuned.tuned_record`); None when they used the shared options.
    """

    seq_len: int
    model: str
    seeds: tuple
    stats: dict
    tuned: dict | None = None

    @property
    def kind(self) -> str:
        """``"naive"`` for a baseline, ``"model"`` otherwise (classical baselines included:
        they compete like the neural models)."""
        return "naive" if is_naive(self.model) else "model"

    @property
    def classical(self) -> bool:
        """Whether the row is a classical baseline (one run: no seeds, no epochs)."""
        return self.model in CLASSICAL

    def mean(self, key: str) -> float:
        """Mean over seeds of ``key`` (NaN when the row has no such quantity)."""
        stat = self.stats.get(key)
        return stat.mean if stat is not None else float("nan")

    def std(self, key: str) -> float:
        """Sample standard deviation over seeds of ``key`` (NaN when absent)."""
        stat = self.stats.get(key)
        return stat.std if stat is not None else float("nan")


def _keys_in_order(mappings) -> list[str]:
    """The keys of several mappings, each once, in the order they are first seen."""
    return list(dict.fromkeys(key for mapping in mappings for key in mapping))


def _metric_keys(records) -> list[str]:
    """Metric names present in the runs: the known ones in table order, then any extra."""
    seen = _keys_in_order(rec.metrics for rec in records)
    known = [m for m in METRIC_NAMES if m in seen]
    return known + [m for m in seen if m not in METRIC_NAMES]


def _interval_stats(runs, baseline: str | None = None) -> dict:
    """``{key: Stat}`` of the per-method interval figures of one forecast over ``runs``
    (:func:`forecast.study.coverage.interval_values`); empty when no run recorded intervals.
    A run without them counts as NaN, which the means skip."""
    values = [interval_values(r, baseline) for r in runs]
    return {k: Stat.of(v.get(k, float("nan")) for v in values) for k in _keys_in_order(values)}


def _at_window(records, seq_len: int) -> list:
    """The runs whose own window length is ``seq_len`` (all of them when none is): a run
    with a tuned ``seq_len`` sits in the study's window but cut its own windows."""
    return [r for r in records if int(r.config.get("seq_len", seq_len)) == seq_len] or list(records)


def _rows(records) -> list[SummaryRow]:
    """Aggregate runs over seeds, per window length and model.

    Naive baselines become rows named ``naive_<baseline>``. Their metrics come from
    every run of that window length (they do not depend on the seed, so their spread
    is 0 unless two runs saw different test sets, which would be a bug worth seeing).

    Parameters
    ----------
    records : list of RunRecord

    Returns
    -------
    list of SummaryRow
        Trained models first (in the order they first appear), then baselines, for
        each window length in increasing order.
    """
    keys = _metric_keys(records)
    rows: list[SummaryRow] = []
    for seq_len in sorted({r.seq_len for r in records}):
        group = [r for r in records if r.seq_len == seq_len]
        models = list(dict.fromkeys(r.model for r in group))
        for model in models:
            runs = [r for r in group if r.model == model]
            stats = {k: Stat.of(r.metrics.get(k, float("nan")) for r in runs) for k in keys}
            stats.update(_interval_stats(runs))
            stats["epoch_seconds"] = Stat.of(r.epoch_seconds for r in runs)
            stats["epochs"] = Stat.of(r.epochs for r in runs)
            # Every seed of a model on one source is planned with the same best.json.
            tuned = next((r.tuned for r in runs if r.tuned), None)
            rows.append(SummaryRow(seq_len, model, tuple(r.seed for r in runs), stats, tuned))
        # The drift forecast reads the input window, so a run with a tuned seq_len has its
        # own; the window's baselines come from the runs that have the window's length.
        plain = _at_window(group, seq_len)
        baselines = list(dict.fromkeys(b for r in plain for b in r.naive))
        for base in baselines:
            runs = [r for r in plain if base in r.naive]
            stats = {k: Stat.of(r.naive[base].get(k, float("nan")) for r in runs) for k in keys}
            stats.update(_interval_stats(runs, base))
            rows.append(SummaryRow(seq_len, NAIVE_PREFIX + base, tuple(r.seed for r in runs),
                                   stats))
    return rows


def _stat_keys(rows) -> list[str]:
    return _keys_in_order(row.stats for row in rows)


def write_summary_csv(rows, path) -> Path:
    """Write the summary as CSV: one line per (seq_len, model), ``<key>_mean, <key>_std``."""
    path = Path(path)
    keys = _stat_keys(rows)
    header = ["seq_len", "model", "kind", "n_seeds"]
    for key in keys:
        header += [f"{key}_mean", f"{key}_std"]
    header.append("tuned")      # last, so readers by position keep their columns
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        line = [row.seq_len, row.model, row.kind, len(row.seeds)]
        for key in keys:     # repr: every digit, so the file reads back to the same floats
            line += [repr(row.mean(key)), repr(row.std(key))]
        line.append(row.tuned["best_json"] if row.tuned else "")
        writer.writerow(line)
    atomic_write_text(path, buffer.getvalue())
    return path


def _json_number(x: float):
    return x if math.isfinite(x) else None


def write_summary_json(rows, path, extra: dict | None = None) -> Path:
    """Write the summary as JSON (NaN becomes ``null``), with per-seed values kept."""
    path = Path(path)
    payload = {
        "std": "sample standard deviation over seeds (ddof=1; 0 for one seed)",
        "rows": [{
            "seq_len": row.seq_len, "model": row.model, "kind": row.kind,
            "n_seeds": len(row.seeds), "seeds": list(row.seeds), "tuned": row.tuned,
            **{key: {"mean": _json_number(st.mean), "std": _json_number(st.std),
                     "values": [_json_number(v) for v in st.values]}
               for key, st in row.stats.items()},
        } for row in rows],
    }
    if extra:
        payload.update(extra)
    atomic_write_json(path, payload)
    return path


# -- conclusions -----------------------------------------------------------------------

@dataclass(frozen=True)
class Gap:
    """How the best model compares with another one on one metric."""

    other: str
    difference: float     # |mean(best) - mean(other)|
    spread: float         # sqrt(std_best^2 + std_other^2)

    @property
    def separated(self) -> bool:
        """Whether the gap is larger than the spread over seeds (see ``SPREAD_RULE``)."""
        return self.difference > self.spread


@dataclass(frozen=True)
class MetricVerdict:
    """Who wins one metric at one window length."""

    metric: str
    best: str                 # best row overall, naive and classical baselines included
    best_model: str | None    # best trained model (classical baselines are not trained)
    gaps: tuple               # Gap of best_model against every other trained model
    naive_best: bool          # a naive baseline beats every trained model

    @property
    def n_separated(self) -> int:
        """How many of the gaps are larger than the seed spread."""
        return sum(g.separated for g in self.gaps)


@dataclass(frozen=True)
class FusionTally:
    """The hybrid against one of its branches over the judged metrics."""

    part: str
    metrics: tuple            # metrics compared
    wins: tuple               # ... where the hybrid's mean is better
    clear_wins: tuple         # ... better by more than the seed spread
    clear_losses: tuple       # ... worse by more than the seed spread


@dataclass(frozen=True)
class Conclusion:
    """Everything the report concludes for one window length."""

    seq_len: int
    verdicts: tuple                # MetricVerdict per metric
    beats_naive: dict              # model -> rel_mae mean < 1 (None without rel_mae)
    fusion: tuple                  # (metric, versus, hybrid better?, Gap) for the hybrid
    tallies: tuple = ()            # FusionTally per branch, from ``fusion``
    beyond_all: tuple = ()         # metrics where the hybrid beats every branch beyond the spread

    @property
    def fusion_metrics(self) -> tuple:
        """The metrics of the fusion question, in the order judged."""
        return tuple(dict.fromkeys(f[0] for f in self.fusion))


def _better(metric: str, a: float, b: float) -> bool:
    """Whether value ``a`` is strictly better than ``b`` on ``metric`` (NaN never wins)."""
    if not math.isfinite(a):
        return False
    if not math.isfinite(b):
        return True
    return a > b if metric in HIGHER_IS_BETTER else a < b


def _best_of(rows, metric: str) -> SummaryRow | None:
    """The row with the best mean on ``metric`` (first one on ties), or ``None``."""
    best = None
    for row in rows:
        if math.isfinite(row.mean(metric)) and (best is None
                                               or _better(metric, row.mean(metric),
                                                          best.mean(metric))):
            best = row
    return best


def _gap(a: SummaryRow, b: SummaryRow, metric: str) -> Gap:
    return Gap(other=b.model, difference=abs(a.mean(metric) - b.mean(metric)),
               spread=math.hypot(a.std(metric), b.std(metric)))


def _tallies(fusion) -> tuple[tuple, tuple]:
    """Per branch, where the hybrid wins, clearly wins and clearly loses; and the metrics
    where it beats every branch by more than the seed spread."""
    parts = list(dict.fromkeys(f[1] for f in fusion))
    tallies = []
    for part in parts:
        entries = [f for f in fusion if f[1] == part]
        tallies.append(FusionTally(
            part=part, metrics=tuple(f[0] for f in entries),
            wins=tuple(f[0] for f in entries if f[2]),
            clear_wins=tuple(f[0] for f in entries if f[2] and f[3].separated),
            clear_losses=tuple(f[0] for f in entries if not f[2] and f[3].separated)))
    beyond_all = []
    for metric in dict.fromkeys(f[0] for f in fusion):
        entries = [f for f in fusion if f[0] == metric]
        # A branch missing on this metric (no finite mean) leaves the question open.
        if len(entries) == len(parts) and all(f[2] and f[3].separated for f in entries):
            beyond_all.append(metric)
    return tuple(tallies), tuple(beyond_all)


def conclude(rows, seq_len: int, metrics=None, hybrid: str = HYBRID,
             parts=BRANCHES) -> Conclusion:
    """Draw the conclusions for one window length from the summary rows.

    Parameters
    ----------
    rows : list of SummaryRow
        The summary (rows of other window lengths are ignored).
    seq_len : int
    metrics : list of str, optional
        Metrics to judge; all error metrics in the rows by default (not the interval
        figures: a coverage is judged against its level, not ranked).
    hybrid, parts : str, tuple of str
        The fused model and the models it fuses, for the fusion question.

    Returns
    -------
    Conclusion
    """
    here = [r for r in rows if r.seq_len == seq_len]
    models = [r for r in here if r.kind == "model"]
    # The seed-spread rule judges trained models; a classical baseline is one run with no
    # spread, so it competes for "best overall" (like naive) but is no gap of the rule.
    trained = [r for r in models if not r.classical]
    if metrics is None:
        metrics = [k for k in _stat_keys(here) if k not in RUN_STATS and not is_interval_key(k)]
    verdicts = []
    for metric in metrics:
        overall = _best_of(here, metric)
        top = _best_of(trained, metric)
        if overall is None:
            continue
        gaps = tuple(_gap(top, r, metric) for r in trained if r is not top) if top else ()
        verdicts.append(MetricVerdict(metric=metric, best=overall.model,
                                      best_model=top.model if top else None, gaps=gaps,
                                      naive_best=overall.kind == "naive"))
    beats = {}
    for row in models:
        # MAE relative to the naive forecast's on the same test days; MASE's in-sample
        # scale does not answer this (the naive forecast itself may score far from 1).
        rel = row.mean("rel_mae")
        beats[row.model] = (rel < 1.0) if math.isfinite(rel) else None
    fusion = []
    by_name = {r.model: r for r in models}
    if hybrid in by_name:
        for metric in metrics:
            for part in parts:
                if part in by_name and math.isfinite(by_name[hybrid].mean(metric)):
                    h, p = by_name[hybrid], by_name[part]
                    fusion.append((metric, part, _better(metric, h.mean(metric), p.mean(metric)),
                                   _gap(h, p, metric)))
    tallies, beyond_all = _tallies(fusion)
    return Conclusion(seq_len=seq_len, verdicts=tuple(verdicts), beats_naive=beats,
                      fusion=tuple(fusion), tallies=tallies, beyond_all=beyond_all)


# -- places ----------------------------------------------------------------------------

def rank_values(values: dict, metric: str) -> dict:
    """``{name: rank}`` of finite values, 1 = best; tied values share the mean of their places."""
    finite = {k: v for k, v in values.items() if math.isfinite(v)}
    ordered = sorted(finite.values(), reverse=metric in HIGHER_IS_BETTER)
    ranks = {}
    for name, value in finite.items():
        places = [i + 1 for i, v in enumerate(ordered) if v == value]
        ranks[name] = sum(places) / len(places)
    return ranks


def _bests(here, metric: str) -> tuple:
    """The rows of one window holding the best mean of ``metric``, ties included (row order)."""
    top = _best_of(here, metric)
    return () if top is None else tuple(r.model for r in here if r.mean(metric) == top.mean(metric))


def _hybrid_rank(here, metric: str, hybrid: str = HYBRID):
    """``(place, of)`` of the hybrid among the trained models with a finite mean, or None.

    Unlike :func:`rank_values`, ties do not share a place: they are broken by name, so
    the place is a whole number a table can print as "2 of 4".
    """
    trained = sorted((r.mean(metric), r.model) for r in here
                     if r.kind == "model" and not r.classical and math.isfinite(r.mean(metric)))
    if metric in HIGHER_IS_BETTER:
        trained = trained[::-1]
    order = [m for _, m in trained]
    return (order.index(hybrid) + 1, len(order)) if hybrid in order else None



# -- the summary -----------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class StudySummary:
    """Everything a study states about its runs, computed once by :func:`summarize`.

    The report, the cross-source page and the figures only read it.

    Attributes
    ----------
    rows : tuple of SummaryRow
        Per window length (increasing): the trained models, then the naive baselines.
    seq_lens : tuple of int
    models : tuple of str
        Trained models, in study order.
    n_seeds : int
        Distinct seeds over all runs.
    metrics : tuple of str
        Error metric names in the runs: the known ones in table order, then any extra;
        the interval figures (coverage, width) are not among them: they are not ranked
        or judged like errors (see ``intervals``).
    unit : str
        Currency of the prices.
    config : dict
        The shared options: the first run's configuration, with what a best.json of
        ``compare --tuned`` changed in it set back to the shared value.
    data : dict
        ``{seq_len: data description}`` (``summary.json``'s ``data``) of each window's first run.
    mixed_data : tuple of int
        Window lengths whose runs saw different data (not a like-for-like comparison).
    bests : dict
        ``{(seq_len, metric): models}``: the rows holding the best mean, naive baselines
        included, ties included, in row order; absent when no row has a finite mean.
    conclusions : dict
        ``{seq_len: Conclusion}`` (:func:`conclude` over :attr:`metrics`).
    window_metrics : tuple of str
        The :data:`WINDOW_METRICS` that some row has a finite mean of.
    ranks : dict
        ``{(seq_len, metric): {model: rank}}`` for :data:`WINDOW_METRICS`, over every row
        of that window (:func:`rank_values`).
    hybrid_ranks : dict
        ``{(seq_len, metric): (place, of) or None}`` for :data:`WINDOW_METRICS`: the
        hybrid's place among the trained models.
    tests : tuple of dict
        Every significance test (:func:`forecast.study.significance.study_tests`).
    answers : dict
        ``{seq_len: tuple of Answer}``: the tests judged, per source
        (:func:`forecast.study.significance.judge`).
    figures : dict
        ``{seq_len: WindowFigures}`` (:func:`forecast.study.figure_data.window_figures`).
    tuned : dict
        ``{(seq_len, model): record}`` of the rows that used a tuned configuration
        (:attr:`SummaryRow.tuned`); empty without ``compare --tuned``.
    intervals : IntervalSetup or None
        Level, method and calibration of the prediction intervals
        (:func:`forecast.study.coverage.interval_setup`); None when no run recorded any
        (runs written before intervals existed).
    interval_rows : tuple of IntervalRow
        Per row with a coverage: its intervals and their judgement
        (:func:`forecast.study.coverage.interval_rows`); the rows' stats hold the figures.
    """

    rows: tuple
    seq_lens: tuple
    models: tuple
    n_seeds: int
    metrics: tuple
    unit: str
    config: dict
    data: dict
    mixed_data: tuple
    bests: dict
    conclusions: dict
    window_metrics: tuple
    ranks: dict
    hybrid_ranks: dict
    tests: tuple
    answers: dict
    figures: dict
    tuned: dict = field(default_factory=dict)
    intervals: IntervalSetup | None = None
    interval_rows: tuple = ()

    def rows_at(self, seq_len: int) -> list[SummaryRow]:
        """The rows of one window length, in table order."""
        return [r for r in self.rows if r.seq_len == seq_len]

    def row(self, seq_len: int, model: str) -> SummaryRow | None:
        """The row of ``model`` (or ``naive_<baseline>``) at ``seq_len``, if any."""
        return next((r for r in self.rows if (r.seq_len, r.model) == (seq_len, model)), None)


def _price_unit(record: RunRecord) -> str:
    """Currency of the prices: the data's own if it says, USD for the bundled/Yahoo data."""
    info = dict(record.info.get("data") or {})
    info.setdefault("source", record.config.get("data", "sample"))
    return price_currency(info)


def _data_key(record: RunRecord) -> str:
    """The data a run saw, for the like-for-like check: source, rows and the dates of each
    part. The window counts are left out: a tuned ``seq_len`` changes how many training
    windows the same rows give, not the data or the test days."""
    data = json.loads(json.dumps(record.info.get("data") or {}, default=str))
    for part in (data.get("split") or {}).values():
        if isinstance(part, dict):
            part.pop("windows", None)
    return json.dumps(data, sort_keys=True)


def _shared_config(record: RunRecord) -> dict:
    """A run's configuration with what ``compare --tuned`` changed in it set back to the
    study's shared values (the configuration every untuned run has)."""
    changed = (record.tuned or {}).get("changed") or {}
    return {**record.config, **{name: v.get("shared") for name, v in changed.items()}}


def summarize(records) -> StudySummary:
    """Compute everything the study states about its runs, once.

    Parameters
    ----------
    records : list of RunRecord
        The study's runs (:func:`forecast.study.runs.load_study`): one data source, any
        window lengths.

    Returns
    -------
    StudySummary

    Raises
    ------
    ValueError
        Without runs.
    """
    records = list(records)
    if not records:
        raise ValueError("no runs to summarize")
    rows = _rows(records)
    seq_lens = tuple(sorted({r.seq_len for r in records}))
    metrics = tuple(k for k in _metric_keys(records) if not is_interval_key(k))
    window = {L: [r for r in records if r.seq_len == L] for L in seq_lens}
    bests, ranks, hybrid_ranks = {}, {}, {}
    for seq_len in seq_lens:
        here = [r for r in rows if r.seq_len == seq_len]
        for metric in metrics:
            tied = _bests(here, metric)
            if tied:
                bests[(seq_len, metric)] = tied
        for metric in WINDOW_METRICS:
            ranks[(seq_len, metric)] = rank_values({r.model: r.mean(metric) for r in here}, metric)
            hybrid_ranks[(seq_len, metric)] = _hybrid_rank(here, metric)
    tests = study_tests(records)
    judged = judge(tests)
    setup = interval_setup(records)
    return StudySummary(
        rows=tuple(rows), seq_lens=seq_lens, models=tuple(dict.fromkeys(r.model for r in records)),
        n_seeds=len({r.seed for r in records}), metrics=metrics, unit=_price_unit(records[0]),
        config=_shared_config(records[0]),
        data={L: (_at_window(runs, L)[0].info.get("data") or {}) for L, runs in window.items()},
        mixed_data=tuple(L for L, runs in window.items() if len({_data_key(r) for r in runs}) > 1),
        bests=bests, conclusions={L: conclude(rows, L, list(metrics)) for L in seq_lens},
        window_metrics=tuple(m for m in WINDOW_METRICS
                             if any(math.isfinite(r.mean(m)) for r in rows)),
        ranks=ranks, hybrid_ranks=hybrid_ranks, tests=tuple(tests),
        answers={L: tuple(a for a in judged if a.seq_len == L) for L in seq_lens},
        figures={L: window_figures(runs) for L, runs in window.items()},
        tuned={(r.seq_len, r.model): r.tuned for r in rows if r.tuned},
        intervals=setup, interval_rows=interval_rows(rows, setup))
