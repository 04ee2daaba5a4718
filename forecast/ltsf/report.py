"""The report of a long-horizon benchmark study (``compare --protocol ltsf``): the entry point.

Data flows one way::

    run folders --load_runs--> RunResult list --summarize_benchmark--> BenchmarkSummary
        --> render_markdown (benchmark.md), write_benchmark_csv, write_benchmark_json,
            plot_mse_vs_horizon, plot_mse_vs_lookback (figures/*.png)

The summary is computed once and frozen; the renderers read nothing else, so every
number and every sentence of the report comes from the run files through it. Nothing is
concluded in advance: the answer paragraph is assembled from the summary's verdicts.

One job per module:

* :mod:`forecast.ltsf.runs` - the study folder read back (:func:`load_runs`, ``study.json``);
* :mod:`forecast.ltsf.summary` - :func:`summarize_benchmark` -> :class:`BenchmarkSummary`
  (entries, Diebold-Mariano tests, verdicts, standings);
* :mod:`forecast.ltsf.labels` - the names of datasets and forecasts in tables and legends;
* :mod:`forecast.ltsf.markdown` - :func:`render_markdown`;
* :mod:`forecast.ltsf.figures` - the two figures;
* this module - :func:`build_benchmark_report`, which runs them, and the CSV and JSON writers.

All figures are on the standardised scale of the protocol.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from forecast.errors import UserInputError
from forecast.fileio import atomic_write_json, atomic_write_text
from forecast.ltsf.figures import FIG_HORIZON, FIG_LOOKBACK, plot_mse_vs_horizon, plot_mse_vs_lookback
from forecast.ltsf.labels import dataset_label
from forecast.ltsf.markdown import render_markdown
from forecast.ltsf.published import HORIZONS
from forecast.ltsf.runs import load_context, load_runs
from forecast.ltsf.summary import BASELINE, DM_NOTE, MODEL, BenchmarkSummary, summarize_benchmark

__all__ = ["benchmark_frame", "write_benchmark_csv", "write_benchmark_json", "build_benchmark_report"]

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
    summary = summarize_benchmark(runs, skipped, load_context(out_dir, context))
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
