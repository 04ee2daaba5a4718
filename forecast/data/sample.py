"""The bundled sample: daily prices of AAPL, MSFT, IBM and GOOG, 2000-03 to 2013-03.

The files live in ``forecast/data/sample/<TICKER>.csv.gz`` and are read through
:mod:`importlib.resources`, so they are found in a source checkout, after
``pip install -e .`` and after a normal install alike. See ``sample/PROVENANCE.md``
for where they come from and how to regenerate them.
"""
from __future__ import annotations

from importlib import resources

import pandas as pd

from forecast.data.csv_file import read_price_csv_bytes
from forecast.errors import DataError

__all__ = ["SAMPLE_TICKERS", "read_sample"]

SAMPLE_TICKERS = ("AAPL", "MSFT", "IBM", "GOOG")


def read_sample(ticker: str) -> pd.DataFrame:
    """Canonical frame of a bundled ticker.

    Parameters
    ----------
    ticker : str
        One of :data:`SAMPLE_TICKERS` (any case).

    Raises
    ------
    DataError
        Unknown ticker, or the package was installed without its data files.
    """
    key = ticker.strip().upper()
    if key not in SAMPLE_TICKERS:
        raise DataError(f"no bundled sample for {ticker!r}; choose one of "
                        f"{', '.join('sample:' + t for t in SAMPLE_TICKERS)}")
    resource = resources.files("forecast.data").joinpath("sample", f"{key}.csv.gz")
    try:
        payload = resource.read_bytes()
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"the bundled sample file {key}.csv.gz is missing from the installed "
                        "package; reinstall it or run scripts/make_sample_data.py") from exc
    return read_price_csv_bytes(payload, origin=f"sample:{key}", gzip=True)
