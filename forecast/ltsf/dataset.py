"""Windows, scaler, metrics and the two baselines of the long-horizon protocol.

:func:`build_series_dataset` turns a dated multichannel frame into a
:class:`SeriesDataset`: the whole series standardised per channel by a scaler fitted on
the training rows, and the window starts of each part (:mod:`forecast.ltsf.protocol`).
Windows are materialised per part on demand: ``X (n, L, C)`` and ``y (n, H * C)``,
step-major, the layout :class:`models.longhorizon.LongHorizonForecaster` emits.

Metrics stay on the standardised scale and average every window x step x channel.
The baselines:

* Repeat: the last input value of each channel for every step;
* the linear map: one least-squares map from the ``L`` input values of a channel to its
  ``H`` targets (with an intercept), shared by every channel, fitted in closed form on
  the training windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from forecast.data.scaling import fit_scaler
from forecast.data.windows import PARTS
from forecast.errors import DataError
from forecast.ltsf.protocol import part_rows, window_starts

__all__ = ["SeriesDataset", "build_series_dataset", "repeat_forecast", "LinearMap", "loss_table",
           "LOSS_COLUMNS"]


@dataclass
class SeriesDataset:
    """A standardised multichannel series and the windows of its three parts.

    Attributes
    ----------
    values : ndarray, shape (T, C)
        The whole series, standardised (float64).
    dates : ndarray of datetime64, shape (T,)
    columns : tuple of str
    seq_len, horizon : int
    starts : dict of str to ndarray of int
        First row of every window of ``train``, ``val``, ``test``.
    rows : dict of str to (int, int)
        Each part's row range (validation and test start ``seq_len`` rows early).
    scaler : forecast.data.scaling.StandardScaler
        Fitted on the training rows.
    info : dict
        Source description plus the split (rows, windows, dates per part).
    """

    values: np.ndarray
    dates: np.ndarray
    columns: tuple
    seq_len: int
    horizon: int
    starts: dict
    rows: dict
    scaler: object
    info: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        """Channels ``C`` (inputs and outputs alike)."""
        return self.values.shape[1]

    def windows(self, name: str) -> int:
        """Number of windows of part ``name``."""
        return len(self.starts[name])

    def inputs(self, name: str) -> np.ndarray:
        """``X (n, L, C)`` of part ``name`` (a new array)."""
        view = sliding_window_view(self.values, self.seq_len, axis=0)       # (T-L+1, C, L)
        return np.ascontiguousarray(view[self.starts[name]].transpose(0, 2, 1))

    def targets(self, name: str) -> np.ndarray:
        """``y (n, H, C)`` of part ``name`` (a new array)."""
        view = sliding_window_view(self.values, self.horizon, axis=0)       # (T-H+1, C, H)
        return np.ascontiguousarray(view[self.starts[name] + self.seq_len].transpose(0, 2, 1))

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(X (n, L, C), y (n, H * C))`` of part ``name``, ``y`` step-major."""
        y = self.targets(name)
        return self.inputs(name), y.reshape(len(y), -1)


def build_series_dataset(frame: pd.DataFrame, info: dict, seq_len: int, horizon: int,
                         fixed_ett: bool, scaler=None) -> SeriesDataset:
    """Standardise ``frame`` and cut it into the protocol's windows.

    Parameters
    ----------
    frame : pandas.DataFrame
        Dated rows (index) of numeric channels (:func:`forecast.data.series.load_series`).
    info : dict
        The source's description (copied, then the split is added).
    seq_len, horizon : int
    fixed_ett : bool
        The ETT borders instead of 70 / 10 / 20 (see :mod:`forecast.ltsf.protocol`).
    scaler : fitted StandardScaler or None
        Reuse a saved scaler (re-evaluating a checkpoint) instead of fitting one.

    Raises
    ------
    DataError
        A series too short for the borders, or a part left without a window.
    """
    # One memory layout whatever the frame holds internally, so the scaler's sums (and so
    # every standardised value) are the same to the bit for the same training rows.
    values = np.ascontiguousarray(frame.to_numpy(dtype=np.float64))
    rows = part_rows(len(values), seq_len, fixed_ett)
    starts = {p: window_starts(rows[p], seq_len, horizon) for p in PARTS}
    empty = [p for p in PARTS if len(starts[p]) == 0]
    if empty:
        raise DataError(f"{info.get('spec', 'data')}: --seq-len {seq_len} and --horizon {horizon} leave no "
                        f"{' and no '.join(empty)} window (parts of {', '.join(f'{p} {hi - lo}' for p, (lo, hi) in rows.items())} "
                        "rows); use a shorter horizon or lookback")
    lo, hi = rows["train"]
    if scaler is None:
        scaler = fit_scaler("standard", values[lo:hi])
    elif getattr(scaler, "n_features_in_", values.shape[1]) != values.shape[1]:
        raise DataError(f"the checkpoint's scaler expects {scaler.n_features_in_} channels, "
                        f"the data gives {values.shape[1]}")
    dates = frame.index.to_numpy()
    info = dict(info)
    info.update(rows=len(values), channels=list(map(str, frame.columns)),
                first_date=str(pd.Timestamp(dates[0])), last_date=str(pd.Timestamp(dates[-1])),
                split={p: {"rows": [int(rows[p][0]), int(rows[p][1])], "windows": int(len(starts[p])),
                           "first_target": str(pd.Timestamp(dates[starts[p][0] + seq_len])),
                           "last_target": str(pd.Timestamp(dates[starts[p][-1] + seq_len + horizon - 1]))}
                       for p in PARTS})
    return SeriesDataset(scaler.transform(values), dates, tuple(map(str, frame.columns)), int(seq_len),
                         int(horizon), starts, rows, scaler, info)


