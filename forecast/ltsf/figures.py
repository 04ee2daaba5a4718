"""The two figures of the long-horizon benchmark report (matplotlib, Agg backend, PNG).

:func:`plot_mse_vs_horizon` and :func:`plot_mse_vs_lookback` draw test MSE from the
:class:`forecast.ltsf.summary.BenchmarkSummary` alone. matplotlib is imported when a figure
is drawn, not with the module.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from forecast.ltsf.labels import dataset_label, row_label
from forecast.ltsf.published import HORIZONS, MAIN_LOOKBACK
from forecast.ltsf.summary import BASELINE, LINEAR_OURS, MODEL, PUBLISHED, REPEAT_OURS, BenchmarkSummary

__all__ = ["FIG_HORIZON", "FIG_LOOKBACK", "plot_mse_vs_horizon", "plot_mse_vs_lookback"]

#: Figure file names (under ``figures/``).
FIG_HORIZON, FIG_LOOKBACK = "mse_vs_horizon.png", "mse_vs_lookback.png"


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


def plot_mse_vs_horizon(summary: BenchmarkSummary, path) -> Path:
    """Test MSE against horizon, one panel per dataset, at the main lookback.

    Ours solid with a ±1 std band over seeds; Repeat and the linear map dotted;
    published lookback-96 models (and the published Repeat) dashed and lighter.
    """
    from forecast.study.figures import save_figure
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
    return save_figure(fig, path)


#: Repeat is left above a lookback panel when it exceeds the other curves' top this many times.
REPEAT_OFF_SCALE = 1.5


def _keep_repeat_off_scale(ax, summary, dataset, horizon, xs) -> None:
    """Zoom on the models when Repeat (flat in the lookback) is far above them, and say so:
    on ETTh1 its 1.3 would squash curves that differ in the third decimal into one line."""
    others = [m for group, names in ((MODEL, summary.models), (BASELINE, (LINEAR_OURS,)))
              for name in names for m in _series(summary, dataset, horizon, group, name, xs, True)[1]]
    repeat = _series(summary, dataset, horizon, BASELINE, REPEAT_OURS, xs, True)[1]
    if not others or not repeat.size or repeat.max() <= REPEAT_OFF_SCALE * max(others):
        return
    lo, hi = min(others), max(others)
    pad = 0.1 * (hi - lo) or 0.02 * hi
    ax.set_ylim(lo - pad, hi + pad)
    ax.text(0.02, 0.97, f"Repeat {repeat.mean():.3f}, above the panel", transform=ax.transAxes,
            fontsize=8, va="top", color="0.3")


def plot_mse_vs_lookback(summary: BenchmarkSummary, path) -> Path:
    """Test MSE against lookback: one panel per dataset (rows) and horizon (columns)."""
    from forecast.study.figures import save_figure
    plt = _plt()
    rows, cols = len(summary.datasets), len(summary.horizons)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols + 2.6, 3.3 * rows + 0.6), squeeze=False,
                             layout="constrained")
    xs = list(summary.lookbacks)
    for i, dataset in enumerate(summary.datasets):
        for j, horizon in enumerate(summary.horizons):
            ax = axes[i, j]
            _draw_ours(ax, summary, dataset, horizon, xs, by_lookback=True)
            _keep_repeat_off_scale(ax, summary, dataset, horizon, xs)
            ax.set_title(f"{dataset_label(dataset)}, H = {horizon}", fontsize=10)
            if i == rows - 1:
                ax.set_xlabel("lookback L (input steps)")
            if j == 0:
                ax.set_ylabel("test MSE, standardised, ↓ better")
            ax.set_xticks(xs)
            ax.grid(True, alpha=0.3)
    _legend(fig, axes)
    fig.suptitle("Test MSE against lookback (band ±1 std over seeds)", fontsize=11)
    return save_figure(fig, path)
