"""Prediction-interval coverage of a comparison study, per model and baseline.

Every stock run folder's ``metrics.json`` gives the model (``test``), the last-value
forecast (``naive``) and the drift forecast (``drift``) a ``coverage`` (share of test
forecasts whose outcome lies in its interval) and an ``interval_width`` (mean
``upper - lower``, price units) of the run's interval method, and a block ``intervals``
with the level, the method, how the intervals were calibrated and the same two figures
of every method (:func:`forecast.calibration.interval_metrics`). This module turns them
into what the study states about intervals:

* per run, the per-method figures and the width relative to the naive forecast's
  (:func:`interval_values`), which the summary aggregates over seeds beside the metrics
  (keys :func:`method_key` and :data:`WIDTH_VS_NAIVE`);
* the study's interval setup (:func:`interval_setup`): level, method, calibration, and
  how many runs recorded intervals at all (runs written before intervals existed did not);
* per summary row, the judgement the report prints (:func:`interval_rows`): whether the
  coverage is off the nominal level by more than :data:`TOLERANCE_POINTS`, and whether
  the interval is narrower than the naive forecast's at similar coverage.

Coverage is a share here as in the run files; the renderers print it in percent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from forecast.study.names import NAIVE_PREFIX, is_naive
from forecast.study.runs import as_float

__all__ = ["COVERAGE", "WIDTH", "WIDTH_VS_NAIVE", "TOLERANCE_POINTS", "NAIVE_LAST", "method_key",
           "is_interval_key", "interval_values", "IntervalSetup", "interval_setup", "IntervalRow",
           "interval_rows", "off_level", "versus_naive", "intervals_json"]

#: The keys ``metrics.json`` gives each forecast (of the run's own interval method).
COVERAGE, WIDTH = "coverage", "interval_width"
#: Mean interval width over the naive forecast's on the same test days (per run, then
#: averaged over seeds): below 1 is a narrower interval than tomorrow = today's.
WIDTH_VS_NAIVE = "width_vs_naive"
#: A mean coverage further than this from the nominal level (percentage points) is flagged.
#: A 90 % interval over ~250 test days has a binomial standard error of ~2 points, so
#: 3 points is beyond one standard error but well within what a real miss looks like.
TOLERANCE_POINTS = 3.0
#: The summary row of the last-value forecast, every width's reference.
NAIVE_LAST = NAIVE_PREFIX + "last"
#: ``metrics.json``'s name of each forecast in the ``intervals`` block, by the run
#: record's baseline name (:func:`forecast.study.runs._split_metrics` renames naive -> last).
_BLOCK_KEYS = {None: "test", "last": "naive", "drift": "drift"}
#: Codes of :func:`versus_naive`.
NARROWER, WIDER, COVERS_LESS = "narrower", "wider", "covers less"


def method_key(key: str, method: str) -> str:
    """The summary's name of ``key`` (:data:`COVERAGE` or :data:`WIDTH`) under one method:
    ``coverage_split``."""
    return f"{key}_{method}"


def is_interval_key(key: str) -> bool:
    """Whether a summary quantity is about intervals (not an error metric).

    Intervals are not ranked, bolded or judged like errors: a higher coverage is not
    better, it should be at the level; a narrower interval is better only at that coverage.
    """
    return (key in (COVERAGE, WIDTH, WIDTH_VS_NAIVE)
            or key.startswith(COVERAGE + "_") or key.startswith(WIDTH + "_"))


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 0 else float("nan")


def interval_values(record, baseline: str | None = None) -> dict:
    """One forecast's interval figures in one run, as summary quantities.

    Parameters
    ----------
    record : forecast.study.runs.RunRecord
    baseline : str, optional
        ``"last"`` or ``"drift"`` for a naive baseline of the run; None for the model.

    Returns
    -------
    dict
        ``{coverage_<method>: share, interval_width_<method>: price units}`` for every
        method of the run's ``intervals`` block, and :data:`WIDTH_VS_NAIVE` (the width of
        the run's own method over the naive forecast's); empty for a run written before
        intervals existed.
    """
    own = record.metrics if baseline is None else record.naive.get(baseline, {})
    out = {}
    for method, per in (record.intervals.get("methods") or {}).items():
        figures = per.get(_BLOCK_KEYS[baseline]) or {}
        out[method_key(COVERAGE, method)] = as_float(figures.get(COVERAGE))
        out[method_key(WIDTH, method)] = as_float(figures.get(WIDTH))
    if WIDTH in own:
        naive = record.naive.get("last", {}).get(WIDTH, float("nan"))
        out[WIDTH_VS_NAIVE] = _ratio(own[WIDTH], naive)
    return out


@dataclass(frozen=True)
class IntervalSetup:
    """How a study's intervals were made, from the runs' ``intervals`` blocks.

    Attributes
    ----------
    level : float or None
        Nominal coverage in percent (None: no run said).
    method : str
        The runs' interval method, the one ``coverage`` and ``interval_width`` hold
        (``"unrecorded"`` when no run said).
    methods : tuple of str
        Every method scored, ``method`` first.
    calibration : str or None
        The part the intervals were calibrated on (``"val"``).
    calibration_windows : tuple of int
        The distinct numbers of calibration forecasts (one per window length, usually).
    runs, recorded : int
        Runs read, and runs whose metrics hold a coverage.
    mixed : bool
        The runs disagree on level, method or calibration: their coverages do not
        answer the same question.
    """

    level: float | None
    method: str
    methods: tuple
    calibration: str | None
    calibration_windows: tuple
    runs: int
    recorded: int
    mixed: bool = False

    @property
    def others(self) -> tuple:
        """The methods scored beside the runs' own."""
        return tuple(m for m in self.methods if m != self.method)

    @property
    def calibrated_on(self) -> str:
        """Where the intervals were calibrated, in words."""
        return {"val": "the validation part"}.get(self.calibration, str(self.calibration or "unknown data"))


