"""Multichannel series for the long-horizon (LTSF) benchmark protocol.

These are not stock prices: a series is a table of numeric channels over time, used
whole (every channel in, every channel out) under ``--protocol ltsf``. Three kinds of
``--data`` value name one:

* ``ett:ETTh1``, ``ett:ETTh2`` - the hourly Electricity Transformer Temperature sets,
  bundled unchanged (gzip-compressed) in ``forecast/data/ltsf/`` from the public
  repository zhouhaoyi/ETDataset (CC BY-ND 4.0; see ``ltsf/PROVENANCE.md``). 17,420 rows,
  ``date`` then HUFL, HULL, MUFL, MULL, LUFL, LULL, OT. The name is case-insensitive.
* ``ltsf:exchange`` - the daily exchange rates of 8 countries, 7,588 rows, LSTNet's
  ``exchange_rate.txt`` from laiguokun/multivariate-time-series-data. That repository
  states no licence, so the file is never shipped: it is downloaded on first use from
  :data:`EXCHANGE_URL`, checked against :data:`EXCHANGE_SHA256` (a file with other bytes
  is refused, never cached) and cached in the download cache folder
  (:func:`forecast.data.yahoo.cache_dir`, which honours ``MAMBA_GRU_CACHE``); later loads
  read the cache and need no network. The file has no header and no dates. The CSV the
  reference code (Time-Series-Library) reads adds them, and so does this module: a
  ``date`` column of consecutive days from 1990-01-01, and columns named ``0`` .. ``6``
  with the last one ``OT``. The dates are a convention, not the true trading days.
* anything else (or ``csv:path``) - a CSV file: a header, a first column of dates or
  times (ISO 8601), then numeric columns. Every value must be a finite number and the
  dates must increase strictly; anything else is refused with one line that names the
  column and the row (data rows count from 1, the header not included).

Every kind gives the same result (:func:`load_series`): a frame with a ``DatetimeIndex``
named ``date`` (time-zone naive, nanosecond unit) and float64 columns in file order,
and a description ``info``.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import os
import urllib.request
import warnings
from importlib import resources

import numpy as np
import pandas as pd

from forecast.data import yahoo
from forecast.data.csv_file import file_stem, read_data_file
from forecast.errors import DataError, first_line
from forecast.fileio import atomic_write_bytes

__all__ = ["SERIES_KINDS", "ETT_NAMES", "LTSF_NAMES", "EXCHANGE_URL", "EXCHANGE_SHA256",
           "EXCHANGE_FILE", "EXCHANGE_START", "ETT_SHA256", "is_series_source", "canonical_series_name",
           "exchange_cache_path", "read_series_csv", "load_series"]

SERIES_KINDS = ("ett", "ltsf")
#: Bundled ETT sets, spelled as in the source repository.
ETT_NAMES = ("ETTh1", "ETTh2")
#: Downloaded sets.
LTSF_NAMES = ("exchange",)

#: SHA-256 of each original ETT CSV (the decompressed bundle), as in ltsf/PROVENANCE.md.
ETT_SHA256 = {
    "ETTh1": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
    "ETTh2": "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
}

EXCHANGE_URL = ("https://raw.githubusercontent.com/laiguokun/multivariate-time-series-data/"
                "master/exchange_rate/exchange_rate.txt.gz")
#: SHA-256 of the gzip file as stored in the repository (commit 7f402f1, 177,142 bytes).
EXCHANGE_SHA256 = "6a4fbb561dcdee43f071a83badbeec9223a335552278348656738b556f1c2e9d"
#: Name of the cached file: the original one, so a copy fetched by hand can be dropped in.
EXCHANGE_FILE = "exchange_rate.txt.gz"
#: First date of the day index the reference CSV gives the exchange rates.
EXCHANGE_START = "1990-01-01"
DOWNLOAD_TIMEOUT = 30.0
#: The real file is 177 kB; a server sending far more is not sending it.
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024

_CSV_HINT = "a CSV needs a header, a first column of dates, then numeric columns"


# -- names --------------------------------------------------------------------------------

def _split(text: str) -> tuple[str, str]:
    kind, sep, rest = str(text or "").strip().partition(":")
    return (kind.strip().lower(), rest.strip()) if sep else ("", str(text or "").strip())


def is_series_source(text) -> bool:
    """Whether a ``--data`` value names a benchmark series (``ett:`` or ``ltsf:``).

    Parameters
    ----------
    text : str
        A raw ``--data`` value; the prefix is matched case-insensitively.

    Returns
    -------
    bool
        True for ``ett:NAME`` and ``ltsf:NAME`` (known name or not), False otherwise,
        CSV paths included.
    """
    return _split(text)[0] in SERIES_KINDS


def _choices() -> str:
    return ", ".join([f"ett:{n}" for n in ETT_NAMES] + [f"ltsf:{n}" for n in LTSF_NAMES])


def canonical_series_name(kind: str, name: str) -> str:
    """The canonical spelling of a series name (``etth1`` -> ``ETTh1``).

    Parameters
    ----------
    kind : {"ett", "ltsf"}
    name : str
        Any case.

    Raises
    ------
    DataError
        Unknown kind or name; the message names the choices.
    """
    kind = str(kind).strip().lower()
    known = {"ett": ETT_NAMES, "ltsf": LTSF_NAMES}.get(kind, ())
    for candidate in known:
        if candidate.lower() == str(name).strip().lower():
            return candidate
    if not str(name).strip():
        raise DataError(f"{kind}: names no series; choose one of {_choices()}")
    raise DataError(f"no benchmark series {kind}:{str(name).strip()}; choose one of {_choices()}")


# -- CSV ----------------------------------------------------------------------------------

def _where(index, i: int) -> str:
    """``row 5 (2016-07-01 04:00:00)``: 1-based data row, with its date when known."""
    if index is not None and 0 <= i < len(index) and not pd.isna(index[i]):
        return f"row {i + 1} ({index[i]})"
    return f"row {i + 1}"


def _parse_dates(col: pd.Series, origin: str) -> pd.DatetimeIndex:
    """Strict ISO 8601 dates: pandas's guessing would read ``1`` or ``01/02`` too."""
    name = str(col.name)
    try:
        # utc=True: offsets (even mixed ones, across a clock change) all become UTC and
        # dates without one are taken as they are. Numbers go in as text: pandas is to
        # read them as epochs instead of failing.
        dates = pd.to_datetime(col.astype(str), format="ISO8601", errors="coerce", utc=True)
    except (ValueError, TypeError, OverflowError) as exc:  # what coercion does not absorb
        raise DataError(f"{origin}: cannot parse the dates of column {name!r}: {first_line(exc)}") from exc
    bad = np.flatnonzero(dates.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{origin}: cannot parse date {str(col.iloc[i])!r} in column {name!r} at row {i + 1}; "
                        "write dates as ISO 8601, e.g. 2016-07-01 or 2016-07-01 00:00:00")
    # UTC wall time, naive: local time would repeat an hour when clocks go back.
    dates = dates.dt.tz_convert(None)
    index = pd.DatetimeIndex(dates, name="date").as_unit("ns")
    _check_increasing(index, origin)
    return index


