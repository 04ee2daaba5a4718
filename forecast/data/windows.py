"""Sliding windows and the chronological train / validation / test split.

Rows ``0 .. T-1`` are trading days. Window ``i`` reads input rows ``i .. i+L-1`` (``L`` =
seq_len) and predicts target rows ``i+L .. i+L+H-1`` (``H`` = horizon); row ``i+L-1`` is
its *today* (the last observed day).

The split cuts the rows, not the windows: rows ``[0, b1)`` are the training part,
``[b1, b2)`` validation, ``[b2, T)`` test, with ``b1 = round(T * train)`` and
``b2 = round(T * (train + val))``. A window belongs to the part of its *last* target
row. Its inputs (and, for H > 1, its first targets) may lie in an earlier part, which
is information the model would have at that date anyway; no target of a window ever
lies in a later part than the window's own, so training never sees a validation or
test price and validation never sees a test price.
"""
from __future__ import annotations

import numpy as np

from forecast.errors import DataError

__all__ = ["PARTS", "split_bounds", "window_parts", "window_rows"]

PARTS = ("train", "val", "test")


def split_bounds(n_rows: int, train: float, val: float) -> tuple[int, int]:
    """Row boundaries ``(b1, b2)`` of the chronological split.

    Parameters
    ----------
    n_rows : int
        Number of rows ``T``.
    train, val : float
        Fractions of the rows for training and validation; the rest is the test part.
    """
    b1 = int(round(n_rows * train))
    b2 = int(round(n_rows * (train + val)))
    return b1, b2


def window_rows(n_rows: int, seq_len: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Input and target row indices of every window.

    Returns
    -------
    inputs : ndarray of int, shape (N, seq_len)
    targets : ndarray of int, shape (N, horizon)
        ``N = n_rows - seq_len - horizon + 1`` (may be 0).
    """
    n = max(n_rows - seq_len - horizon + 1, 0)
    if n == 0:
        # Without this, a --seq-len of a billion would allocate its arange before the
        # "series too short" error could say anything.
        return np.zeros((0, seq_len), dtype=np.intp), np.zeros((0, horizon), dtype=np.intp)
    starts = np.arange(n)
    inputs = starts[:, None] + np.arange(seq_len)[None, :]
    targets = starts[:, None] + seq_len + np.arange(horizon)[None, :]
    return inputs, targets


def window_parts(last_target_rows: np.ndarray, b1: int, b2: int) -> dict[str, np.ndarray]:
    """Window indices of each part, by where each window's last target row lies."""
    last = np.asarray(last_target_rows)
    return {
        "train": np.flatnonzero(last < b1),
        "val": np.flatnonzero((last >= b1) & (last < b2)),
        "test": np.flatnonzero(last >= b2),
    }


def check_parts(parts: dict[str, np.ndarray], n_rows: int, seq_len: int, horizon: int) -> None:
    """Refuse a split that leaves a part without windows."""
    empty = [p for p in PARTS if len(parts[p]) == 0]
    if empty:
        sizes = ", ".join(f"{p} {len(parts[p])}" for p in PARTS)
        raise DataError(
            f"series too short: {n_rows} rows with --seq-len {seq_len} and --horizon {horizon} give "
            f"windows {sizes}; every part needs at least one window (use more data, a shorter "
            "--seq-len or another --split)"
        )
