"""The figure of a walk-forward backtest (matplotlib, Agg, PNG).

Top: each fold's test MAE of the model beside the naive and drift forecasts, with the
model's MAE relative to naive written over its bar. Bottom: the model's absolute error
minus the naive forecast's, for the one-step forecasts over time (20-day rolling mean
within each fold), with the fold boundaries, so a reader sees *when* a model gains or
loses, not only by how much.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from forecast.study.figures import display_name, model_color, save_figure  # noqa: E402

__all__ = ["ROLLING_DAYS", "plot_backtest"]

#: Window of the rolling mean of the absolute error in the lower panel.
ROLLING_DAYS = 20


def _fold_label(fold: dict) -> str:
    return f"fold {fold['fold']}\n{fold['first_date']}\nto {fold['last_date']}"


def plot_backtest(predictions: pd.DataFrame, summary: dict, path, unit: str = "USD") -> Path:
    """Draw the backtest figure.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``predictions.csv`` of the backtest (``date, fold, actual, predicted, naive``, and
        ``step`` for horizon > 1).
    summary : dict
        ``backtest.json``'s content (``folds`` with their metrics, ``model``, ``refit``).
    path : str or Path
        Output PNG.
    unit : str
        Price currency.
    """
    model = summary["model"]
    folds = summary["folds"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8.5), layout="constrained",
                                      gridspec_kw={"height_ratios": [1, 1.1]})
    x = np.arange(len(folds))
    width = 0.27
    series = (("model", model), ("naive", "naive_last"), ("drift", "naive_drift"))
    for offset, (key, name) in zip((-width, 0.0, width), series):
        values = [f["metrics"][key]["mae"] for f in folds]
        values = [np.nan if v is None else v for v in values]
        bars = top.bar(x + offset, values, width, color=model_color(name), alpha=0.85,
                       label=display_name(name))
        if key == "model":
            for bar, f in zip(bars, folds):
                rel = f["metrics"]["model"].get("rel_mae")
                if rel is not None and np.isfinite(bar.get_height()):
                    top.annotate(f"{rel:.3f}×", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                                 xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
    top.set_xticks(x)
    top.set_xticklabels([_fold_label(f) for f in folds], fontsize=8)
    top.set_ylabel(f"test MAE ({unit}), ↓ better")
    top.grid(True, axis="y", alpha=0.3)
    heights = [b.get_height() for b in top.patches if np.isfinite(b.get_height())]
    if heights:
        top.set_ylim(0, 1.35 * max(heights))     # room for the legend above the bars
    top.legend(fontsize=9, loc="upper center", ncol=3, title="number over the model's bar: its MAE / "
               "naive MAE (below 1: beats naive in that fold)", title_fontsize=8)
    top.set_title("Error per fold", fontsize=11)

    step1 = predictions[predictions["step"] == 1] if "step" in predictions.columns else predictions
    dates = pd.to_datetime(step1["date"])
    # The model's and the naive errors usually overlap to the eye; their difference shows
    # when the model gains or loses. Rolled within each fold: a fold has its own model.
    gain = (step1["predicted"] - step1["actual"]).abs() - (step1["naive"] - step1["actual"]).abs()
    rolling = gain.groupby(step1["fold"]).transform(lambda g: g.rolling(ROLLING_DAYS, min_periods=1).mean())
    for number, part in rolling.groupby(step1["fold"], sort=True):
        when = dates[part.index]
        bottom.plot(when, part, color=model_color(model), lw=1.4)
        bottom.fill_between(when, part, 0, where=part < 0, color="tab:green", alpha=0.3, lw=0,
                            interpolate=True)
        bottom.fill_between(when, part, 0, where=part > 0, color="tab:red", alpha=0.25, lw=0,
                            interpolate=True)
        bottom.axvline(when.min(), color="grey", ls="--", lw=0.8)
        bottom.annotate(f"fold {number}", (when.min(), 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -12), textcoords="offset points", fontsize=8, color="dimgrey")
    bottom.axhline(0, color="black", lw=0.8)
    bottom.set_ylabel(f"|model error| − |naive error| ({unit}),\n{ROLLING_DAYS}-day rolling mean within a fold")
    bottom.grid(True, alpha=0.3)
    bottom.text(0.99, 0.02, "below 0 (green): the model beats naive; above 0 (red): naive wins",
                transform=bottom.transAxes, ha="right", va="bottom", fontsize=8, color="dimgrey")
    bottom.set_title(f"1-day forecasts of {display_name(model)} against tomorrow = today over time "
                     "(dashed lines: a fold starts, the model is retrained on its past)", fontsize=10)
    how = {"full": "retrained from scratch before each fold",
           "finetune": f"fine-tuned {summary.get('finetune_epochs')} epoch(s) before each later fold"}
    fig.suptitle(f"Walk-forward backtest of {display_name(model)} on {summary['data'].get('spec', '?')}: "
                 f"{len(folds)} folds, {how.get(summary['refit'], summary['refit'])}", fontsize=12)
    return save_figure(fig, path)
