"""Shared pieces of the data / training / CLI tests: synthetic prices and a tiny model.

Nothing here touches the network. The stand-in model keeps the optimiser and training
loop tests independent of ``models/``; the end-to-end tests use ``build_model``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from engine.module import Module

YAHOO_COLUMNS = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]


def price_frame(n: int = 300, seed: int = 0, start: str = "2015-01-02", adj_factor: float = 1.0) -> pd.DataFrame:
    """A Yahoo-style table of ``n`` business days of a random walk (positive prices)."""
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    spread = np.abs(rng.normal(0, 0.005, n)) * close
    return pd.DataFrame({
        "Date": pd.bdate_range(start, periods=n).strftime("%Y-%m-%d"),
        "Open": close * (1 + rng.normal(0, 0.002, n)),
        "High": close + spread,
        "Low": close - spread,
        "Close": close,
        "Adj Close": close * adj_factor,
        "Volume": rng.integers(1_000_000, 5_000_000, n),
    })


def offline_yahoo(tmp_path, monkeypatch) -> None:
    """No test may reach Yahoo: an empty private cache and a download that fails."""
    import yfinance

    monkeypatch.setenv("MAMBA_GRU_CACHE", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise ConnectionError("tests run offline")
    monkeypatch.setattr(yfinance, "download", no_network)


def write_csv(path, frame: pd.DataFrame) -> str:
    """Write ``frame`` as CSV without index; returns the path as str."""
    frame.to_csv(path, index=False)
    return str(path)


def yfinance_frame(frame: pd.DataFrame, ticker: str, multi_level_index: bool = True,
                   auto_adjust: bool = False) -> pd.DataFrame:
    """What ``yf.download(ticker, ...)`` of yfinance 1.7 returns for one ticker.

    A ``DatetimeIndex`` named ``Date``; columns sorted by name; with
    ``multi_level_index`` a ``(Price, Ticker)`` MultiIndex, else flat with no name.
    ``auto_adjust=True`` drops ``Adj Close`` (OHLC already adjusted).
    """
    out = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame["Date"]), name="Date"))
    out = out.drop(columns="Date")
    if auto_adjust:
        out = out.drop(columns="Adj Close")
    out = out[sorted(out.columns)]
    if multi_level_index:
        out.columns = pd.MultiIndex.from_product([out.columns, [ticker]], names=["Price", "Ticker"])
    else:
        out.columns.name = None
    return out


class TinyModel(Module):
    """``y = tanh(x[:, -1] @ W1.T) @ W2.T + b``: the layer contract in ten lines.

    ``nan_after`` makes every forward pass after that many calls return NaN, to test
    the non-finite-loss handling.
    """

    def __init__(self, input_size: int, horizon: int = 1, hidden: int = 4, seed: int = 0,
                 dtype=np.float64, nan_after: int | None = None):
        super().__init__(backend="numpy", dtype=dtype, seed=seed)
        rng = self.rng()
        self.add_param("w1", rng.normal(0, 0.5, (hidden, input_size)))
        self.add_param("w2", rng.normal(0, 0.5, (horizon, hidden)))
        self.add_param("bias", np.zeros(horizon))
        self.nan_after = nan_after
        self.calls = 0
        self.config = {"input_size": input_size, "horizon": horizon}

    def forward(self, x):
        self.calls += 1
        x = self._as_input(x)
        self._x = x[:, -1]
        self._h = np.tanh(self._x @ self.p("w1").T)
        y = self._h @ self.p("w2").T + self.p("bias")
        if self.nan_after is not None and self.calls > self.nan_after:
            y = y * np.nan
        return y

    def backward(self, dy):
        dy = self._as_input(dy)
        self.g("w2")[...] += dy.T @ self._h
        self.g("bias")[...] += dy.sum(axis=0)
        dpre = (dy @ self.p("w2")) * (1 - self._h ** 2)
        self.g("w1")[...] += dpre.T @ self._x
        return None
