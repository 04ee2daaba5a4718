"""Figures of a comparison study (matplotlib, Agg backend, PNG).

Each function draws one figure from the study summary (the figure data of one window,
:class:`forecast.study.figure_data.WindowFigures`, or the summary rows,
:class:`forecast.study.summary.SummaryRow`) and writes it to a path. They compute no
statistics: every mean, band and error is the summary's. They are meant for people:
every axis says what it shows and in which unit, and each model keeps the same colour
in every figure.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted in workers and CI
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from forecast.metrics import HIGHER_IS_BETTER, METRIC_LABELS  # noqa: E402
from forecast.study.names import is_naive  # noqa: E402

__all__ = ["COLORS", "model_color", "display_name", "save_figure",
           "plot_convergence", "plot_predictions", "plot_fusion_weight", "plot_errors",
           "plot_metrics"]

COLORS = {"mamba": "#1f77b4", "mingru": "#ff7f0e", "hybrid": "#2ca02c", "gru": "#d62728",
          "arima": "#9467bd", "ets": "#17becf", "theta": "#bcbd22",
          "naive_last": "#555555", "naive_drift": "#8c564b"}
_EXTRA = ["#9467bd", "#e377c2", "#17becf", "#bcbd22"]
DISPLAY = {"mamba": "Mamba", "mingru": "minGRU", "hybrid": "Hybrid (Mamba+minGRU)",
           "gru": "GRU", "arima": "ARIMA (auto)", "ets": "ETS (auto)", "theta": "Theta (auto)",
           "naive_last": "naive: tomorrow = today",
           "naive_drift": "naive: drift"}
FIGSIZE_WIDE = (11, 6)
_NAIVE_STYLE = {"naive_last": "--", "naive_drift": ":"}


def model_color(name: str) -> str:
    """A fixed colour per model so figures can be read side by side."""
    if name in COLORS:
        return COLORS[name]
    return _EXTRA[sum(map(ord, name)) % len(_EXTRA)]


def display_name(name: str) -> str:
    """Human name of a model or baseline."""
    if name in DISPLAY:
        return DISPLAY[name]
    return name.replace("naive_", "naive: ") if is_naive(name) else name


def metric_label(metric: str, unit: str) -> str:
    """Axis label of a metric with its unit and which direction is better."""
    arrow = "↑ better" if metric in HIGHER_IS_BETTER else "↓ better"
    return f"{METRIC_LABELS.get(metric, metric).format(unit=unit)}, {arrow}"


def save_figure(fig, path) -> Path:
    """Write ``fig`` to the PNG ``path`` (its folder created), close it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_convergence(window, path, subtitle: str = ""):
    """Training and validation loss per epoch: mean over seeds, band from min to max.

    Parameters
    ----------
    window : forecast.study.figure_data.WindowFigures
        The figure data of one window length.
    path : str or Path
        Output PNG.
    subtitle : str
        Appended to the title (e.g. the window length).

    Returns
    -------
    Path or None
        None (nothing drawn) when no run logged a loss: a study of classical baselines
        only, which are fitted rather than trained by epochs.
    """
    if not any(window.losses.values()):
        return None
    fig, axes = plt.subplots(1, 2, figsize=FIGSIZE_WIDE, sharex=True, layout="constrained")
    for model, bands in window.losses.items():
        for ax, key in zip(axes, ("train_loss", "val_loss")):
            band = bands.get(key)
            if band is None:
                continue
            mean, lo, hi = band.mean, band.lo, band.hi
            epochs = np.arange(1, len(mean) + 1)
            color = model_color(model)
            full = band.count == band.runs
            # Solid while every seed is still training, dashed once some stopped early:
            # there the mean follows fewer seeds and may jump.
            last_full = int(np.nonzero(full)[0].max()) + 1 if full.any() else 0
            ax.plot(epochs[:last_full], mean[:last_full], color=color, lw=2,
                    label=display_name(model))
            if last_full < len(mean):
                start = max(0, last_full - 1)
                ax.plot(epochs[start:], mean[start:], color=color, lw=1.4, ls="--")
            if band.runs > 1:
                ax.fill_between(epochs, lo, hi, color=color, alpha=0.18, lw=0)
    for ax, name in zip(axes, ("Training loss", "Validation loss")):
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss: MSE on scaled targets (log scale)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = axes[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="grey", lw=1.4, ls="--"))
    labels.append("dashed: some seeds stopped early")
    axes[0].legend(handles, labels, loc="upper right", fontsize=9)
    fig.suptitle(f"Convergence: mean over {window.n_seeds} seed(s), shaded band = min–max over "
                 f"seeds{subtitle}", fontsize=12)
    return save_figure(fig, path)


