"""One price-frame shape for every source, and the NaN-gap policy.

Every source (bundled sample, Yahoo, CSV) ends up as a *canonical frame*: a
``DatetimeIndex`` named ``date`` (sorted, unique, timezone-naive) and float64 columns
drawn from ``open, high, low, close, adj_close, volume``.

:func:`prepare_prices` then turns a canonical frame into the columns a run uses:

* **Adjusted prices.** When ``adj_close`` is present, ``close`` becomes ``adj_close`` and
  ``open``/``high``/``low`` are multiplied by the same day's ``adj_close / close``, so
  splits and dividends do not show up as price jumps. ``volume`` is left as reported.
* **Impossible values** (in the columns the run needs): an infinite value, a magnitude
  above :data:`MAX_MAGNITUDE` (its square, in any error metric, would overflow 64-bit
  floats) or a negative volume is refused with a :class:`~forecast.errors.DataError`
  naming the column and the date. Unlike a missing value, such a value is not a gap to
  fill: the file is wrong there.
* **NaN gaps** (the policy, applied to the columns the run needs only):
  leading rows with a missing value are dropped (nothing earlier exists to fill them);
  an interior gap of at most :data:`MAX_FILL_GAP` consecutive rows is forward-filled
  with the last observed value, which uses only the past and so adds no look-ahead;
  a longer gap is refused with a :class:`~forecast.errors.DataError`, because inventing a
  week or more of flat prices would distort both training and evaluation.
"""
from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd

from forecast.errors import DataError

__all__ = [
    "parse_day",
    "CANONICAL_COLUMNS",
    "BASE_FEATURES",
    "MAX_FILL_GAP",
    "MAX_MAGNITUDE",
    "normalise_frame",
    "prepare_prices",
    "describe_frame",
]

CANONICAL_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
#: Features read straight from a price frame (``return`` is derived later).
BASE_FEATURES = ("open", "high", "low", "close", "volume")
#: Longest run of missing rows that is forward-filled rather than refused.
MAX_FILL_GAP = 5
#: Largest magnitude a price or volume may have. Squares of values above ~1.3e154
#: overflow float64 (the squared errors of the metrics, the standard scaler's variance),
#: and their sums over many rows need room below that.
MAX_MAGNITUDE = 1e150

_ALIASES = {
    "date": "date",
    "datetime": "date",
    "timestamp": "date",
    "time": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adjclose": "adj_close",
    "adjustedclose": "adj_close",
    "volume": "volume",
}


def parse_day(text, option: str) -> date:
    """An ISO date (``2010-01-01``) given to ``option``; anything else is a DataError.

    Deliberately strict: pandas would also accept ``now`` or ``01/02/2010``, whose
    meaning depends on the day or the locale.
    """
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError as exc:
        raise DataError(f"{option} must be a date like 2010-01-01, got {text!r}") from exc


