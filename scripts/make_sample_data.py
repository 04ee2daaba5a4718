#!/usr/bin/env python
"""Regenerate the bundled sample prices in ``forecast/data/sample/``.

Source: the ``bokeh_sampledata`` package (module ``bokeh_sampledata.stocks``, file
``stocks.csv.gz``), which ships daily prices from the Quandl WIKI database, declared
public domain by Quandl. This script rewrites one Yahoo-style file per ticker,
``<TICKER>.csv.gz`` with columns ``Date, Open, High, Low, Close, Adj Close, Volume``.
The gzip header carries no timestamp, so rerunning it gives byte-identical files.

Usage::

    pip install bokeh_sampledata        # or: pip install -e ".[sampledata]"
    python scripts/make_sample_data.py  # writes forecast/data/sample/*.csv.gz
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys

TICKERS = ("AAPL", "MSFT", "IBM", "GOOG")
COLUMNS = {"date": "Date", "open": "Open", "high": "High", "low": "Low", "close": "Close",
           "adj_close": "Adj Close", "volume": "Volume"}
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "forecast", "data", "sample")


def build_csv(data, ticker: str) -> bytes:
    """Gzip-compressed Yahoo-style CSV of one ticker from the bokeh_sampledata frame."""
    rows = data[data["ticker"] == ticker].sort_values("date")
    if rows.empty:
        raise SystemExit(f"bokeh_sampledata has no rows for {ticker}")
    frame = rows[list(COLUMNS)].rename(columns=COLUMNS)
    frame["Date"] = frame["Date"].dt.strftime("%Y-%m-%d")
    text = frame.to_csv(index=False, lineterminator="\n")
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.normpath(DEFAULT_OUT), help="target directory")
    args = parser.parse_args(argv)
    try:
        from bokeh_sampledata import stocks
    except ImportError:
        print("error: needs the bokeh_sampledata package (pip install bokeh_sampledata)", file=sys.stderr)
        return 2
    data = stocks.data
    os.makedirs(args.out, exist_ok=True)
    for ticker in TICKERS:
        payload = build_csv(data, ticker)
        path = os.path.join(args.out, f"{ticker}.csv.gz")
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
        n = int((data["ticker"] == ticker).sum())
        print(f"{path}: {n} rows, {len(payload)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
