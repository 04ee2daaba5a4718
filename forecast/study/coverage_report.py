"""The reports' section on prediction intervals (Markdown lines).

Renders what :mod:`forecast.study.coverage` computed into the study summary: per model
and naive baseline, the coverage of the runs' interval method at its nominal level, the
other method's coverage beside it, the mean width and the width relative to the naive
forecast's, with the coverages off the level by more than
:data:`forecast.study.coverage.TOLERANCE_POINTS` flagged. One source's report gets
:func:`interval_lines`; the cross-source page gets :func:`cross_interval_lines`, the same
table with one row per (source, model). Nothing is judged here.
"""
from __future__ import annotations

import math

from forecast.study.coverage import COVERS_LESS, NAIVE_LAST, NARROWER, TOLERANCE_POINTS, WIDER
from forecast.study.figures import display_name
from forecast.study.names import is_naive
from forecast.study.report import TUNED_MARK, fmt

__all__ = ["interval_lines", "cross_interval_lines", "percent", "NO_INTERVALS"]

#: What a section says when no run recorded intervals.
NO_INTERVALS = ("No prediction intervals were recorded: these runs were written before intervals "
                "existed (their metrics.json has no coverage). Train them again to get them.")
_VERSUS = {NARROWER: "yes", WIDER: "no (wider)", COVERS_LESS: "no (narrower, but covers less)", None: "–"}


def percent(share: float) -> str:
    """A coverage (a share) in percent with one decimal, as the tables print it; ``–``
    when undefined."""
    if share is None or not math.isfinite(share):
        return "–"
    return f"{100.0 * share:.1f}"


def _spread(irow) -> bool:
    """Whether a row shows a seed spread: trained models with several seeds that recorded
    intervals (a naive forecast or a classical baseline has one value)."""
    row = irow.row
    return not is_naive(row.model) and not row.classical and irow.recorded > 1


def _stat(stat, irow, show) -> str:
    """A Stat as ``mean`` or ``mean ± std`` (see :func:`_spread`), ``show`` formatting the mean."""
    if stat is None:
        return "–"
    cell = show(stat.mean)
    if _spread(irow) and math.isfinite(stat.std):
        cell += f" ± {show(stat.std) if show is percent else fmt(stat.std, 2)}"
    return cell


def _coverage_cell(irow, setup, method: str) -> str:
    stat = irow.coverage(None if method == setup.method else method)
    cell = _stat(stat, irow, percent)
    flag = irow.off.get(method)
    return f"{cell} *{flag}*" if flag else cell


def _label(irow) -> str:
    label = display_name(irow.model) + (f" {TUNED_MARK}" if irow.row.tuned else "")
    if irow.recorded < len(irow.row.seeds):
        label += f" ({irow.recorded} of {len(irow.row.seeds)} runs)"
    return label


def _cells(irow, setup, methods) -> list:
    """The cells of one row: coverage per method, width, width / naive, the answer."""
    cells = [_coverage_cell(irow, setup, m) if m in setup.methods else "–" for m in methods]
    cells.append(_stat(irow.width, irow, fmt))
    # Three decimals, fixed: the "narrower" answer turns on the ratio against 1.
    cells.append(_stat(irow.width_vs_naive, irow, lambda x: f"{x:.3f}" if math.isfinite(x) else "–"))
    cells.append("reference" if irow.model == NAIVE_LAST else _VERSUS[irow.versus])
    return cells


def _head(methods, setup_method: str, unit: str) -> list:
    return ([f"coverage {m} (%)" + (" ←" if m == setup_method else "") for m in methods]
            + [f"width ({unit})", "width / naive width", "narrower than naive at similar coverage"])


def _level(setup) -> str:
    return f"{setup.level:g} %" if setup.level is not None else "an unrecorded level"


