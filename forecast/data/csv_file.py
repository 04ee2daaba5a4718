"""Read a Yahoo-style CSV export (``Date, Open, High, Low, Close, Adj Close, Volume``).

Column names are matched case-insensitively. A file saved straight from
``yf.download(...).to_csv()`` with yfinance's two-level header (a ``Price`` row, a
``Ticker`` row and an empty ``Date`` row) is accepted too. ``.csv.gz`` is read as gzip.
"""
from __future__ import annotations

import io
import os

import pandas as pd

from forecast.data.frame import normalise_frame
from forecast.errors import DataError

__all__ = ["read_price_csv", "read_price_csv_bytes", "read_data_file", "file_stem"]


def read_data_file(path: str, alternatives: str) -> bytes:
    """The bytes of the data file ``path``.

    Raises
    ------
    DataError
        Missing file (the message offers ``alternatives`` or a CSV path), a directory, or
        unreadable.
    """
    if not os.path.exists(path):
        raise DataError(f"data file not found: {path} (use {alternatives} or a CSV path)")
    if os.path.isdir(path):
        raise DataError(f"data path is a directory, not a CSV file: {path}")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc


def file_stem(path: str) -> str:
    """The file's name without ``.gz`` and ``.csv`` (any case): ``prices`` of ``data/prices.csv.gz``."""
    stem = os.path.basename(path)
    for ext in (".gz", ".csv"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    return stem


def read_price_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read and normalise a price CSV file.

    Parameters
    ----------
    path : path-like
        The file (``.csv`` or ``.csv.gz``).

    Returns
    -------
    pandas.DataFrame
        The canonical frame (see :func:`forecast.data.frame.normalise_frame`).

    Raises
    ------
    DataError
        Missing, unreadable, empty or unparsable file.
    """
    path = os.fspath(path)
    payload = read_data_file(path, "sample:TICKER, yahoo:TICKER")
    return read_price_csv_bytes(payload, origin=path, gzip=path.endswith(".gz"))


def read_price_csv_bytes(payload: bytes, origin: str, gzip: bool = False) -> pd.DataFrame:
    """Parse CSV bytes (see :func:`read_price_csv`); ``origin`` names them in errors."""
    if not payload.strip():
        raise DataError(f"data file is empty: {origin}")
    try:
        raw = pd.read_csv(io.BytesIO(payload), compression="gzip" if gzip else None)
        if len(raw.columns) and str(raw.columns[0]).strip().lower() == "price" and len(raw) >= 2 \
                and str(raw.iloc[0, 0]).strip().lower() == "ticker":
            # yfinance MultiIndex export: the real header is row 0, then Ticker and Date rows.
            raw = pd.read_csv(io.BytesIO(payload), compression="gzip" if gzip else None,
                              skiprows=[1, 2])
            raw = raw.rename(columns={raw.columns[0]: "Date"})
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"data file is empty: {origin}") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, EOFError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot parse {origin} as CSV: {first}") from exc
    return normalise_frame(raw, origin)
