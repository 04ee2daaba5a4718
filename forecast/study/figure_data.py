"""The data of a comparison study's figures, computed from the runs of one window length.

:func:`window_figures` reduces the runs of one window length to a :class:`WindowFigures`:
per-epoch loss bands over seeds (:class:`Band`), the test predictions averaged over seeds,
the hybrid's fusion weight per epoch and the pooled test errors (:class:`ErrorSample`).
The summary (:func:`forecast.study.summary.summarize`) holds one per window length; the
figures (:mod:`forecast.study.figures`) draw them and compute nothing.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.study.names import NAIVE_PREFIX
from models.names import HYBRID

__all__ = ["Band", "ErrorSample", "WindowFigures", "window_figures"]


@dataclass(frozen=True, eq=False)
class Band:
    """A per-epoch quantity over seeds: mean, min, max and how many runs reached each epoch.

    ``runs`` is the number of runs behind it; where ``count < runs`` some stopped early.
    """

    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    count: np.ndarray
    runs: int


def _band(series_list) -> Band:
    """The band of runs of different lengths.

    Early stopping ends runs at different epochs. At epoch ``e`` only the runs that
    reached ``e`` contribute, so a run that stopped early neither drags the mean down
    nor ends the line; the count tells where the mean covers fewer runs.
    """
    n = max(len(s) for s in series_list)
    table = np.full((len(series_list), n), np.nan)
    for i, s in enumerate(series_list):
        table[i, :len(s)] = s
    # A diverged run logs NaN losses; an epoch where every run did so stays NaN (a gap
    # in the line) without a warning per column.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return Band(mean=np.nanmean(table, axis=0), lo=np.nanmin(table, axis=0),
                    hi=np.nanmax(table, axis=0), count=np.sum(np.isfinite(table), axis=0),
                    runs=len(series_list))


@dataclass(frozen=True, eq=False)
class ErrorSample:
    """The pooled finite test errors (predicted - actual) of one model or baseline."""

    name: str
    errors: np.ndarray
    mae: float

    @classmethod
    def of(cls, name: str, errors) -> "ErrorSample":
        """The sample of ``errors`` with the non-finite ones (diverged forecasts) left out."""
        errors = np.asarray(errors, dtype=float)
        errors = errors[np.isfinite(errors)]
        return cls(name, errors, float(np.mean(np.abs(errors))) if errors.size else float("nan"))


@dataclass(frozen=True, eq=False)
class WindowFigures:
    """What the figures of one window length draw, computed from its runs.

    Attributes
    ----------
    n_seeds : int
        Most runs of any one model.
    horizon : int
        Days ahead of the forecasts.
    losses : dict
        ``{model: {"train_loss": Band, "val_loss": Band}}`` (a key is absent when no run
        logged it).
    predictions : dict
        ``{model: DataFrame}`` of ``date, actual, predicted, naive``: the mean over seeds
        per date (for horizon > 1, the last step only).
    actual : pandas.DataFrame
        ``date, actual, naive`` of the test period.
    fusion_kind : str or None
        The hybrid's fusion (``scalar``, ``channel``, ``gate``); None without a logged weight.
    fusion : tuple of (int, numpy.ndarray)
        ``(seed, Mamba weight per epoch)`` of every hybrid run that logged its weight.
    errors : tuple of ErrorSample
        Per model, then the naive forecast "tomorrow = today" (the same for every seed,
        so taken once).
    """

    n_seeds: int
    horizon: int
    losses: dict
    predictions: dict
    actual: pd.DataFrame
    fusion_kind: str | None
    fusion: tuple
    errors: tuple


def _by_model(records) -> dict:
    groups: dict = {}
    for rec in records:
        groups.setdefault(rec.model, []).append(rec)
    return groups


def _seed_mean_predictions(runs) -> pd.DataFrame:
    """Average the test predictions of several seeds of one model, date by date.

    For horizon > 1 only the last step (the ``horizon``-day-ahead forecast) is kept,
    so every date appears once.
    """
    frames = []
    for run in runs:
        frame = run.predictions
        if "step" in frame.columns:
            frame = frame[frame["step"] == frame["step"].max()]
        frames.append(frame[["date", "actual", "predicted", "naive"]])
    stacked = pd.concat(frames, ignore_index=True)
    return stacked.groupby("date", sort=True).mean().reset_index()


def _fusion_series(record) -> np.ndarray:
    """The hybrid's Mamba weight per epoch.

    :mod:`forecast.train` logs it under ``alpha`` as the weight itself, ``sigmoid(alpha)``
    (mean over channels for channel fusion), not the raw parameter.
    """
    key = "fusion_weight" if any("fusion_weight" in h for h in record.history) else "alpha"
    return record.series(key)


def window_figures(records, hybrid: str = HYBRID) -> WindowFigures:
    """The figure data of the runs of one window length.

    Parameters
    ----------
    records : list of RunRecord
        The runs of one window length (:func:`forecast.study.runs.load_study`).
    hybrid : str
        The model whose fusion weight is drawn.

    Returns
    -------
    WindowFigures
    """
    groups = _by_model(records)
    losses = {}
    for model, runs in groups.items():
        series = {key: [r.series(key) for r in runs if len(r.history)]
                  for key in ("train_loss", "val_loss")}
        losses[model] = {key: _band(s) for key, s in series.items() if s}
    predictions = {model: _seed_mean_predictions(runs) for model, runs in groups.items()}
    weighted = [(r, _fusion_series(r)) for r in groups.get(hybrid, [])]
    weighted = [(r, w) for r, w in weighted if np.isfinite(w).any()]
    errors = [ErrorSample.of(model, np.concatenate(
        [(r.predictions["predicted"] - r.predictions["actual"]).to_numpy() for r in runs]))
        for model, runs in groups.items()]
    first = records[0].predictions
    errors.append(ErrorSample.of(NAIVE_PREFIX + "last", (first["naive"] - first["actual"]).to_numpy()))
    return WindowFigures(
        n_seeds=max(len(runs) for runs in groups.values()),
        horizon=int(records[0].config.get("horizon", 1) or 1),
        losses=losses, predictions=predictions,
        actual=next(iter(predictions.values()))[["date", "actual", "naive"]],
        fusion_kind=str(weighted[0][0].config.get("fusion", "scalar")) if weighted else None,
        fusion=tuple((r.seed, w) for r, w in weighted), errors=tuple(errors))
