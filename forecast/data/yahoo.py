"""Daily prices from Yahoo Finance through yfinance, with an on-disk cache.

Each request (ticker, start, end) is cached as one gzip CSV in the user cache directory
(``platformdirs.user_cache_dir("mamba-gru-engine")/yahoo``; the environment variable
``MAMBA_GRU_CACHE`` replaces the base directory). A cached request is served from disk
without touching the network, which keeps reruns reproducible (Yahoo revises
adjusted closes whenever a dividend is paid); ``refresh=True`` downloads again and falls
back to the cache when Yahoo cannot be reached.

``end`` is inclusive here (yfinance's own ``end`` is exclusive, so one day is added).
Prices are downloaded unadjusted with ``Adj Close`` (``auto_adjust=False``) so they go
through the same adjustment as CSV files and the bundled sample.
"""
from __future__ import annotations

import logging
import os
import re
import warnings
from datetime import date, timedelta

import pandas as pd

from forecast.data.frame import normalise_frame, parse_day
from forecast.data.csv_file import read_price_csv
from forecast.errors import DataError
from forecast.fileio import atomic_write_bytes

__all__ = ["CACHE_ENV_VAR", "DEFAULT_START", "DEFAULT_END", "cache_dir", "cache_path", "load_yahoo"]

CACHE_ENV_VAR = "MAMBA_GRU_CACHE"
DEFAULT_START = "2010-01-01"
DEFAULT_END = "2023-12-31"

_TICKER_RE = re.compile(r"^[A-Za-z0-9.\-^=]{1,20}$")


def cache_dir() -> str:
    """Directory of cached downloads (created on first write, not here)."""
    base = os.environ.get(CACHE_ENV_VAR)
    if not base:
        import platformdirs

        base = platformdirs.user_cache_dir("mamba-gru-engine")
    return os.path.join(base, "yahoo")


def cache_path(ticker: str, start: str, end: str) -> str:
    """The cache file of one request."""
    return os.path.join(cache_dir(), f"{ticker.upper()}_{start}_{end}.csv.gz")


def _download(ticker: str, start: date, end: date) -> pd.DataFrame | None:
    """One yfinance call; returns ``None`` when nothing usable came back."""
    try:
        import yfinance as yf
    except ImportError:
        return None
    yf_logger = logging.getLogger("yfinance")
    level = yf_logger.level
    # yfinance logs failed downloads over several stderr lines; the caller reports one.
    yf_logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            # yfinance's own deprecation warnings (pandas 3) are not the user's concern.
            warnings.simplefilter("ignore")
            raw = yf.download(ticker, start=start.isoformat(), end=(end + timedelta(days=1)).isoformat(),
                              auto_adjust=False, actions=False, progress=False,
                              multi_level_index=False, threads=False)
    except Exception:  # noqa: BLE001 - any failure means "not reachable"; the cache decides
        return None
    finally:
        yf_logger.setLevel(level)
    if raw is None or len(raw) == 0:
        return None
    return raw


def _to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """Yahoo-style CSV (Date, Open, High, Low, Close, Adj Close, Volume), gzip-compressed."""
    import gzip

    names = {"open": "Open", "high": "High", "low": "Low", "close": "Close",
             "adj_close": "Adj Close", "volume": "Volume"}
    out = frame.rename(columns=names)
    out.index = out.index.strftime("%Y-%m-%d")
    out.index.name = "Date"
    text = out.to_csv(float_format="%.10g")
    return gzip.compress(text.encode("utf-8"), mtime=0)


def load_yahoo(ticker: str, start=None, end=None, refresh: bool = False):
    """Daily prices of ``ticker`` from Yahoo, cached on disk.

    Parameters
    ----------
    ticker : str
        Yahoo symbol, e.g. ``AAPL``.
    start, end : str or None
        Inclusive ISO dates; ``None`` means 2010-01-01 and 2023-12-31.
    refresh : bool
        Download even when the request is cached.

    Returns
    -------
    frame : pandas.DataFrame
        The canonical frame.
    info : dict
        ``cache`` (the file) and ``from_cache`` (bool).

    Raises
    ------
    DataError
        Bad ticker or dates, or Yahoo unreachable with nothing cached.
    """
    if not _TICKER_RE.match(ticker or ""):
        raise DataError(f"not a Yahoo ticker: {ticker!r}")
    d0 = parse_day(start or DEFAULT_START, "--start")
    d1 = parse_day(end or DEFAULT_END, "--end")
    if d1 <= d0:
        raise DataError(f"--end ({d1}) must come after --start ({d0})")
    path = cache_path(ticker, d0.isoformat(), d1.isoformat())
    cached = os.path.exists(path)
    if cached and not refresh:
        return read_price_csv(path), {"cache": path, "from_cache": True}
    raw = _download(ticker.upper(), d0, d1)
    usable = None
    if raw is not None:
        try:
            usable = normalise_frame(raw, f"yahoo:{ticker.upper()}")
        except DataError:
            usable = None
        if usable is not None and usable["close"].isna().all():
            usable = None  # yfinance answers an unknown symbol with NaN rows
    if usable is None:
        if cached:
            return read_price_csv(path), {"cache": path, "from_cache": True}
        raise DataError(
            f"cannot download yahoo:{ticker.upper()} ({d0} to {d1}): Yahoo is unreachable or "
            f"has no such ticker, and nothing is cached at {path}; use the bundled sample "
            "(--data sample:AAPL, also MSFT, IBM, GOOG) or a CSV file (--data path/to/prices.csv)"
        )
    try:
        atomic_write_bytes(path, _to_csv_bytes(usable))
    except OSError:
        # An unwritable cache only costs the next run a download; the data is good.
        return usable, {"cache": None, "from_cache": False}
    return usable, {"cache": path, "from_cache": False}
