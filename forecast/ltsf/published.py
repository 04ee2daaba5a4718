"""Published long-horizon figures (MSE / MAE) that the benchmark report sits beside.

The numbers live in ``published.csv`` next to this module, one row per
``(dataset, model, lookback, horizon)``; they were generated from the project's
``ltsf_published.md`` by a parser, not typed in. Every figure is on the standardised
scale, multivariate, averaged over test windows, steps and channels.

Columns: ``dataset`` (``ETTh1``, ``ETTh2``, ``Exchange``), ``model`` (as the papers
name it), ``lookback`` (96, 336 for DLinear of Zeng et al.; empty for Repeat, whose
forecast does not depend on it), ``horizon`` (96, 192, 336, 720), ``mse``, ``mae``,
``source`` (the citation). The "average" column of the papers is not stored: it is
the mean of the four horizons and is computed where it is needed.
"""
from __future__ import annotations

from importlib import resources

import pandas as pd

from forecast.ltsf.protocol import HORIZONS

__all__ = ["HORIZONS", "MAIN_LOOKBACK", "REPEAT", "PUBLISHED_DATASETS", "load_published",
           "published_name"]

# HORIZONS (re-exported): the protocol's four horizons; an "average" is over exactly these.
#: The lookback of the main published table (iTransformer's and S-Mamba's setting).
MAIN_LOOKBACK = 96
#: The published last-value baseline's model name (its lookback is empty).
REPEAT = "Repeat"
#: Our source specs -> the dataset names of ``published.csv``.
PUBLISHED_DATASETS = {"ett:ETTh1": "ETTh1", "ett:ETTh2": "ETTh2", "ltsf:exchange": "Exchange"}

_COLUMNS = ("dataset", "model", "lookback", "horizon", "mse", "mae", "source")


def load_published() -> pd.DataFrame:
    """The published figures as a table.

    Returns
    -------
    pandas.DataFrame
        Columns ``dataset, model, lookback, horizon, mse, mae, source``. ``lookback``
        is a nullable integer (``<NA>`` for Repeat), ``horizon`` an int, ``mse`` and
        ``mae`` floats. A fresh copy on every call, so callers may modify it.
    """
    # importlib.resources finds the file inside an installed wheel or zip as well as
    # in a source checkout.
    with resources.files(__package__).joinpath("published.csv").open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, dtype={"dataset": str, "model": str, "source": str})
    missing = [c for c in _COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"published.csv lacks the columns {missing}")
    frame = frame[list(_COLUMNS)].copy()
    frame["lookback"] = frame["lookback"].astype("Int64")
    frame["horizon"] = frame["horizon"].astype(int)
    frame[["mse", "mae"]] = frame[["mse", "mae"]].astype(float)
    return frame


def published_name(source: str) -> str | None:
    """The ``published.csv`` dataset name of one of our source specs, or None.

    Matching ignores case in the kind prefix and the dataset (``ETT:etth1`` is
    ``ETTh1``), because source specs are typed by people.
    """
    wanted = str(source).strip().lower()
    for spec, name in PUBLISHED_DATASETS.items():
        if spec.lower() == wanted:
            return name
    return None