def _key(name) -> str:
    # "Adj Close", "adj_close" and "ADJ-CLOSE" all mean the same column.
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _flatten_columns(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Drop the ticker level of yfinance's ``(Price, Ticker)`` MultiIndex columns."""
    if not isinstance(raw.columns, pd.MultiIndex):
        return raw
    for level in range(raw.columns.nlevels):
        keys = {_key(v) for v in raw.columns.get_level_values(level)}
        if "close" in keys or "adjclose" in keys:
            others = [lv for lv in range(raw.columns.nlevels) if lv != level]
            for lv in others:
                if raw.columns.get_level_values(lv).nunique() > 1:
                    raise DataError(f"{origin}: holds several tickers; give one ticker per run")
            out = raw.copy()
            out.columns = raw.columns.get_level_values(level)
            return out
    raise DataError(f"{origin}: no Close column found")


def normalise_frame(raw: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Bring a raw price table into the canonical shape.

    Parameters
    ----------
    raw : pandas.DataFrame
        Prices with a date column or a date index; column names are matched
        case-insensitively, ignoring spaces and punctuation (``Adj Close`` = ``adj_close``).
        yfinance's MultiIndex columns are accepted for a single ticker.
    origin : str
        Where the table came from, for error messages.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``date`` (sorted, unique, naive), float64 canonical columns.

    Raises
    ------
    DataError
        No rows, no date or close column, unparsable dates or numbers, duplicate dates.
    """
    frame = _flatten_columns(raw, origin)
    names = [_key(c) for c in frame.columns]
    if "date" not in {_ALIASES.get(n) for n in names}:
        index_name = _key(frame.index.name) if frame.index.name is not None else ""
        if isinstance(frame.index, pd.DatetimeIndex) or _ALIASES.get(index_name) == "date":
            frame = frame.rename_axis("date").reset_index()
            names = [_key(c) for c in frame.columns]
    mapping = {}
    for col, key in zip(frame.columns, names):
        canon = _ALIASES.get(key)
        if canon is None:
            continue  # extra columns (Dividends, Stock Splits, ...) are not used
        if canon in mapping.values():
            raise DataError(f"{origin}: column {canon!r} appears more than once")
        mapping[col] = canon
    if "date" not in mapping.values():
        raise DataError(f"{origin}: no Date column (columns: {', '.join(map(str, frame.columns))})")
    if not {"close", "adj_close"} & set(mapping.values()):
        raise DataError(f"{origin}: no Close or Adj Close column (columns: {', '.join(map(str, frame.columns))})")
    frame = frame[list(mapping)].rename(columns=mapping)
    if len(frame) == 0:
        raise DataError(f"{origin}: holds no rows")

    dates = _parse_dates(frame["date"], origin)
    out = pd.DataFrame(index=pd.DatetimeIndex(dates, name="date"))
    for col in CANONICAL_COLUMNS:
        if col in frame.columns:
            out[col] = _parse_numbers(frame[col], col, origin)
    if out.index.has_duplicates:
        dup = out.index[out.index.duplicated()][0]
        raise DataError(f"{origin}: date {dup.date()} appears more than once")
    out = out.sort_index()
    if out.get("adj_close") is not None and out["adj_close"].isna().all():
        out = out.drop(columns="adj_close")
    if "close" not in out.columns:
        # Adj Close alone is still a price series; mark it as both.
        out["close"] = out["adj_close"]
    return out


def _parse_dates(col: pd.Series, origin: str) -> np.ndarray:
    if col.isna().any():
        raise DataError(f"{origin}: {int(col.isna().sum())} row(s) have no date")
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        dates = col.dt.tz_localize(None)
    else:
        dates = pd.to_datetime(col, errors="coerce")
        if isinstance(dates.dtype, pd.DatetimeTZDtype):
            dates = dates.dt.tz_localize(None)
        bad = dates.isna()
        if bad.any():
            raise DataError(f"{origin}: cannot parse date {col[bad].iloc[0]!r}")
    # Daily bars: keep the calendar day only.
    return dates.dt.normalize().to_numpy()


def _parse_numbers(col: pd.Series, name: str, origin: str) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce")
    # Coercion turns junk into NaN; only real blanks may be NaN, junk is an error.
    junk = values.isna() & col.notna() & (col.astype(str).str.strip() != "")
    if junk.any():
        raise DataError(f"{origin}: non-numeric value {col[junk].iloc[0]!r} in column {name!r}")
    return values.to_numpy(dtype=np.float64)


def _raw_columns_for(features) -> list[str]:
    """Columns of the canonical frame that the requested features depend on."""
    need = {"close"}  # the target and the price-unit metrics always need close
    for f in features:
        if f in ("open", "high", "low"):
            need.add(f)
        elif f == "volume":
            need.add("volume")
    return sorted(need)


def _impossible(col: str, values: np.ndarray) -> np.ndarray:
    """Mask of the values of column ``col`` no run can use (NaN is a gap, not one of them)."""
    bad = np.isinf(values) | (np.abs(np.nan_to_num(values)) > MAX_MAGNITUDE)
    if col == "volume":
        bad |= np.nan_to_num(values) < 0
    return bad


def _check_values(frame: pd.DataFrame, columns: list[str], origin: str) -> None:
    """Refuse infinite, overflowing and negative-volume values, naming column and date."""
    for col in columns:
        values = frame[col].to_numpy(dtype=np.float64)
        bad = _impossible(col, values)
        if not bad.any():
            continue
        i = int(np.argmax(bad))
        value = values[i]
        if np.isinf(value):
            why = "prices and volumes must be finite numbers"
        elif abs(value) > MAX_MAGNITUDE:
            why = f"magnitudes above {MAX_MAGNITUDE:g} overflow the squared errors"
        else:
            why = "a volume cannot be negative"
        more = f" ({int(bad.sum())} such rows in all)" if bad.sum() > 1 else ""
        raise DataError(f"{origin}: column {col!r} holds {value:g} on {frame.index[i].date()}{more}; {why}, "
                        "fix or remove the row")


def _fill_gaps(frame: pd.DataFrame, columns: list[str], origin: str) -> pd.DataFrame:
    """Apply the NaN policy to ``columns`` (see the module docstring)."""
    sub = frame[columns]
    complete = sub.notna().all(axis=1).to_numpy()
    if not complete.any():
        raise DataError(f"{origin}: no row has all of {', '.join(columns)}")
    first = int(np.argmax(complete))
    frame = frame.iloc[first:]
    for col in columns:
        missing = frame[col].isna().to_numpy()
        if not missing.any():
            continue
        # Length of each run of consecutive missing rows.
        run_id = np.cumsum(~missing)
        runs = pd.Series(run_id[missing]).value_counts()
        longest = int(runs.max())
        if longest > MAX_FILL_GAP:
            start = frame.index[missing][np.searchsorted(run_id[missing], runs.idxmax())]
            raise DataError(
                f"{origin}: column {col!r} has a gap of {longest} missing rows from {start.date()}; "
                f"at most {MAX_FILL_GAP} are forward-filled, clean the data first"
            )
    frame = frame.copy()
    frame[columns] = frame[columns].ffill()
    return frame


def prepare_prices(frame: pd.DataFrame, features, origin: str) -> pd.DataFrame:
    """Adjusted, gap-filled columns ``close`` plus the requested base features.

    Parameters
    ----------
    frame : pandas.DataFrame
        A canonical frame (see :func:`normalise_frame`).
    features : sequence of str
        Requested features; ``open high low close volume`` come from the frame,
        others (``return``) are derived later and ignored here.
    origin : str
        For error messages.

    Returns
    -------
    pandas.DataFrame
        Columns ``close`` and the requested base features, no NaN.
    """
    need = _raw_columns_for(features)
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise DataError(f"{origin}: feature column(s) {', '.join(missing)} not in the data "
                        f"(it has {', '.join(frame.columns)})")
    adjusted = "adj_close" in frame.columns
    cols = need + (["adj_close"] if adjusted else [])
    _check_values(frame, cols, origin)
    work = _fill_gaps(frame, cols, origin)
    out = pd.DataFrame(index=work.index)
    if adjusted:
        factor = (work["adj_close"] / work["close"]).to_numpy()
        out["close"] = work["adj_close"]
        for col in ("open", "high", "low"):
            if col in need:
                if not np.all(np.isfinite(factor)):
                    raise DataError(f"{origin}: Close has zeros, so Open/High/Low cannot be "
                                    "adjusted with Adj Close / Close")
                out[col] = work[col] * factor
    else:
        out["close"] = work["close"]
        for col in ("open", "high", "low"):
            if col in need:
                out[col] = work[col]
    if "volume" in need:
        out["volume"] = work["volume"]
    return out


def describe_frame(frame: pd.DataFrame) -> dict:
    """Rows, date range, columns and NaN counts of a canonical frame (before the policy)."""
    return {
        "rows": int(len(frame)),
        "first_date": str(frame.index[0].date()) if len(frame) else None,
        "last_date": str(frame.index[-1].date()) if len(frame) else None,
        "columns": list(frame.columns),
        "nan_counts": {c: int(frame[c].isna().sum()) for c in frame.columns},
    }