def _check_increasing(index: pd.DatetimeIndex, origin: str) -> None:
    """Dates must increase strictly: a window's rows are consecutive in time."""
    if len(index) < 2:
        return
    step = np.diff(index.asi8)
    bad = np.flatnonzero(step <= 0)
    if not len(bad):
        return
    i = int(bad[0]) + 1
    if step[i - 1] == 0:
        raise DataError(f"{origin}: date {index[i]} appears twice (rows {i} and {i + 1})")
    raise DataError(f"{origin}: dates go back at {_where(index, i)}, after {index[i - 1]}; "
                    "the rows must be in time order")


def _parse_channel(col: pd.Series, origin: str, index=None) -> np.ndarray:
    """One numeric column as float64; junk or a non-finite value is an error."""
    name = str(col.name)
    if pd.api.types.is_bool_dtype(col.dtype):
        raise DataError(f"{origin}: column {name!r} holds true/false values, not numbers")
    if pd.api.types.is_numeric_dtype(col.dtype):
        values = col.to_numpy(dtype=np.float64)
    else:
        numbers = pd.to_numeric(col, errors="coerce")
        # Coercion turns junk into NaN; blanks are NaN too and reported as missing below.
        junk = numbers.isna() & col.notna() & (col.astype(str).str.strip() != "")
        if junk.any():
            i = int(np.argmax(junk.to_numpy()))
            raise DataError(f"{origin}: column {name!r} is not numeric: {str(col.iloc[i])!r} at {_where(index, i)}")
        values = numbers.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        i = int(bad[0])
        what = "missing (NaN)" if np.isnan(values[i]) else f"{values[i]}"
        raise DataError(f"{origin}: column {name!r} has a non-finite value, {what}, at {_where(index, i)}; "
                        f"{len(bad)} such row(s) in all")
    return values


