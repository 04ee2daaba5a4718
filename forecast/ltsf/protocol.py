"""The rules of the long-horizon protocol: its name, horizons, borders and defaults.

Borders follow the reference code (Time-Series-Library ``data_provider/data_loader.py``):

* ETT hourly files (``ett:`` sources): a month is 30 x 24 rows; training rows
  ``[0, 12 months)``, validation ``[12 months - L, 16 months)``, test
  ``[16 months - L, 20 months)``; later rows are never used.
* Any other series of ``n`` rows: ``n_train = int(0.7 n)``, ``n_test = int(0.2 n)``,
  ``n_val = n - n_train - n_test``; training ``[0, n_train)``, validation
  ``[n_train - L, n_train + n_val)``, test ``[n - n_test - L, n)``.

The validation and test parts start ``L`` (the lookback) rows early so that their first
window's first target is the part's first own row. Windows slide by one row and lie
wholly inside their part.
"""
from __future__ import annotations

from forecast.errors import DataError

__all__ = ["PROTOCOLS", "STOCK", "LTSF", "HORIZONS", "ETT_MONTH", "part_rows", "window_starts",
           "LTSF_DEFAULTS", "STOCK_ONLY"]

#: The stock protocol (the default) and the long-horizon one.
STOCK, LTSF = "stock", "ltsf"
PROTOCOLS = (STOCK, LTSF)
#: The benchmark's horizons.
HORIZONS = (96, 192, 336, 720)
#: Rows in an ETT "month" (30 days of hours).
ETT_MONTH = 30 * 24

#: Run options whose default differs under the protocol: the configuration the benchmark
#: table reports, chosen on validation loss only (docs/benchmarks.md says how).
LTSF_DEFAULTS = {
    "seq_len": 96,
    "horizon": 96,
    "hidden": 64,
    "layers": 1,
    "channels": "independent",
    "seg_len": 12,
    "norm": "revin",
    "linear_path": True,
    "linear_init": "lstsq",
    "epochs": 10,
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "patience": 3,
    "warmup": 0,
    # Same validation MSE as float64 to four digits on ETTh1 (docs/benchmarks.md), half the time.
    "dtype": "float32",
}

#: Options of the stock protocol that have no meaning under this one (refused if given).
STOCK_ONLY = ("start", "end", "features", "target", "window_norm", "scaler", "split", "level", "interval")


def part_rows(n_rows: int, seq_len: int, fixed_ett: bool) -> dict[str, tuple[int, int]]:
    """Row ranges ``[lo, hi)`` of ``train``, ``val`` and ``test`` (see the module docstring).

    Parameters
    ----------
    n_rows : int
        Rows of the series.
    seq_len : int
        The lookback ``L``.
    fixed_ett : bool
        Use the ETT hourly borders (12 / 4 / 4 months) instead of 70 / 10 / 20.

    Raises
    ------
    DataError
        When the series is too short for the borders and the lookback.
    """
    if fixed_ett:
        b1, b2, b3 = 12 * ETT_MONTH, 16 * ETT_MONTH, 20 * ETT_MONTH
        if n_rows < b3:
            raise DataError(f"an ETT series needs at least {b3} rows for the protocol's borders "
                            f"(12/4/4 months of 30 days), got {n_rows}")
    else:
        n_train, n_test = int(0.7 * n_rows), int(0.2 * n_rows)
        b1, b2, b3 = n_train, n_rows - n_test, n_rows
    if b1 - seq_len < 0:
        raise DataError(f"--seq-len {seq_len} is longer than the training part ({b1} rows)")
    return {"train": (0, b1), "val": (b1 - seq_len, b2), "test": (b2 - seq_len, b3)}


def window_starts(rows: tuple[int, int], seq_len: int, horizon: int):
    """First rows of every window (input ``L`` rows, then ``H`` targets) inside ``rows``."""
    import numpy as np

    lo, hi = rows
    return np.arange(lo, max(hi - seq_len - horizon + 1, lo))
