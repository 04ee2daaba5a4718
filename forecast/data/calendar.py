"""The dates after a series' last row: an exchange's trading days, or the data's own frequency.

A forecast of the next ``K`` closes of a stock is a forecast for the next ``K`` sessions of
its exchange: no weekends, no exchange holidays (Good Friday included), no unscheduled
closures. Those come from exchange-calendars (one calendar per ISO 10383 market code:
``XNYS`` New York, ``XLON`` London...). A series without an exchange (hourly sensor data,
a daily series that includes weekends) steps on at its own frequency, read from its dates.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from forecast.errors import DataError, UserInputError

__all__ = ["DEFAULT_EXCHANGE", "exchange_for", "next_sessions", "data_frequency", "future_dates"]

#: The exchange of the bundled tickers and of a Yahoo symbol without a market suffix.
DEFAULT_EXCHANGE = "XNYS"
#: Yahoo's market suffixes and their exchanges (the common ones; ``--calendar`` names any other).
_YAHOO_SUFFIXES = {"L": "XLON", "DE": "XETR", "F": "XFRA", "PA": "XPAR", "AS": "XAMS", "BR": "XBRU",
                   "MI": "XMIL", "MC": "XMAD", "SW": "XSWX", "ST": "XSTO", "HE": "XHEL", "CO": "XCSE",
                   "OL": "XOSL", "T": "XTKS", "HK": "XHKG", "TO": "XTSE", "AX": "XASX", "NS": "XBOM",
                   "BO": "XBOM", "SS": "XSHG", "SZ": "XSHG", "KS": "XKRX", "SA": "BVMF", "JO": "XJSE"}


def exchange_for(source_kind: str, ticker: str | None) -> str | None:
    """The exchange whose sessions follow a source's last row, or ``None`` for a CSV
    (whose dates say its frequency; ``--calendar`` names an exchange for it)."""
    if source_kind == "sample":
        return DEFAULT_EXCHANGE
    if source_kind == "yahoo":
        match = re.search(r"\.([A-Za-z]{1,3})$", ticker or "")
        if match is None:
            return DEFAULT_EXCHANGE
        return _YAHOO_SUFFIXES.get(match.group(1).upper())
    return None


def next_sessions(exchange: str, last, count: int) -> pd.DatetimeIndex:
    """The ``count`` sessions of ``exchange`` after the day ``last``.

    Raises
    ------
    UserInputError
        An exchange code exchange-calendars does not know.
    """
    import exchange_calendars as xcals     # only the forecast of future dates needs it

    last = pd.Timestamp(last).normalize()
    # A window a little wider than needed: ~252 sessions a year, so 2 calendar days per
    # session plus a month covers any run of holidays.
    try:
        cal = xcals.get_calendar(exchange, start=last - pd.Timedelta(days=14),
                                 end=last + pd.Timedelta(days=2 * count + 31))
    except xcals.errors.InvalidCalendarName:
        raise UserInputError(f"--calendar {exchange}: not an exchange code exchange-calendars knows "
                             "(e.g. XNYS, XLON, XETR, XTKS)") from None
    sessions = cal.sessions[cal.sessions > last]
    if len(sessions) < count:
        raise UserInputError(f"the {exchange} calendar lists only {len(sessions)} sessions after {last.date()}; "
                             f"ask fewer --steps than {count}")
    return pd.DatetimeIndex(sessions[:count]).tz_localize(None)


def data_frequency(dates) -> pd.DateOffset | pd.Timedelta:
    """The step between the rows of ``dates``: pandas' inferred frequency of the last rows
    (business days for a daily series that skips weekends), else the most common gap.

    Raises
    ------
    DataError
        Fewer than three dates, or dates that do not increase.
    """
    index = pd.DatetimeIndex(dates)
    if len(index) < 3:
        raise DataError("the data has fewer than 3 rows: its frequency cannot be read from its dates")
    tail = index[-64:]
    gaps = np.diff(tail.asi8)
    if (gaps <= 0).any():
        raise DataError("the data's dates do not increase: its frequency cannot be read from them")
    inferred = pd.infer_freq(tail)
    if inferred is not None:
        return pd.tseries.frequencies.to_offset(inferred)
    values, counts = np.unique(gaps, return_counts=True)
    step = pd.Timedelta(int(values[np.argmax(counts)]), unit="ns")
    no_weekends = not (tail.dayofweek >= 5).any()
    if step == pd.Timedelta(days=1) and no_weekends:
        return pd.offsets.BDay()          # daily prices with holidays: business days
    return step


def future_dates(dates, count: int, exchange: str | None) -> tuple[pd.DatetimeIndex, str]:
    """``(the count dates after the data, how they were found)``: the sessions of
    ``exchange``, or the data's own frequency when ``exchange`` is None."""
    last = pd.DatetimeIndex(dates)[-1]
    if exchange is not None:
        return next_sessions(exchange, last, count), f"{exchange} sessions (exchange-calendars)"
    step = data_frequency(dates)
    name = getattr(step, "freqstr", None) or str(step)
    return pd.DatetimeIndex([last + step * k for k in range(1, count + 1)]), f"the data's frequency ({name})"
