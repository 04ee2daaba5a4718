"""Feature and target scalers (scikit-learn), fitted on training rows only.

Scalers are stored in checkpoints as plain numbers (:func:`scaler_to_dict`), never
pickled, and rebuilt with :func:`scaler_from_dict`.
"""
from __future__ import annotations

import numpy as np

from forecast.errors import CheckpointError

# scikit-learn is imported inside the functions: it takes seconds to import, and the
# command line should answer `--help` or a usage error without paying for it.

__all__ = ["SCALERS", "fit_scaler", "scaler_to_dict", "scaler_from_dict"]

SCALERS = ("minmax", "standard")


def fit_scaler(kind: str, train_values: np.ndarray):
    """Fit a scaler of ``kind`` on training rows.

    Parameters
    ----------
    kind : {"minmax", "standard"}
        Min-max to [0, 1], or zero mean / unit variance.
    train_values : ndarray, shape (rows, columns)
        Training-part rows only.
    """
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    values = np.asarray(train_values, dtype=np.float64)
    scaler = MinMaxScaler() if kind == "minmax" else StandardScaler()
    return scaler.fit(values)


def scaler_to_dict(scaler) -> dict:
    """Plain-JSON description of a fitted scaler."""
    from sklearn.preprocessing import MinMaxScaler

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
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    try:
        if d["kind"] == "minmax":
            lo, hi = (np.asarray(d[k], dtype=np.float64) for k in ("data_min", "data_max"))
            # Refitting on the two extreme rows reproduces sklearn's own arithmetic exactly.
            return MinMaxScaler(feature_range=tuple(d["feature_range"])).fit(np.stack([lo, hi]))
        if d["kind"] == "standard":
            mean = np.asarray(d["mean"], dtype=np.float64)
            var = np.asarray(d["var"], dtype=np.float64)
            s = StandardScaler()
            s.fit(np.stack([mean, mean]))  # sets every fitted attribute with the right shapes
            s.mean_, s.var_ = mean, var
            s.scale_ = np.where(var > 0, np.sqrt(var), 1.0)
            return s
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint holds a malformed scaler ({exc})") from exc
    raise CheckpointError(f"checkpoint holds an unknown scaler kind {d.get('kind')!r}")
