"""Parse a ``--data`` value and load the price series it names.

Three kinds of source, one result (a canonical frame, see :mod:`forecast.data.frame`):

* ``sample:TICKER`` - the bundled sample (AAPL, MSFT, IBM, GOOG; 2000-03 to 2013-03);
* ``yahoo:TICKER`` - Yahoo Finance through yfinance, cached on disk;
* ``path/to/file.csv`` (or ``csv:path``) - a Yahoo-style CSV export.

``ett:NAME`` and ``ltsf:NAME`` (the long-horizon benchmark series of
:mod:`forecast.data.series`) parse here too, so a run configuration can name them, but
they are multichannel series, not price frames: :func:`load_source` refuses them and
``--protocol ltsf`` loads them with :func:`forecast.data.series.load_series`.

``start`` and ``end`` (inclusive ISO dates) cut every source; for Yahoo they also choose
what is downloaded, and default to 2010-01-01 and 2023-12-31 there. For the sample and
CSV files ``None`` keeps the whole series.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.data import yahoo
from forecast.data.csv_file import file_stem, read_price_csv
from forecast.data.frame import parse_day
from forecast.data.sample import read_sample
from forecast.data.series import SERIES_KINDS, canonical_series_name
from forecast.errors import DataError

__all__ = ["SourceSpec", "parse_source", "load_source", "price_currency"]

_KINDS = ("sample", "yahoo", "csv") + SERIES_KINDS
_HINT = "use sample:TICKER (AAPL, MSFT, IBM, GOOG), yahoo:TICKER or a path to a CSV file"


@dataclass(frozen=True)
class SourceSpec:
    """A parsed ``--data`` value.

    Attributes
    ----------
    kind : {"sample", "yahoo", "csv", "ett", "ltsf"}
    name : str
        The ticker (sample, yahoo), the file path (csv) or the series name, spelled
        canonically (ett, ltsf: ``ETTh1``, ``exchange``).
    """

    kind: str
    name: str

    @property
    def ticker(self) -> str:
        """The ticker, the file's stem for a CSV, or the series name as spelled."""
        if self.kind in SERIES_KINDS:
            return self.name
        if self.kind == "csv":
            return file_stem(self.name)
        return self.name.upper()

    def __str__(self) -> str:
        if self.kind == "csv":
            return self.name
        return f"{self.kind}:{self.ticker}"


def parse_source(text: str) -> SourceSpec:
    """Parse ``sample:AAPL``, ``yahoo:MSFT``, ``csv:file``, ``ett:ETTh1``, ``ltsf:exchange`` or a file path.

    Raises
    ------
    DataError
        Empty value, unknown ``kind:`` prefix, unknown series name, or a bare word that
        is no file.
    """
    text = (text or "").strip()
    if not text:
        raise DataError(f"--data is empty; {_HINT}")
    kind, sep, rest = text.partition(":")
    if sep and kind.lower() in _KINDS:
        kind = kind.lower()
        if kind in SERIES_KINDS:
            # Spelled as the data set spells it (ETTh1), not upper-cased like a ticker.
            return SourceSpec(kind, canonical_series_name(kind, rest))
        if not rest.strip():
            raise DataError(f"--data {text!r} names no {'file' if kind == 'csv' else 'ticker'}; {_HINT}")
        return SourceSpec(kind, rest.strip())
    looks_like_path = (os.sep in text or text.lower().endswith((".csv", ".csv.gz", ".txt"))
                       or os.path.exists(text))
    if sep and not looks_like_path and len(kind) > 1:
        raise DataError(f"unknown data source {kind!r} in --data {text!r}; {_HINT}")
    if not looks_like_path:
        raise DataError(f"--data {text!r} is neither a source nor an existing file; {_HINT}")
    return SourceSpec("csv", text)


def _cut(frame: pd.DataFrame, start, end, origin: str) -> pd.DataFrame:
    lo = pd.Timestamp(parse_day(start, "--start")) if start else None
    hi = pd.Timestamp(parse_day(end, "--end")) if end else None
    if lo is not None and hi is not None and hi <= lo:
        raise DataError(f"--end ({hi.date()}) must come after --start ({lo.date()})")
    # Masks, not .loc[lo:hi]: a date outside pandas' nanosecond range (0001-01-01) has
    # another resolution, and .loc slicing then raises KeyError instead of selecting.
    keep = np.ones(len(frame), dtype=bool)
    if lo is not None:
        keep &= frame.index >= lo
    if hi is not None:
        keep &= frame.index <= hi
    out = frame[keep]
    if len(out) == 0:
        raise DataError(f"{origin}: no rows between {start or 'the start'} and {end or 'the end'} "
                        f"(the data covers {frame.index[0].date()} to {frame.index[-1].date()})")
    return out


def load_source(spec: SourceSpec | str, start=None, end=None, refresh: bool = False):
    """Load the canonical price frame of a source.

    Parameters
    ----------
    spec : SourceSpec or str
        A parsed or raw ``--data`` value.
    start, end : str or None
        Inclusive ISO dates (see the module docstring).
    refresh : bool
        Yahoo only: download even if cached.

    Returns
    -------
    frame : pandas.DataFrame
        The canonical frame.
    info : dict
        ``source`` (kind), ``ticker``, ``spec`` (string form), plus ``path`` for CSV
        and ``cache``/``from_cache`` for Yahoo.

    Raises
    ------
    DataError
        Among others, for an ``ett:`` or ``ltsf:`` series, which is no price frame.
    """
    if isinstance(spec, str):
        spec = parse_source(spec)
    if spec.kind in SERIES_KINDS:
        raise DataError(f"{spec} is a multichannel benchmark series: use --protocol ltsf")
    info = {"source": spec.kind, "ticker": spec.ticker, "spec": str(spec)}
    if spec.kind == "sample":
        frame = read_sample(spec.name)
    elif spec.kind == "yahoo":
        frame, extra = yahoo.load_yahoo(spec.name, start, end, refresh=refresh)
        info.update(extra)
    else:
        frame = read_price_csv(spec.name)
        info["path"] = os.path.abspath(spec.name)
    if spec.kind != "yahoo" or start or end:
        frame = _cut(frame, start, end, str(spec))
    return frame, info


def price_currency(info: dict) -> str:
    """Currency of a source's prices, for labels.

    The source's own when its description says (``currency``); USD for the bundled
    sample and Yahoo (US tickers); "price units" for a CSV file, which does not say.
    ``info`` is :func:`load_source`'s description (``source`` may also be a raw
    ``--data`` value).
    """
    if info.get("currency"):
        return str(info["currency"])
    source = str(info.get("source", ""))
    return "price units" if source.startswith("csv") or source.endswith(".csv") else "USD"