def _explanation(setup, unit: str, windows: bool = True) -> str:
    """The setup in words: level, method, calibration, the columns and the rule."""
    others = ", ".join(setup.others)
    level = _level(setup)
    windows = ", ".join(map(str, setup.calibration_windows)) if windows else ""
    return (f"Each test forecast has a {level} prediction interval by the runs' method, **{setup.method}** "
            f"(`--interval {setup.method}`, column marked ←), calibrated on the errors of "
            f"{setup.calibrated_on}" + (f" ({windows} forecasts)" if windows else "")
            + ", which the model was not trained on"
            + (" (adaptive: then also on each test outcome once it is known, never before)"
               if setup.method == "adaptive" else "")
            + (f"; {others} is scored beside it on the same forecasts" if others else "")
            + ". Coverage: share of the test forecasts whose outcome lies in its interval, in percent; "
            "mean over seeds, ± the sample standard deviation where a model has several seeds (naive "
            "forecasts and classical baselines have one value). "
            f"*below* / *above*: more than {TOLERANCE_POINTS:g} points from {level}. "
            f"Width: mean upper − lower in {unit}. An interval is worth something only if it is "
            "narrower than the naive forecast's (tomorrow = today) at similar coverage: width / naive "
            f"width below 1 with a coverage at most {TOLERANCE_POINTS:g} points under naive's.")


def _notes(setup) -> list:
    lines = []
    if setup.mixed:
        lines += ["", "**Warning:** the runs do not share one level, method and calibration; the rows "
                      "mix them (the first run's are named above)."]
    missing = setup.runs - setup.recorded
    if missing:
        lines += ["", f"{missing} of {setup.runs} runs recorded no intervals (written before intervals "
                      "existed); a row marked \"k of n runs\" averages the runs that did."]
    return lines


def interval_lines(summary) -> list:
    """``## Prediction intervals`` of one source's report.

    Parameters
    ----------
    summary : forecast.study.summary.StudySummary

    Returns
    -------
    list of str
        Markdown lines: the setup in words, then per window length one table, a row per
        model and naive baseline; one sentence when no run recorded intervals.
    """
    lines = ["## Prediction intervals", ""]
    setup = summary.intervals
    if setup is None or not summary.interval_rows:
        return lines + [NO_INTERVALS, ""]
    lines.append(_explanation(setup, summary.unit))
    lines += _notes(setup)
    several = len(summary.seq_lens) > 1
    head = ["model"] + _head(setup.methods, setup.method, summary.unit)
    for seq_len in summary.seq_lens:
        here = [r for r in summary.interval_rows if r.seq_len == seq_len]
        if not here:
            continue
        lines += [""] + ([f"### Window {seq_len} days", ""] if several else [])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join([_label(r)] + _cells(r, setup, setup.methods)) + " |" for r in here]
    return lines + [""]


def cross_interval_lines(sources) -> list:
    """``## Prediction intervals`` of the cross-source page: one table per window length,
    a row per (source, model or naive baseline), as in each source's report.

    Parameters
    ----------
    sources : list of forecast.study.cross.SourceSummary

    Returns
    -------
    list of str
    """
    lines = ["", "## Prediction intervals", ""]
    with_intervals = [s for s in sources if s.summary.intervals is not None and s.summary.interval_rows]
    if not with_intervals:
        return lines + [NO_INTERVALS]
    setups = {(s.summary.intervals.level, s.summary.intervals.method, s.summary.intervals.calibration)
              for s in with_intervals}
    first = with_intervals[0].summary.intervals
    if len(setups) == 1:
        # The number of calibration forecasts differs per source: each source's report has it.
        lines.append(_explanation(first, "each source's currency", windows=False))
    else:
        lines.append("**Warning:** the sources do not share one level, method and calibration: "
                     + "; ".join(f"{s.source}: {_level(s.summary.intervals)} {s.summary.intervals.method}"
                                 for s in with_intervals) + ". The column marked ← is each source's method.")
    without = [s.source for s in sources if s not in with_intervals]
    if without:
        lines += ["", f"No intervals were recorded on {', '.join(without)} (runs written before they existed)."]
    methods = list(dict.fromkeys(m for s in with_intervals for m in s.summary.intervals.methods))
    head = ["source", "model"] + _head(methods, first.method, "source's currency")
    seq_lens = sorted({r.seq_len for s in with_intervals for r in s.summary.interval_rows})
    for seq_len in seq_lens:
        lines += [""] + ([f"### Window {seq_len} days", ""] if len(seq_lens) > 1 else [])
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for s in with_intervals:
            setup = s.summary.intervals
            for r in (r for r in s.summary.interval_rows if r.seq_len == seq_len):
                lines.append("| " + " | ".join([s.source, _label(r)] + _cells(r, setup, methods)) + " |")
    return lines