def interval_setup(records) -> IntervalSetup | None:
    """The intervals setup of a study's runs; None when no run recorded intervals.

    Parameters
    ----------
    records : list of forecast.study.runs.RunRecord

    Returns
    -------
    IntervalSetup or None
        Level, method and calibration of the first run with an ``intervals`` block.
    """
    records = list(records)
    recorded = [r for r in records if COVERAGE in r.metrics]
    if not recorded:
        return None
    blocks = [r.intervals for r in recorded if r.intervals]
    first = blocks[0] if blocks else {}
    # A coverage without a block is a hand-written file; its method is then unknown.
    method = first.get("method") or "unrecorded"
    methods = list(dict.fromkeys(m for b in blocks for m in (b.get("methods") or {})))
    methods = [method] + [m for m in methods if m != method]
    setups = {(b.get("level"), b.get("method"), b.get("calibration")) for b in blocks}
    level = first.get("level")
    return IntervalSetup(level=float(level) if level is not None else None, method=method,
                         methods=tuple(methods), calibration=first.get("calibration"),
                         calibration_windows=tuple(sorted({int(b["calibration_windows"]) for b in blocks
                                                           if b.get("calibration_windows") is not None})),
                         runs=len(records), recorded=len(recorded), mixed=len(setups) > 1)


def off_level(coverage: float, level: float | None) -> str | None:
    """``"below"`` or ``"above"`` when ``coverage`` (a share) is more than
    :data:`TOLERANCE_POINTS` from ``level`` (percent); None within it or when undefined."""
    if level is None or not math.isfinite(coverage):
        return None
    points = 100.0 * coverage
    if points < level - TOLERANCE_POINTS:
        return "below"
    if points > level + TOLERANCE_POINTS:
        return "above"
    return None


def versus_naive(coverage: float, ratio: float, naive_coverage: float) -> str | None:
    """Whether an interval is narrower than the naive forecast's at similar coverage.

    Parameters
    ----------
    coverage, naive_coverage : float
        Mean coverages (shares) of the forecast and of the naive forecast.
    ratio : float
        Mean width over the naive forecast's.

    Returns
    -------
    str or None
        ``"narrower"``: ratio below 1 and coverage at most :data:`TOLERANCE_POINTS` under
        naive's (covering more is no fault); ``"covers less"``: narrower only by covering
        less; ``"wider"``; None when a figure is undefined.
    """
    if not (math.isfinite(coverage) and math.isfinite(ratio) and math.isfinite(naive_coverage)):
        return None
    if ratio >= 1.0:
        return WIDER
    if 100.0 * (naive_coverage - coverage) > TOLERANCE_POINTS:
        return COVERS_LESS
    return NARROWER