# -- baselines ---------------------------------------------------------------------------

def repeat_forecast(X: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat: the last value of each channel for every step, ``(n, L, C) -> (n, H, C)``."""
    return np.repeat(X[:, -1:, :], horizon, axis=1)


class LinearMap:
    """One least-squares map ``L`` inputs -> ``H`` targets (with intercept), shared by channels.

    Fitted in closed form (``numpy.linalg.lstsq``) on every (training window, channel)
    pair: the benchmark's regression yardstick (DLinear/RLinear are trained versions of
    such a map).
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LinearMap":
        """``X (n, L, C)``, ``y (n, H, C)``; returns self."""
        A = _channel_rows(X)                                                # (nC, L)
        B = _channel_rows(y)                                                # (nC, H)
        A1 = np.hstack([A, np.ones((len(A), 1))])
        self.coef_, *_ = np.linalg.lstsq(A1, B, rcond=None)                 # (L + 1, H)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(n, L, C) -> (n, H, C)``."""
        n, _, C = X.shape
        out = _channel_rows(X) @ self.coef_[:-1] + self.coef_[-1]            # (nC, H)
        return out.reshape(n, C, -1).transpose(0, 2, 1)


def _channel_rows(a: np.ndarray) -> np.ndarray:
    """``(n, T, C) -> (n * C, T)``: one row per window and channel."""
    return np.ascontiguousarray(a.transpose(0, 2, 1)).reshape(-1, a.shape[1])


# -- metrics -----------------------------------------------------------------------------

#: Columns of a run's ``window_losses.csv`` after ``window``.
LOSS_COLUMNS = ("model_mse", "model_mae", "repeat_mse", "repeat_mae", "linear_mse", "linear_mae")


def window_losses(y: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-window MSE and MAE over steps and channels, ``(n, H, C)`` each -> ``(n,)``, ``(n,)``."""
    err = pred - y
    return np.mean(err ** 2, axis=(1, 2)), np.mean(np.abs(err), axis=(1, 2))


def loss_table(y: np.ndarray, forecasts: dict) -> tuple[dict, pd.DataFrame]:
    """Metrics and per-window losses of several forecasts of the same windows.

    Parameters
    ----------
    y : ndarray, shape (n, H, C)
    forecasts : dict of str to ndarray
        ``{"model": ..., "repeat": ..., "linear": ...}``, each ``(n, H, C)``.

    Returns
    -------
    metrics : dict
        ``{name: {"mse", "mae"}}``: the mean over every window, step and channel (the
        windows all have ``H * C`` values, so this is the mean of the per-window losses).
    table : pandas.DataFrame
        ``window`` then ``<name>_mse, <name>_mae`` per forecast.
    """
    metrics, table = {}, {"window": np.arange(len(y))}
    for name, pred in forecasts.items():
        mse, mae = window_losses(y, pred)
        if not (np.all(np.isfinite(mse)) and np.all(np.isfinite(mae))):
            raise DataError(f"the {name} forecast is not finite on some test windows")
        metrics[name] = {"mse": float(np.mean(mse)), "mae": float(np.mean(mae))}
        table[f"{name}_mse"], table[f"{name}_mae"] = mse, mae
    return metrics, pd.DataFrame(table)
