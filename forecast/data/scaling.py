"""Feature and target scalers, fitted on training rows only.

Two scalers with the arithmetic of scikit-learn's ``MinMaxScaler`` (to [0, 1]) and
``StandardScaler`` (zero mean, unit variance), written here in NumPy: importing
scikit-learn costs most of a second at every start of the command line, for a few
lines of arithmetic. ``tests/test_data.py`` holds both to scikit-learn's, bit for bit.

Scalers are stored in checkpoints as plain numbers (:func:`scaler_to_dict`), never
pickled, and rebuilt with :func:`scaler_from_dict`.
"""
from __future__ import annotations

import numpy as np

from forecast.errors import CheckpointError

__all__ = ["SCALERS", "MinMaxScaler", "StandardScaler", "fit_scaler", "scaler_to_dict", "scaler_from_dict"]

SCALERS = ("minmax", "standard")


def _nonzero_scale(scale: np.ndarray) -> np.ndarray:
    """A constant column (range or deviation within 10 ulp of 0) keeps its values: scale 1."""
    return np.where(scale < 10 * np.finfo(scale.dtype).eps, 1.0, scale)


def _columns(values) -> np.ndarray:
    """A float64 copy, shape (rows, columns): the scalers work in place on it."""
    X = np.array(values, dtype=np.float64, copy=True)
    if X.ndim != 2:
        raise ValueError(f"a scaler takes a 2-D array (rows, columns), got shape {X.shape}")
    return X


class MinMaxScaler:
    """``x -> (x - min) / (max - min)`` per column, min and max of the training rows.

    Attributes (after :meth:`fit`): ``data_min_``, ``data_max_``, ``scale_`` and
    ``min_`` (``x * scale_ + min_`` is the scaled value), ``n_features_in_``.
    """

    feature_range = (0.0, 1.0)

    def fit(self, values) -> "MinMaxScaler":
        """Take each column's min and max from ``values`` (rows, columns); returns self."""
        X = _columns(values)
        self.data_min_ = np.nanmin(X, axis=0)
        self.data_max_ = np.nanmax(X, axis=0)
        lo, hi = self.feature_range
        self.scale_ = (hi - lo) / _nonzero_scale(self.data_max_ - self.data_min_)
        self.min_ = lo - self.data_min_ * self.scale_
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, values) -> np.ndarray:
        """Scaled copy of ``values`` (rows, columns)."""
        X = _columns(values)
        X *= self.scale_
        X += self.min_
        return X

    def inverse_transform(self, values) -> np.ndarray:
        """Original units of scaled ``values`` (rows, columns)."""
        X = _columns(values)
        X -= self.min_
        X /= self.scale_
        return X


class StandardScaler:
    """``x -> (x - mean) / std`` per column, mean and (population) std of the training rows.

    Attributes (after :meth:`fit`): ``mean_``, ``var_``, ``scale_`` (the std, 1 for a
    constant column), ``n_features_in_``.
    """

    def fit(self, values) -> "StandardScaler":
        """Take each column's mean and variance from ``values`` (rows, columns); returns self."""
        X = _columns(values)
        n = X.shape[0]
        self.mean_ = np.nansum(X, axis=0) / n
        # Two-pass variance with the rounding correction of the first pass's residuals.
        centred = X - self.mean_
        correction = np.nansum(centred, axis=0)
        centred **= 2
        self.var_ = (np.nansum(centred, axis=0) - correction ** 2 / n) / n
        self.scale_ = _nonzero_scale(np.sqrt(self.var_))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, values) -> np.ndarray:
        """Standardised copy of ``values`` (rows, columns)."""
        X = _columns(values)
        X -= self.mean_
        X /= self.scale_
        return X

    def inverse_transform(self, values) -> np.ndarray:
        """Original units of standardised ``values`` (rows, columns)."""
        X = _columns(values)
        X *= self.scale_
        X += self.mean_
        return X


def fit_scaler(kind: str, train_values: np.ndarray):
    """Fit a scaler of ``kind`` on training rows.

    Parameters
    ----------
    kind : {"minmax", "standard"}
        Min-max to [0, 1], or zero mean / unit variance.
    train_values : ndarray, shape (rows, columns)
        Training-part rows only.

    Returns
    -------
    MinMaxScaler or StandardScaler
    """
    return (MinMaxScaler() if kind == "minmax" else StandardScaler()).fit(train_values)


def scaler_to_dict(scaler) -> dict:
    """Plain-JSON description of a fitted scaler."""
    if isinstance(scaler, MinMaxScaler):
        return {"kind": "minmax", "data_min": scaler.data_min_.tolist(),
                "data_max": scaler.data_max_.tolist(),
                "feature_range": list(scaler.feature_range)}
    return {"kind": "standard", "mean": scaler.mean_.tolist(), "var": scaler.var_.tolist()}


def scaler_from_dict(d: dict):
    """Rebuild a fitted scaler from :func:`scaler_to_dict`'s output.

    Raises
    ------
    CheckpointError
        When the description is malformed.
    """
    try:
        if d["kind"] == "minmax":
            if tuple(float(v) for v in d["feature_range"]) != MinMaxScaler.feature_range:
                raise ValueError(f"feature_range {d['feature_range']} is not (0, 1)")
            lo, hi = (np.asarray(d[k], dtype=np.float64) for k in ("data_min", "data_max"))
            # Fitting on the two extreme rows reproduces the fitted arithmetic exactly.
            return MinMaxScaler().fit(np.stack([lo, hi]))
        if d["kind"] == "standard":
            s = StandardScaler()
            s.mean_ = np.asarray(d["mean"], dtype=np.float64)
            s.var_ = np.asarray(d["var"], dtype=np.float64)
            if s.mean_.ndim != 1 or s.var_.shape != s.mean_.shape:
                raise ValueError(f"mean {s.mean_.shape} and var {s.var_.shape} must be 1-D of one length")
            s.scale_ = _nonzero_scale(np.sqrt(s.var_))
            s.n_features_in_ = s.mean_.size
            return s
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint holds a malformed scaler ({exc})") from exc
    raise CheckpointError(f"checkpoint holds an unknown scaler kind {d.get('kind')!r}")