@dataclass(frozen=True)
class IntervalRow:
    """One summary row's intervals: what the report's Prediction intervals table shows.

    Attributes
    ----------
    seq_len : int
    model : str
        Model, classical baseline, or ``naive_<baseline>``.
    row : forecast.study.summary.SummaryRow
        The row the figures come from (its stats :data:`COVERAGE`, :data:`WIDTH`,
        ``coverage_<method>`` and :data:`WIDTH_VS_NAIVE`).
    recorded : int
        Runs of the row with a coverage (fewer than its seeds when some runs predate intervals).
    off : dict
        ``{method: "below" | "above" | None}`` (:func:`off_level` of the mean coverage).
    versus : str or None
        :func:`versus_naive`; None for the naive forecast itself.
    """

    seq_len: int
    model: str
    row: object
    recorded: int
    off: dict
    versus: str | None

    def coverage(self, method: str | None = None):
        """The :class:`~forecast.study.summary.Stat` of the coverage of ``method`` (None: the
        runs' own method), or None when the row has none."""
        return self.row.stats.get(COVERAGE if method is None else method_key(COVERAGE, method))

    @property
    def width(self):
        """The Stat of the mean interval width (price units)."""
        return self.row.stats.get(WIDTH)

    @property
    def width_vs_naive(self):
        """The Stat of the width over the naive forecast's."""
        return self.row.stats.get(WIDTH_VS_NAIVE)


def interval_rows(rows, setup: IntervalSetup | None) -> tuple:
    """The interval rows of a study's summary rows (empty without intervals).

    Parameters
    ----------
    rows : list of forecast.study.summary.SummaryRow
    setup : IntervalSetup or None

    Returns
    -------
    tuple of IntervalRow
        In the summary's order; rows without a finite mean coverage are left out.
    """
    if setup is None:
        return ()
    out = []
    naive = {r.seq_len: r for r in rows if r.model == NAIVE_LAST}
    for row in rows:
        stat = row.stats.get(COVERAGE)
        if stat is None or not math.isfinite(stat.mean):
            continue
        off = {setup.method: off_level(stat.mean, setup.level)}
        for method in setup.others:
            other = row.stats.get(method_key(COVERAGE, method))
            off[method] = off_level(other.mean, setup.level) if other is not None else None
        ref = naive.get(row.seq_len)
        versus = None
        if row.model != NAIVE_LAST and ref is not None:
            versus = versus_naive(stat.mean, row.mean(WIDTH_VS_NAIVE), ref.mean(COVERAGE))
        out.append(IntervalRow(seq_len=row.seq_len, model=row.model, row=row,
                               recorded=sum(math.isfinite(v) for v in stat.values), off=off, versus=versus))
    return tuple(out)


def _number(x: float):
    return x if math.isfinite(x) else None


def _stat_json(stat) -> dict | None:
    return None if stat is None else {"mean": _number(stat.mean), "std": _number(stat.std)}


def intervals_json(setup: IntervalSetup | None, rows, source: str) -> dict:
    """The ``intervals`` block of ``summary.json``.

    Parameters
    ----------
    setup : IntervalSetup or None
    rows : tuple of IntervalRow
    source : str
        The study's data source (``--data`` spelling).

    Returns
    -------
    dict
        ``recorded`` (False: no run recorded intervals, nothing else but the runs count),
        the setup, the tolerance, and per row its coverage per method (a share, mean and
        std over seeds), width, width over naive's and the two judgements.
    """
    if setup is None:
        return {"recorded": False, "source": source,
                "note": "no run recorded prediction intervals (written before they existed)"}
    return {
        "recorded": True, "source": source, "level": setup.level, "method": setup.method,
        "methods": list(setup.methods), "calibration": setup.calibration,
        "calibration_windows": list(setup.calibration_windows), "runs": setup.runs,
        "runs_with_intervals": setup.recorded, "mixed": setup.mixed,
        "tolerance_points": TOLERANCE_POINTS,
        "coverage": "share of test forecasts whose outcome lies in its interval",
        "rows": [{
            "seq_len": r.seq_len, "model": r.model, "kind": "naive" if is_naive(r.model) else "model",
            "n_seeds": len(r.row.seeds), "runs_with_intervals": r.recorded,
            "tuned": bool(r.row.tuned),
            "coverage": {m: _stat_json(r.coverage(None if m == setup.method else m)) for m in setup.methods},
            "interval_width": _stat_json(r.width), "width_vs_naive": _stat_json(r.width_vs_naive),
            "off_level": r.off, "versus_naive": r.versus,
        } for r in rows],
    }