def _read_table(payload: bytes, origin: str, compressed: bool, header) -> pd.DataFrame:
    """The CSV as pandas reads it (its float parser is the reference code's)."""
    if not payload.strip():
        raise DataError(f"data file is empty: {origin}")
    compression = "gzip" if compressed else None
    try:
        with warnings.catch_warnings():
            # A row longer than the header would lose its last values: refuse it instead.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            # index_col=False: otherwise such a row silently turns the dates into the index.
            raw = pd.read_csv(io.BytesIO(payload), compression=compression, header=header, index_col=False)
            names = (pd.read_csv(io.BytesIO(payload), compression=compression, header=None, nrows=1,
                                 dtype=str).iloc[0].tolist() if header is not None else [])
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"data file is empty: {origin}") from exc
    except pd.errors.ParserWarning as exc:
        raise DataError(f"{origin}: a row has more values than the header has columns") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError, EOFError) as exc:
        raise DataError(f"cannot parse {origin} as CSV: {first_line(exc)}") from exc
    # pandas renames a repeated column (a, a.1); two channels must not share a name.
    repeated = [n for i, n in enumerate(names) if n in names[:i]]
    if repeated:
        raise DataError(f"{origin}: column {repeated[0]!r} appears twice in the header")
    return raw


def _series_frame(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Header-ed table (dates first) -> the series frame."""
    if raw.shape[1] < 2:
        raise DataError(f"{origin}: {raw.shape[1]} column(s); {_CSV_HINT}")
    if len(raw) == 0:
        raise DataError(f"{origin}: a header but no data rows")
    index = _parse_dates(raw.iloc[:, 0], origin)
    data = {str(c): _parse_channel(raw[c], origin, index) for c in raw.columns[1:]}
    return pd.DataFrame(data, index=index)


def read_series_csv(path) -> pd.DataFrame:
    """Read a multichannel CSV file (``.csv`` or ``.csv.gz``; see the module docstring).

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    pandas.DataFrame
        ``DatetimeIndex`` named ``date``, float64 columns in file order.

    Raises
    ------
    DataError
        Missing or unparsable file, fewer than two columns, a non-numeric column, a
        non-finite value, an unparsable date, repeated or decreasing dates.
    """
    return _csv_source(os.fspath(path))[0]


def _csv_source(path: str) -> tuple[pd.DataFrame, bytes]:
    payload = read_data_file(path, _choices())
    return _series_frame(_read_table(payload, path, path.endswith(".gz"), header=0), path), payload


# -- ETT (bundled) ------------------------------------------------------------------------

def _load_ett(name: str) -> tuple[pd.DataFrame, dict]:
    resource = resources.files("forecast.data").joinpath("ltsf", f"{name}.csv.gz")
    try:
        payload = gzip.decompress(resource.read_bytes())
    except (OSError, EOFError) as exc:
        raise DataError(f"the bundled file ltsf/{name}.csv.gz is missing or damaged in the installed "
                        "package; reinstall it") from exc
    digest = hashlib.sha256(payload).hexdigest()
    if digest != ETT_SHA256[name]:
        raise DataError(f"the bundled file ltsf/{name}.csv.gz is not the original {name}.csv "
                        f"(SHA-256 {digest}); reinstall the package")
    origin = f"ett:{name}"
    frame = _series_frame(_read_table(payload, origin, False, header=0), origin)
    return frame, {"bundled": f"forecast/data/ltsf/{name}.csv.gz", "sha256": digest}


# -- exchange (downloaded, cached) --------------------------------------------------------

def exchange_cache_path() -> str:
    """Where the exchange-rate file is cached (in :func:`forecast.data.yahoo.cache_dir`)."""
    return os.path.join(yahoo.cache_dir(), EXCHANGE_FILE)


def _download(url: str) -> bytes:
    """The bytes at ``url``; OSError (or HTTPException) when they cannot be had."""
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
        payload = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(payload) > MAX_DOWNLOAD_BYTES:
        raise OSError(f"more than {MAX_DOWNLOAD_BYTES} bytes")
    return payload


def _exchange_bytes() -> tuple[bytes, dict]:
    """The checked file: from the cache, else downloaded, checked, then cached."""
    path = exchange_cache_path()
    if os.path.exists(path):
        payload = read_data_file(path, _choices())
        digest = hashlib.sha256(payload).hexdigest()
        if digest != EXCHANGE_SHA256:
            raise DataError(f"the cached {path} has SHA-256 {digest}, not the expected {EXCHANGE_SHA256}; "
                            "delete it to download the file again")
        return payload, {"cache": path, "from_cache": True}
    try:
        payload = _download(EXCHANGE_URL)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise DataError(f"cannot download ltsf:exchange from {EXCHANGE_URL} ({first_line(exc)}) and nothing "
                        f"is cached; connect to the network, or download that file yourself and put it "
                        f"at {path}") from exc
    digest = hashlib.sha256(payload).hexdigest()
    if digest != EXCHANGE_SHA256:
        # Never cache it: a later run would then trust bytes nobody checked.
        raise DataError(f"the file downloaded from {EXCHANGE_URL} has SHA-256 {digest}, not the expected "
                        f"{EXCHANGE_SHA256}; refused, nothing cached")
    try:
        atomic_write_bytes(path, payload)
    except OSError:
        # An unwritable cache only costs the next run a download; the data is good.
        return payload, {"cache": None, "from_cache": False}
    return payload, {"cache": path, "from_cache": False}


def _exchange_frame(payload: bytes, origin: str) -> pd.DataFrame:
    """LSTNet's headerless table -> the reference CSV's shape (dates from 1990-01-01, OT last)."""
    raw = _read_table(payload, origin, True, header=None)
    raw.columns = [str(c) for c in range(raw.shape[1] - 1)] + ["OT"]
    index = pd.DatetimeIndex(pd.date_range(EXCHANGE_START, periods=len(raw), freq="D"), name="date").as_unit("ns")
    data = {c: _parse_channel(raw[c], origin, index) for c in raw.columns}
    return pd.DataFrame(data, index=index)


def _load_exchange() -> tuple[pd.DataFrame, dict]:
    payload, extra = _exchange_bytes()
    frame = _exchange_frame(payload, "ltsf:exchange")
    return frame, {"url": EXCHANGE_URL, "sha256": EXCHANGE_SHA256, **extra}


# -- one entry point ----------------------------------------------------------------------

def _iso(stamp: pd.Timestamp, daily: bool) -> str:
    return stamp.date().isoformat() if daily else stamp.isoformat()


def _describe(frame: pd.DataFrame) -> dict:
    daily = bool((frame.index == frame.index.normalize()).all())
    return {"rows": int(len(frame)), "columns": [str(c) for c in frame.columns],
            "first_date": _iso(frame.index[0], daily), "last_date": _iso(frame.index[-1], daily)}


def load_series(text: str) -> tuple[pd.DataFrame, dict]:
    """Load a multichannel series: ``ett:NAME``, ``ltsf:NAME`` or a CSV path.

    Parameters
    ----------
    text : str
        A ``--data`` value (see the module docstring); ``csv:path`` is read as ``path``.

    Returns
    -------
    frame : pandas.DataFrame
        ``DatetimeIndex`` named ``date``, float64 columns in file order.
    info : dict
        ``source`` ("ett", "ltsf" or "csv"), ``name``, ``spec`` (``ett:ETTh1``,
        ``ltsf:exchange`` or the path as given), ``rows``, ``columns``, ``first_date``,
        ``last_date`` (ISO; a date alone when every row is at midnight), ``sha256`` (of
        the data file); ``path`` for a CSV, ``bundled`` for ETT, ``url``, ``cache`` and
        ``from_cache`` for a download.

    Raises
    ------
    DataError
        Unknown series name, a download that fails or does not match its hash with
        nothing cached, or a CSV file that is not a clean series.
    """
    kind, rest = _split(text)
    if kind in SERIES_KINDS:
        name = canonical_series_name(kind, rest)
        frame, extra = _load_ett(name) if kind == "ett" else _load_exchange()
        info = {"source": kind, "name": name, "spec": f"{kind}:{name}"}
    else:
        path = rest if kind == "csv" else str(text or "").strip()
        if not path:
            raise DataError(f"--data is empty; use {_choices()} or a CSV path")
        frame, payload = _csv_source(path)
        info = {"source": "csv", "name": file_stem(path), "spec": path}
        extra = {"path": os.path.abspath(path), "sha256": hashlib.sha256(payload).hexdigest()}
    return frame, {**info, **_describe(frame), **extra}