def plot_predictions(window, path, unit: str = "USD", zoom_days: int = 60,
                     subtitle: str = "") -> Path:
    """Test-period predictions (seed mean per model) against the actual price.

    The top panel shows the whole test period with the zoom window shaded; the bottom
    panel zooms into the last ``zoom_days`` test days, where the naive forecast is
    drawn as well. A separate zoom panel is used instead of an inset drawn over the
    top panel, because a trending price leaves no corner free for an inset.

    Parameters
    ----------
    window : forecast.study.figure_data.WindowFigures
        The figure data of one window length.
    path : str or Path
        Output PNG.
    unit : str
        Price currency.
    zoom_days : int
        Test days in the zoom panel.
    subtitle : str
        Appended to the title.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 8.5), layout="constrained",
                                      gridspec_kw={"height_ratios": [3, 2]})
    actual, means = window.actual, window.predictions
    dates = actual["date"]
    zoom_start = dates.iloc[max(0, len(dates) - zoom_days)]
    for ax, zoomed in ((top, False), (bottom, True)):
        sel = (dates >= zoom_start) if zoomed else slice(None)
        ax.plot(dates[sel], actual["actual"][sel], color="black", lw=2.2 if zoomed else 1.6,
                label="actual price", zorder=5)
        if zoomed:
            ax.plot(dates[sel], actual["naive"][sel], color=model_color("naive_last"), lw=1.2,
                    ls=":", label=display_name("naive_last"), zorder=4)
        for model, frame in means.items():
            fsel = (frame["date"] >= zoom_start) if zoomed else slice(None)
            ax.plot(frame["date"][fsel], frame["predicted"][fsel], color=model_color(model),
                    lw=1.5 if zoomed else 1.1, alpha=0.9, label=display_name(model))
        ax.set_ylabel(f"price ({unit})")
        ax.grid(True, alpha=0.3)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    top.axvspan(zoom_start, dates.iloc[-1], color="gold", alpha=0.18, lw=0,
                label=f"zoom: last {min(zoom_days, len(dates))} days")
    top.set_title(f"Test period: {_forecast_name(window.horizon)} (mean of {window.n_seeds} seed(s)) vs "
                  f"actual price{subtitle}")
    bottom.set_title(f"Zoom on the last {min(zoom_days, len(dates))} test days")
    bottom.set_xlabel("date")
    # One legend outside the plotting area: prices trend, so no corner stays empty.
    handles, labels = bottom.get_legend_handles_labels()
    zoom_handle = top.get_legend_handles_labels()[0][-1]
    fig.legend(handles + [zoom_handle], labels + [zoom_handle.get_label()],
               loc="outside right upper", fontsize=9, frameon=False)
    return save_figure(fig, path)


def _forecast_name(horizon: int) -> str:
    return "next-day forecast" if horizon == 1 else f"{horizon}-day-ahead forecast"


def plot_fusion_weight(window, path, subtitle: str = ""):
    """The hybrid's fusion weight per epoch, one line per seed.

    Parameters
    ----------
    window : forecast.study.figure_data.WindowFigures
        The figure data of one window length.
    path : str or Path
        Output PNG.
    subtitle : str
        Appended to the title.

    Returns
    -------
    Path or None
        ``None`` (and no file) when no hybrid run logged its weight.
    """
    if not window.fusion:
        return None
    fusion = window.fusion_kind
    fig, ax = plt.subplots(figsize=(8.5, 5), layout="constrained")
    cmap = plt.get_cmap("viridis")
    for i, (seed, w) in enumerate(window.fusion):
        color = cmap(i / max(1, len(window.fusion) - 1) * 0.85)
        ax.plot(np.arange(1, len(w) + 1), w, marker="o", ms=3, lw=1.6, color=color,
                label=f"seed {seed}")
    ax.axhline(0.5, color="grey", ls="--", lw=1, label="start (α = 0: equal weights)")
    what = {"scalar": "σ(α)", "channel": "σ(α), mean over channels",
            "gate": "gate value, mean over batch, steps and channels"}.get(fusion, "σ(α)")
    ax.set_ylabel(f"weight of the Mamba branch: {what}")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True, alpha=0.3)
    note = "1 = Mamba only, 0 = minGRU only"
    values = np.concatenate([w for _, w in window.fusion] + [np.array([0.5])])
    values = values[np.isfinite(values)]
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 0.1:
        # The weight often moves by less than 0.01: on the full 0-1 axis every seed
        # would look like the flat start line.
        pad = max(0.005, 0.25 * (hi - lo))
        ax.set_ylim(lo - pad, hi + pad)
        note += f"; axis zoomed to {lo - pad:.3f}–{hi + pad:.3f}"
    else:
        ax.set_ylim(0, 1)
    ax.text(0.99, 0.02, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=9,
            color="dimgrey")
    ax.set_title(f"Hybrid fusion weight during training ({fusion} fusion){subtitle}")
    ax.legend(loc="upper left", fontsize=9)
    return save_figure(fig, path)


def plot_errors(window, path, unit: str = "USD", subtitle: str = "") -> Path:
    """Distribution of test errors (predicted − actual) per model, naive included.

    Errors of every seed are pooled per model; the naive forecast is the same for
    every seed and is drawn once.

    Parameters
    ----------
    window : forecast.study.figure_data.WindowFigures
        The figure data of one window length.
    path : str or Path
        Output PNG.
    unit : str
        Price currency.
    subtitle : str
        Appended to the title.
    """
    names = [sample.name for sample in window.errors]
    data = [sample.errors for sample in window.errors]
    fig, ax = plt.subplots(figsize=(max(7.5, 1.9 * len(names) + 2), 5.5), layout="constrained")
    parts = ax.violinplot(data, showextrema=False, widths=0.85)
    for body, name in zip(parts["bodies"], names):
        body.set_facecolor(model_color(name))
        body.set_alpha(0.35)
    ax.boxplot(data, widths=0.22, showfliers=False, medianprops={"color": "black"})
    ax.axhline(0, color="black", lw=0.8, ls="--")
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels([display_name(n).replace(" (", "\n(").replace(": ", ":\n")
                        for n in names], fontsize=9)
    for i, sample in enumerate(window.errors, start=1):
        ax.annotate(f"MAE {sample.mae:.2f}", (i, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(0, -12), textcoords="offset points", ha="center", fontsize=8,
                    color="dimgrey")
    ax.set_ylabel(f"forecast error: predicted − actual ({unit})")
    ax.grid(True, axis="y", alpha=0.3)
    ax.set_title(f"Test errors per model ({window.n_seeds} seed(s) pooled; box = quartiles, "
                 f"whiskers = 1.5 IQR){subtitle}", fontsize=11)
    return save_figure(fig, path)


def plot_metrics(rows, path, metrics, unit: str = "USD", subtitle: str = "") -> Path:
    """Test metrics per model: bars at the mean, error bars ± one std over seeds.

    Naive baselines are drawn as horizontal reference lines.

    Parameters
    ----------
    rows : list of SummaryRow
        The summary rows of one window length.
    path : str or Path
        Output PNG.
    metrics : list of str
        One panel each.
    unit : str
        Price currency.
    subtitle : str
        Appended to the title.
    """
    models = [r for r in rows if r.kind == "model"]
    naive = [r for r in rows if r.kind == "naive"]
    ncols = 4
    nrows = math.ceil((len(metrics) + 1) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.4 * nrows), squeeze=False,
                             layout="constrained")
    flat = axes.ravel()
    x = np.arange(len(models))
    for ax, metric in zip(flat, metrics):
        means = [r.mean(metric) for r in models]
        stds = [r.std(metric) for r in models]
        bars = ax.bar(x, means, yerr=stds, capsize=4, color=[model_color(r.model) for r in models],
                      alpha=0.85, error_kw={"lw": 1.2})
        for bar, row in zip(bars, models):
            if row.classical:       # one run: hatched, so a missing error bar is not read as "no spread"
                bar.set_hatch("//")
        for base in naive:
            value = base.mean(metric)
            if math.isfinite(value):
                ax.axhline(value, color=model_color(base.model), ls=_NAIVE_STYLE.get(base.model, "--"),
                           lw=1.6)
        ax.set_xticks(x)
        ax.set_xticklabels([r.model for r in models], fontsize=9)
        ax.set_title(metric_label(metric, unit), fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        _fit_ylim(ax, means, stds, [b.mean(metric) for b in naive])
    legend_ax = flat[len(metrics)]
    for extra in flat[len(metrics):]:
        extra.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=model_color(r.model), alpha=0.85,
                             hatch="//" if r.classical else None)
               for r in models]
    handles += [plt.Line2D([], [], color=model_color(b.model), ls=_NAIVE_STYLE.get(b.model, "--"))
                for b in naive]
    labels = [display_name(r.model) for r in models] + [display_name(b.model) for b in naive]
    title = "bars: mean ± std over seeds\nlines: naive forecasts"
    if any(r.classical for r in models):
        title = "bars: mean ± std over seeds\n(hatched: classical, one run)\nlines: naive forecasts"
    legend_ax.legend(handles, labels, loc="upper center", fontsize=9, title=title)
    if "direction_accuracy" in metrics and any(b.model == "naive_last" for b in naive):
        legend_ax.text(0.5, 0.02, "'tomorrow = today' predicts no move,\nso its direction "
                       "accuracy is undefined\n(no line drawn)", transform=legend_ax.transAxes,
                       ha="center", va="bottom", fontsize=8, color="dimgrey")
    fig.suptitle(f"Test metrics per model{subtitle}", fontsize=12)
    return save_figure(fig, path)


def _fit_ylim(ax, means, stds, refs) -> None:
    """Zoom the value axis onto the data when all values sit far from zero.

    Bars normally start at 0, but metrics such as R² or direction accuracy can lie in
    a narrow band (0.49-0.53) where bars from 0 would all look equal.
    """
    vals = [m + s for m, s in zip(means, stds)] + [m - s for m, s in zip(means, stds)]
    vals += [r for r in refs]
    vals = [v for v in vals if math.isfinite(v)]
    if not vals:
        return
    lo, hi = min(vals), max(vals)
    span = hi - lo
    if lo > 0 and span < 0.5 * hi:
        ax.set_ylim(lo - 0.25 * span - 1e-12, hi + 0.25 * span + 1e-12)
    elif hi < 0 and span < 0.5 * abs(lo):
        ax.set_ylim(lo - 0.25 * span - 1e-12, hi + 0.25 * span + 1e-12)
