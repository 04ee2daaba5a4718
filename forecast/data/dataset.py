"""From a canonical price frame to scaled training windows, and back to prices.

:func:`build_dataset` is the whole data path after loading: NaN policy and price
adjustment (:func:`~forecast.data.frame.prepare_prices`), derived columns, windows,
chronological split, scalers fitted on training rows. :class:`Dataset` keeps, next to
the scaled arrays, everything needed to report in price units: each window's *today*
price, the actual future prices, the input window's prices (for the drift baseline) and
the training part's prices (for the MASE scale).

Targets: ``close`` predicts the next ``horizon`` closes; ``return`` predicts the next
``horizon`` daily log returns ``log(c[t] / c[t-1])``, turned back into prices by
``today's price * exp(cumulative sum of predicted returns)``.

Per-window normalisation (``window_norm``), applied before the scalers:

* ``"last"`` (the default): every window is expressed relative to its *anchor*
  ``p0``, the close of the window's last input day (its *today*; never a target day).
  Price features (``open high low close``, all adjusted) become ``x / p0 - 1``;
  ``volume`` becomes ``log((v + 1) / (m + 1))`` with ``m`` the mean volume of the
  window's own input days (scale-free for any real volume, and finite for days with no
  trades); ``return`` is already scale-free and is left alone. A ``close`` target
  becomes ``y / p0 - 1`` (relative change from today to each horizon day), and
  predictions go back through the anchor: ``price = p0 * (1 + prediction)``. A
  ``return`` target is left alone. The scalers are then fitted on the normalised
  inputs and targets of the *training windows* only (whose inputs and targets all lie
  in the training rows). A window therefore depends on nothing after its last target
  day, and the model never has to extrapolate to a price level it did not see in
  training, which raw prices force it to do whenever the test period trades above or
  below the training range.
* ``"none"``: raw values; the scalers are fitted on the training rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.data.frame import BASE_FEATURES, prepare_prices
from forecast.data.scaling import fit_scaler
from forecast.data.windows import PARTS, check_parts, split_bounds, window_parts, window_rows
from forecast.errors import DataError
from forecast.memory import check_window_memory

__all__ = ["FEATURES", "TARGETS", "WINDOW_NORMS", "PRICE_FEATURES", "MAX_SCALED", "Dataset", "build_dataset", "price_columns",
           "normalise_windows"]

FEATURES = BASE_FEATURES + ("return",)
TARGETS = ("close", "return")
#: Per-window normalisations (see the module docstring); the first is the default.
WINDOW_NORMS = ("last", "none")
#: Features expressed relative to the anchor close under ``window_norm="last"``.
PRICE_FEATURES = ("open", "high", "low", "close")
#: Largest magnitude a scaled input or target may reach. The training part scales to about
#: [0, 1] (or unit variance); a value a million times beyond that is a data error (a
#: price of 1e-300 among prices of 50, say), and the model's products of such values
#: overflow float32, and soon float64.
MAX_SCALED = 1e6


@dataclass
class Dataset:
    """Windows, split and scalers of one price series (see the module docstring).

    Attributes
    ----------
    X : ndarray, shape (N, seq_len, n_features)
        Scaled inputs (float64; cast to the model dtype when training).
    y : ndarray, shape (N, horizon)
        Scaled targets.
    parts : dict of str to ndarray of int
        Window indices of ``train``, ``val``, ``test``.
    origin_dates : ndarray of datetime64, shape (N,)
        Each window's today.
    target_dates : ndarray of datetime64, shape (N, horizon)
    base_price : ndarray, shape (N,)
        Close of today (the naive forecast).
    actual_price : ndarray, shape (N, horizon)
        The closes being predicted.
    history_price : ndarray, shape (N, seq_len)
        Closes over each input window (for the drift baseline).
    train_prices : ndarray
        Closes of the training rows (for the MASE scale).
    feature_scaler, target_scaler : fitted scalers (forecast.data.scaling)
    features : tuple of str
    target : str
    seq_len, horizon : int
    info : dict
        Source description plus ``rows``, ``first_date``, ``last_date`` and per part
        ``{rows, windows, first_date, last_date}``.
    window_norm : {"last", "none"}
        Per-window normalisation applied before scaling; under ``"last"`` the anchor of
        each window is :attr:`base_price`.
    """

    X: np.ndarray
    y: np.ndarray
    parts: dict
    origin_dates: np.ndarray
    target_dates: np.ndarray
    base_price: np.ndarray
    actual_price: np.ndarray
    history_price: np.ndarray
    train_prices: np.ndarray
    feature_scaler: object
    target_scaler: object
    features: tuple
    target: str
    seq_len: int
    horizon: int
    info: dict = field(default_factory=dict)
    window_norm: str = "none"

    @property
    def n_features(self) -> int:
        """Number of input features."""
        return self.X.shape[2]

    def windows(self, name: str) -> int:
        """Number of windows of part ``name`` (as :class:`forecast.ltsf.dataset.SeriesDataset` says it)."""
        return len(self.parts[name])

    def part(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Scaled ``(X, y)`` of part ``name``."""
        idx = self.parts[name]
        return self.X[idx], self.y[idx]

    def to_price(self, y_scaled: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Predicted prices, shape (len(idx), horizon), from scaled predictions of windows ``idx``."""
        y_scaled = np.asarray(y_scaled, dtype=np.float64)
        values = self.target_scaler.inverse_transform(y_scaled.reshape(-1, 1)).reshape(y_scaled.shape)
        if self.target == "close":
            if self.window_norm == "last":
                return self.base_price[idx, None] * (1.0 + values)
            return values
        return self.base_price[idx, None] * np.exp(np.cumsum(values, axis=1))


def _log_returns(close: np.ndarray, origin: str, why: str) -> np.ndarray:
    if np.any(close <= 0):
        bad = int(np.argmax(close <= 0))
        raise DataError(f"{origin}: non-positive price {close[bad]:g} at row {bad}; {why} needs "
                        "log returns, which need prices above zero (use --target close and leave "
                        "'return' out of --features)")
    return np.log(close[1:] / close[:-1])


def normalise_windows(X: np.ndarray, y: np.ndarray, anchor: np.ndarray, features, target: str):
    """Express raw windows relative to their anchor close (``window_norm="last"``).

    Parameters
    ----------
    X : ndarray, shape (N, seq_len, n_features)
        Raw inputs, columns in the order of ``features``.
    y : ndarray, shape (N, horizon)
        Raw targets (closes or log returns).
    anchor : ndarray, shape (N,)
        Close of each window's last input day; must be positive.
    features : sequence of str
    target : {"close", "return"}

    Returns
    -------
    X, y : new float64 arrays of the same shapes (see the module docstring).
    """
    p0 = np.asarray(anchor, dtype=np.float64)[:, None]
    X = np.array(X, dtype=np.float64, copy=True)
    y = np.array(y, dtype=np.float64, copy=True)
    for j, name in enumerate(features):
        if name in PRICE_FEATURES:
            X[:, :, j] = X[:, :, j] / p0 - 1.0
        elif name == "volume":
            v = X[:, :, j]
            X[:, :, j] = np.log((v + 1.0) / (v.mean(axis=1, keepdims=True) + 1.0))
    if target == "close":
        y = y / p0 - 1.0
    return X, y


def price_columns(frame: pd.DataFrame, features, target: str, window_norm: str, origin: str):
    """The rows a dataset is windowed from: ``(dates, close, feats, series)``.

    The NaN policy and price adjustment (:func:`~forecast.data.frame.prepare_prices`),
    then the derived columns: with log returns (as target or feature) the first row,
    which has none, is dropped everywhere. ``feats`` is (n_rows, len(features)) in the
    order of ``features``; ``series`` the target's column (closes or log returns).

    Raises
    ------
    DataError
        As :func:`build_dataset`.
    """
    prices = prepare_prices(frame, features, origin)
    close = prices["close"].to_numpy(dtype=np.float64)
    dates = prices.index.to_numpy()
    columns = {f: prices[f].to_numpy(dtype=np.float64) for f in features if f != "return"}
    if target == "return" or "return" in features:
        why = "--target return" if target == "return" else "the 'return' feature"
        returns = _log_returns(close, origin, why)
        # Row 0 has no return; drop it everywhere so all columns line up.
        close, dates = close[1:], dates[1:]
        columns = {k: v[1:] for k, v in columns.items()}
        columns["return"] = returns
    if window_norm == "last" and np.any(close <= 0):
        bad = int(np.argmax(close <= 0))
        raise DataError(f"{origin}: non-positive price {close[bad]:g} at row {bad}; --window-norm last "
                        "divides by the close of each window's last day, which must be above zero "
                        "(use --window-norm none)")
    feats = np.stack([columns[f] for f in features], axis=1)
    series = close if target == "close" else columns["return"]
    return dates, close, feats, series


def build_dataset(frame: pd.DataFrame, *, features=("close",), target="close", seq_len=60, horizon=1,
                  split=(0.7, 0.15), scaler="minmax", scalers=None, info=None,
                  window_norm="last", bounds=None) -> Dataset:
    """Windows, split and scaled arrays of a canonical price frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        A canonical frame (see :mod:`forecast.data.frame`).
    features : sequence of str
        Any of ``open high low close volume return``.
    target : {"close", "return"}
    seq_len, horizon : int
    split : (float, float)
        Train and validation fractions of the rows.
    scaler : {"minmax", "standard"}
        Kind of scaler fitted on the training rows.
    scalers : (feature_scaler, target_scaler) or None
        Already-fitted scalers to use instead (re-evaluating a checkpoint).
    info : dict or None
        Source description, copied into :attr:`Dataset.info`.
    window_norm : {"last", "none"}
        Per-window normalisation before scaling (see the module docstring).
    bounds : (int, int) or None
        Row bounds ``(b1, b2)`` of the split instead of the ``split`` fractions: rows
        ``[0, b1)`` train, ``[b1, b2)`` validation, the rest test (the walk-forward
        backtest moves them per fold). Rows count the series after the NaN policy and,
        when log returns are used, after dropping the first row: window ``i``'s today is
        row ``i + seq_len - 1``.

    Raises
    ------
    DataError
        Missing columns, gaps beyond the NaN policy, non-positive prices for log returns
        or for ``window_norm="last"``, or too few rows for the windows and split.
    """
    if window_norm not in WINDOW_NORMS:
        raise DataError(f"window_norm: unknown value {window_norm!r}; choose one of {', '.join(WINDOW_NORMS)}")
    info = dict(info or {})
    origin = info.get("spec", "data")
    features = tuple(features)
    dates, close, feats, series = price_columns(frame, features, target, window_norm, origin)
    _check_moves(close, dates, split, bounds, origin)

    n_rows = len(close)
    if bounds is None:
        b1, b2 = split_bounds(n_rows, *split)
    else:
        b1, b2 = (int(b) for b in bounds)
        if not 0 < b1 < b2 <= n_rows:
            raise DataError(f"split bounds ({b1}, {b2}) do not fit {n_rows} rows")
    inputs, targets = window_rows(n_rows, seq_len, horizon)
    parts = window_parts(targets[:, -1] if len(targets) else np.zeros(0, int), b1, b2)
    check_parts(parts, n_rows, seq_len, horizon)

    n_feats = feats.shape[1]
    check_window_memory(len(inputs), seq_len, n_feats, horizon)
    if window_norm == "last":
        X_raw, y_raw = normalise_windows(feats[inputs], series[targets], close[inputs[:, -1]],
                                         features, target)
        train = parts["train"]
        # Training windows only: all their inputs and targets lie in the training rows.
        fit_x, fit_y = X_raw[train].reshape(-1, n_feats), y_raw[train].reshape(-1, 1)
    else:
        # Training-part rows only, so no statistic of a later price leaks in.
        fit_x, fit_y = feats[:b1], series[:b1, None]
    if scalers is None:
        feature_scaler = fit_scaler(scaler, fit_x)
        target_scaler = fit_scaler(scaler, fit_y)
    else:
        feature_scaler, target_scaler = scalers
        if getattr(feature_scaler, "n_features_in_", n_feats) != n_feats:
            raise DataError(f"the checkpoint's scaler expects {feature_scaler.n_features_in_} "
                            f"features, the data gives {n_feats}")
    if window_norm == "last":
        X = feature_scaler.transform(X_raw.reshape(-1, n_feats)).reshape(X_raw.shape)
        y = target_scaler.transform(y_raw.reshape(-1, 1)).reshape(y_raw.shape)
    else:
        X = feature_scaler.transform(feats)[inputs]
        y = target_scaler.transform(series[:, None])[:, 0][targets]

    _check_scaled(X, y, dates[inputs[:, -1]], origin, window_norm)
    info.update(_describe_split(dates, n_rows, b1, b2, parts))
    return Dataset(
        X=X, y=y, parts=parts,
        origin_dates=dates[inputs[:, -1]], target_dates=dates[targets],
        base_price=close[inputs[:, -1]], actual_price=close[targets],
        history_price=close[inputs], train_prices=close[:b1].copy(),
        feature_scaler=feature_scaler, target_scaler=target_scaler,
        features=features, target=target, seq_len=int(seq_len), horizon=int(horizon), info=info,
        window_norm=window_norm,
    )


def _check_moves(close: np.ndarray, dates, split, bounds, origin: str) -> None:
    """Refuse a close that never changes over the training rows.

    A flat series has nothing to learn, and every error measured against a price move
    (MASE, the ratio to the naive forecast's error) would be 0 / 0: a run folder of nulls.
    """
    b1 = int(bounds[0]) if bounds is not None else split_bounds(len(close), *split)[0]
    train = close[:max(b1, 0)]
    if len(train) > 1 and np.all(train == train[0]):
        raise DataError(f"{origin}: the close is {train[0]:g} on every training row ({_day(dates[0])} to "
                        f"{_day(dates[len(train) - 1])}): a series that never moves has nothing to learn")


def _check_scaled(X: np.ndarray, y: np.ndarray, today, origin: str, window_norm: str) -> None:
    """Refuse scaled windows beyond :data:`MAX_SCALED`, naming the first window's last day."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(X) <= MAX_SCALED).all(axis=(1, 2)) | ~(np.abs(y) <= MAX_SCALED).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        peak = max(np.nanmax(np.abs(X[i])), np.nanmax(np.abs(y[i])))
        raise DataError(f"{origin}: after --window-norm {window_norm} and scaling, the window ending "
                        f"{_day(today[i])} reaches {peak:.3g}, over {MAX_SCALED:g} times the training range: "
                        "the model's arithmetic would overflow; check the prices around that date")


def _day(value) -> str:
    return str(pd.Timestamp(value).date())


def _describe_split(dates, n_rows, b1, b2, parts) -> dict:
    bounds = {"train": (0, b1), "val": (b1, b2), "test": (b2, n_rows)}
    split = {}
    for name in PARTS:
        lo, hi = bounds[name]
        split[name] = {
            "rows": int(hi - lo),
            "windows": int(len(parts[name])),
            "first_date": _day(dates[lo]) if hi > lo else None,
            "last_date": _day(dates[hi - 1]) if hi > lo else None,
        }
    return {"rows": int(n_rows), "first_date": _day(dates[0]), "last_date": _day(dates[-1]), "split": split}
