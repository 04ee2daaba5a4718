"""Data sources, the canonical frame, the NaN policy, windows, split and scalers."""
from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd
import pytest

from forecast.data import (MAX_FILL_GAP, build_dataset, load_source, normalise_frame, parse_source,
                         scaler_from_dict, scaler_to_dict)
from forecast.data.scaling import fit_scaler
from forecast.data import yahoo
from forecast.data.windows import split_bounds, window_parts, window_rows
from forecast.errors import DataError, UserInputError
from tests.pipeline_helpers import price_frame, write_csv, yfinance_frame


# -- sources -----------------------------------------------------------------------------

def test_bundled_sample_loads_through_package_resources():
    frame, info = load_source("sample:aapl")
    assert info["source"] == "sample" and info["ticker"] == "AAPL"
    assert str(frame.index[0].date()) == "2000-03-01" and str(frame.index[-1].date()) == "2013-03-01"
    assert len(frame) == 3270
    assert list(frame.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    assert frame.index.is_monotonic_increasing and not frame.isna().any().any()


@pytest.mark.parametrize("ticker", ["MSFT", "IBM", "GOOG"])
def test_every_bundled_ticker_is_there(ticker):
    frame, _ = load_source(f"sample:{ticker}")
    assert len(frame) > 2000


def test_sample_unknown_ticker_names_the_choices():
    with pytest.raises(DataError, match="sample:AAPL"):
        load_source("sample:TSLA")


def test_sample_cut_by_dates_inclusive():
    frame, _ = load_source("sample:IBM", start="2005-01-03", end="2005-01-31")
    assert str(frame.index[0].date()) == "2005-01-03" and str(frame.index[-1].date()) == "2005-01-31"


def test_csv_columns_are_case_insensitive_and_adj_close_is_preferred(tmp_path):
    raw = price_frame(50, adj_factor=0.5)
    raw.columns = ["DATE", "open", "HIGH", "low", "close", "adj_close", "VOLUME"]
    path = write_csv(tmp_path / "p.csv", raw)
    frame, info = load_source(path)
    assert info["source"] == "csv" and info["ticker"] == "p"
    ds = build_dataset(frame, features=("open", "close"), seq_len=5, split=(0.6, 0.2), window_norm="none")
    # close is the adjusted close, open is scaled by the same day's adj/close factor
    adj = raw["adj_close"].to_numpy()
    np.testing.assert_allclose(ds.base_price, adj[4:4 + len(ds.base_price)])
    opened = ds.feature_scaler.inverse_transform(ds.X[:, -1, :])[:, 0]
    np.testing.assert_allclose(opened, 0.5 * raw["open"].to_numpy()[4:4 + len(opened)])
    # Relative to the window's last adjusted close, the adjustment factor cancels.
    rel = build_dataset(frame, features=("open", "close"), seq_len=5, split=(0.6, 0.2), window_norm="last")
    np.testing.assert_allclose(rel.base_price, ds.base_price)
    opened = rel.feature_scaler.inverse_transform(rel.X[:, -1, :])[:, 0]
    n = len(opened)
    np.testing.assert_allclose(opened, 0.5 * raw["open"].to_numpy()[4:4 + n] / adj[4:4 + n] - 1)


def test_csv_without_adj_close_uses_close(tmp_path):
    raw = price_frame(40).drop(columns="Adj Close")
    frame, _ = load_source(write_csv(tmp_path / "p.csv", raw))
    assert "adj_close" not in frame.columns
    np.testing.assert_allclose(frame["close"].to_numpy(), raw["Close"].to_numpy())


def test_csv_saved_from_yfinance_multiindex_is_read(tmp_path):
    raw = price_frame(30)
    path = tmp_path / "yf.csv"
    yfinance_frame(raw, "AAPL", multi_level_index=True).to_csv(path)
    frame, _ = load_source(str(path))
    assert len(frame) == 30
    np.testing.assert_allclose(frame["adj_close"].to_numpy(), raw["Adj Close"].to_numpy())


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"Date,Close\n2020-01-02,1\n2020-01-02,2\n", "more than once"),
    (b"Date,Close\nnot-a-date,1\n", "cannot parse date"),
    (b"Date,Close\n2020-01-02,abc\n", "non-numeric"),
    (b"Day,Price\n2020-01-02,1\n", "no Date column"),
    (b"Date,Volume\n2020-01-02,1\n", "no Close"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "cannot parse"),
])
def test_bad_csv_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_source(str(path))


def test_missing_csv_names_the_alternatives(tmp_path):
    with pytest.raises(DataError, match="sample:TICKER"):
        load_source(str(tmp_path / "nope.csv"))


@pytest.mark.parametrize("text, kind", [("sample:MSFT", "sample"), ("yahoo:ibm", "yahoo"),
                                        ("csv:x.txt", "csv"), ("dir/prices.csv", "csv")])
def test_parse_source(text, kind):
    assert parse_source(text).kind == kind


@pytest.mark.parametrize("text", ["ftp:AAPL", "AAPL", "", "sample:"])
def test_parse_source_refuses_unknown(text):
    with pytest.raises(UserInputError):
        parse_source(text)


# -- Yahoo: fake download, cache, offline -------------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MAMBA_GRU_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_download(frame, calls, fail=False):
    def download(tickers, start=None, end=None, auto_adjust=True, progress=True,
                 multi_level_index=True, **kw):
        calls.append({"tickers": tickers, "start": start, "end": end, "auto_adjust": auto_adjust,
                      "multi_level_index": multi_level_index, **kw})
        if fail:
            # What yfinance 1.7 returns when every request failed: no rows, (Price, Ticker) columns.
            empty = pd.DataFrame(columns=pd.MultiIndex.from_product(
                [["Adj Close", "Close", "High", "Low", "Open", "Volume"], [tickers]],
                names=["Price", "Ticker"]), index=pd.DatetimeIndex([], name="Date"))
            return empty if multi_level_index else empty.droplevel(1, axis=1)
        sel = frame[(frame["Date"] >= start) & (frame["Date"] < end)]
        return yfinance_frame(sel, tickers, multi_level_index=multi_level_index, auto_adjust=auto_adjust)
    return download


def test_yahoo_downloads_normalises_and_caches(cache, monkeypatch):
    import yfinance

    raw = price_frame(400, start="2019-12-02")
    calls = []
    monkeypatch.setattr(yfinance, "download", _fake_download(raw, calls))
    frame, info = load_source("yahoo:msft", start="2020-01-01", end="2020-03-31")
    assert calls and calls[0]["tickers"] == "MSFT" and calls[0]["auto_adjust"] is False
    assert calls[0]["end"] == "2020-04-01"  # our end is inclusive, yfinance's exclusive
    assert info["from_cache"] is False and os.path.exists(info["cache"])
    assert info["cache"].startswith(str(cache))
    assert str(frame.index[0].date()) == "2020-01-01" and str(frame.index[-1].date()) == "2020-03-31"
    with gzip.open(info["cache"], "rt") as fh:
        assert fh.readline().strip() == "Date,Open,High,Low,Close,Adj Close,Volume"

    # Offline now: the cached request is served without calling yfinance.
    def offline(*a, **k):
        raise OSError("network is unreachable")
    monkeypatch.setattr(yfinance, "download", offline)
    again, info2 = load_source("yahoo:MSFT", start="2020-01-01", end="2020-03-31")
    assert info2["from_cache"] is True
    pd.testing.assert_frame_equal(again, frame, check_freq=False)
    # Even a forced refresh falls back to the cache when Yahoo cannot be reached.
    third, info3 = load_source("yahoo:MSFT", start="2020-01-01", end="2020-03-31", refresh=True)
    assert info3["from_cache"] is True and len(third) == len(frame)


def test_yahoo_multiindex_columns_are_flattened(cache, monkeypatch):
    import yfinance

    raw = price_frame(60, start="2021-01-04")
    calls = []
    fake = _fake_download(raw, calls)
    # A yfinance that ignores multi_level_index=False (older versions) still works.
    monkeypatch.setattr(yfinance, "download", lambda *a, **k: fake(*a, **{**k, "multi_level_index": True}))
    frame, _ = load_source("yahoo:AAPL", start="2021-01-01", end="2021-02-26")
    assert list(frame.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    assert len(frame) > 30


def test_yahoo_offline_with_empty_cache_names_the_alternatives(cache, monkeypatch):
    import yfinance

    monkeypatch.setattr(yfinance, "download", _fake_download(None, [], fail=True))
    with pytest.raises(DataError) as err:
        load_source("yahoo:AAPL")
    msg = str(err.value)
    assert "sample:AAPL" in msg and "CSV" in msg and "\n" not in msg
    assert not list(cache.rglob("*.csv.gz"))


def test_yahoo_download_exception_is_offline_too(cache, monkeypatch):
    import yfinance

    def boom(*a, **k):
        raise ConnectionError("no route to host")
    monkeypatch.setattr(yfinance, "download", boom)
    with pytest.raises(DataError, match="unreachable"):
        load_source("yahoo:IBM", start="2020-01-01", end="2020-02-01")


# -- NaN policy --------------------------------------------------------------------------

def _frame_with_gap(n_missing: int, column: str = "Close", at: int = 50):
    raw = price_frame(200).drop(columns="Adj Close")
    raw.loc[at:at + n_missing - 1, column] = np.nan
    return normalise_frame(raw, "test")


def test_short_gaps_are_forward_filled_with_the_last_price():
    frame = _frame_with_gap(MAX_FILL_GAP)
    ds = build_dataset(frame, seq_len=5)
    closes = frame["close"].to_numpy()
    # Row 50..54 take the value of row 49: only the past is used.
    filled = ds.history_price[50 - 4, :]  # window whose last input row is 50
    assert filled[-1] == closes[49]
    assert not np.isnan(ds.X).any()


def test_long_gaps_are_refused():
    with pytest.raises(DataError, match="gap of 6 missing rows"):
        build_dataset(_frame_with_gap(MAX_FILL_GAP + 1), seq_len=5)


def test_gap_in_an_unused_column_does_not_matter():
    frame = _frame_with_gap(20, column="Volume")
    build_dataset(frame, features=("close",), seq_len=5)
    with pytest.raises(DataError, match="volume"):
        build_dataset(frame, features=("close", "volume"), seq_len=5)


def test_leading_missing_rows_are_dropped():
    raw = price_frame(100).drop(columns="Adj Close")
    raw.loc[:9, "Close"] = np.nan
    ds = build_dataset(normalise_frame(raw, "t"), seq_len=5)
    assert ds.info["rows"] == 90 and ds.info["first_date"] == raw["Date"][10]


def test_non_positive_prices_with_return_target_are_refused():
    raw = price_frame(100).drop(columns="Adj Close")
    raw.loc[40, "Close"] = 0.0
    frame = normalise_frame(raw, "t")
    build_dataset(frame, seq_len=5, target="close", window_norm="none")  # fine for raw price targets
    with pytest.raises(DataError, match="non-positive price"):
        build_dataset(frame, seq_len=5, target="return", window_norm="none")
    # Dividing by a zero anchor is refused too, naming the way out.
    with pytest.raises(DataError, match="window-norm none"):
        build_dataset(frame, seq_len=5, target="close", window_norm="last")


# -- windows, split, scalers --------------------------------------------------------------

@pytest.mark.parametrize("n, L, H", [(100, 10, 1), (100, 7, 5), (57, 3, 4)])
def test_no_window_has_a_target_in_a_later_part(n, L, H):
    b1, b2 = split_bounds(n, 0.6, 0.2)
    inputs, targets = window_rows(n, L, H)
    parts = window_parts(targets[:, -1], b1, b2)
    bound = {"train": b1, "val": b2, "test": n}
    for name, idx in parts.items():
        assert (targets[idx] < bound[name]).all()
        assert (inputs[idx] < targets[idx][:, :1]).all()   # inputs strictly before targets
    # every window is in exactly one part, and parts are chronological
    all_idx = np.concatenate([parts["train"], parts["val"], parts["test"]])
    np.testing.assert_array_equal(all_idx, np.arange(len(inputs)))


def test_window_contents_line_up_with_dates():
    frame = normalise_frame(price_frame(120).drop(columns="Adj Close"), "t")
    ds = build_dataset(frame, seq_len=10, horizon=3)
    closes = frame["close"].to_numpy()
    i = 17
    np.testing.assert_allclose(ds.history_price[i], closes[i:i + 10])
    np.testing.assert_allclose(ds.actual_price[i], closes[i + 10:i + 13])
    assert ds.base_price[i] == closes[i + 9]
    assert ds.origin_dates[i] == frame.index[i + 9]
    assert (ds.target_dates[i] == frame.index[i + 10:i + 13]).all()


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_scalers_are_fitted_on_training_rows_only(kind):
    raw = price_frame(200).drop(columns="Adj Close")
    frame = normalise_frame(raw, "t")
    ds = build_dataset(frame, seq_len=5, scaler=kind, split=(0.5, 0.25), window_norm="none")
    train = frame["close"].to_numpy()[:100]
    if kind == "minmax":
        assert ds.feature_scaler.data_min_[0] == train.min()
        assert ds.feature_scaler.data_max_[0] == train.max()
    else:
        assert ds.feature_scaler.mean_[0] == pytest.approx(train.mean())
    # Changing only later prices leaves the scalers alone.
    raw2 = raw.copy()
    raw2.loc[100:, "Close"] *= 3
    ds2 = build_dataset(normalise_frame(raw2, "t"), seq_len=5, scaler=kind, split=(0.5, 0.25),
                        window_norm="none")
    assert scaler_to_dict(ds2.feature_scaler) == scaler_to_dict(ds.feature_scaler)
    assert scaler_to_dict(ds2.target_scaler) == scaler_to_dict(ds.target_scaler)


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_scalers_equal_scikit_learn_to_the_last_bit(kind):
    # Our scalers are NumPy written in scikit-learn's arithmetic; its own scalers are the
    # reference (a test dependency only). A constant column keeps a scale of 1.
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(7)
    train = rng.normal([50.0, -3.0, 1e6], [10.0, 0.01, 2e5], (400, 3))
    train[:, 1] = 2.5
    later = rng.normal([55.0, -3.0, 1.2e6], [12.0, 0.01, 2e5], (50, 3))
    ours = fit_scaler(kind, train)
    theirs = (preprocessing.MinMaxScaler() if kind == "minmax" else preprocessing.StandardScaler()).fit(train)
    for name in (("data_min_", "data_max_", "scale_", "min_") if kind == "minmax" else ("mean_", "var_", "scale_")):
        np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name), err_msg=name)
    np.testing.assert_array_equal(ours.transform(later), theirs.transform(later))
    scaled = theirs.transform(later)
    np.testing.assert_array_equal(ours.inverse_transform(scaled), theirs.inverse_transform(scaled))
    again = scaler_from_dict(scaler_to_dict(ours))
    np.testing.assert_array_equal(again.transform(later), theirs.transform(later))


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_scaler_round_trip_through_plain_numbers(kind):
    frame = normalise_frame(price_frame(80), "t")
    ds = build_dataset(frame, features=("close", "volume"), seq_len=5, scaler=kind)
    again = scaler_from_dict(scaler_to_dict(ds.feature_scaler))
    x = np.random.default_rng(0).normal(50, 10, (7, 2))
    np.testing.assert_allclose(again.transform(x), ds.feature_scaler.transform(x))


def test_return_target_converts_back_to_prices():
    frame = normalise_frame(price_frame(150), "t")
    ds = build_dataset(frame, target="return", features=("close", "return"), seq_len=8, horizon=3)
    idx = ds.parts["test"]
    # The true scaled returns must give back the true prices.
    np.testing.assert_allclose(ds.to_price(ds.y[idx], idx), ds.actual_price[idx], rtol=1e-10)
    # predicted price = today's price * exp(predicted log return)
    zero = ds.target_scaler.transform(np.zeros((1, 1)))[0, 0]
    flat = ds.to_price(np.full((len(idx), 3), zero), idx)
    np.testing.assert_allclose(flat, np.repeat(ds.base_price[idx, None], 3, axis=1))


def test_series_too_short_for_the_windows():
    frame = normalise_frame(price_frame(30), "t")
    with pytest.raises(DataError, match="series too short"):
        build_dataset(frame, seq_len=25)


def test_split_info_describes_each_part():
    frame = normalise_frame(price_frame(100), "t")
    ds = build_dataset(frame, seq_len=5, split=(0.7, 0.15))
    split = ds.info["split"]
    assert [split[p]["rows"] for p in ("train", "val", "test")] == [70, 15, 15]
    assert split["train"]["last_date"] < split["val"]["first_date"] <= split["val"]["last_date"] \
        < split["test"]["first_date"]
    assert sum(split[p]["windows"] for p in split) == len(ds.X)


# -- per-window normalisation (window_norm="last") ------------------------------------------

def _tiny_frame(closes, volume=None):
    n = len(closes)
    raw = pd.DataFrame({"Date": pd.bdate_range("2020-01-01", periods=n).strftime("%Y-%m-%d"),
                        "Close": np.asarray(closes, dtype=float)})
    if volume is not None:
        raw["Volume"] = np.asarray(volume, dtype=float)
    return normalise_frame(raw, "tiny")


def _unscaled(ds):
    """The window-normalised values before the scalers, per window."""
    X = ds.feature_scaler.inverse_transform(ds.X.reshape(-1, ds.n_features)).reshape(ds.X.shape)
    y = ds.target_scaler.inverse_transform(ds.y.reshape(-1, 1)).reshape(ds.y.shape)
    return X, y


def test_window_norm_last_anchors_on_the_last_input_close_by_hand():
    closes = [10, 11, 12, 8, 16, 20, 25, 30, 24, 40, 44, 48, 50, 55, 60, 66, 70, 77, 80, 88]
    ds = build_dataset(_tiny_frame(closes), seq_len=3, horizon=2, split=(0.5, 0.25), window_norm="last")
    X, y = _unscaled(ds)
    # Window 1 reads rows 1..3 (11, 12, 8); its today is row 3 (8), its targets rows 4, 5 (16, 20).
    assert ds.base_price[1] == 8.0
    np.testing.assert_allclose(X[1, :, 0], [11 / 8 - 1, 12 / 8 - 1, 0.0], atol=1e-12)
    np.testing.assert_allclose(y[1], [16 / 8 - 1, 20 / 8 - 1], atol=1e-12)   # +100 %, +150 %
    np.testing.assert_allclose(ds.actual_price[1], [16, 20])
    # Every window: anchor = last input close, never a target close.
    c = np.asarray(closes, dtype=float)
    for i in range(len(ds.X)):
        np.testing.assert_allclose(X[i, :, 0], c[i:i + 3] / c[i + 2] - 1, atol=1e-12)
        np.testing.assert_allclose(y[i], c[i + 3:i + 5] / c[i + 2] - 1, atol=1e-12)
    # Predictions go back through the anchor: price = p0 * (1 + relative change).
    idx = np.arange(len(ds.X))
    np.testing.assert_allclose(ds.to_price(ds.y, idx), ds.actual_price, rtol=1e-12)


@pytest.mark.parametrize("change_from", [9, 12, 15, 17])
def test_window_norm_last_window_depends_only_on_prices_up_to_its_last_target(change_from):
    closes = np.array([10, 11, 12, 8, 16, 20, 25, 30, 24, 40, 44, 48, 50, 55, 60, 66, 70, 77, 80, 88.0])
    later = closes.copy()
    later[change_from:] *= np.linspace(0.3, 3.0, len(closes) - change_from)
    a = build_dataset(_tiny_frame(closes), seq_len=3, horizon=2, split=(0.5, 0.25), window_norm="last")
    b = build_dataset(_tiny_frame(later), seq_len=3, horizon=2, split=(0.5, 0.25), window_norm="last")
    last_target = np.arange(len(a.X)) + 3 + 2 - 1
    before = last_target < change_from
    assert before.any() and (~before).any()
    (Xa, ya), (Xb, yb) = _unscaled(a), _unscaled(b)
    np.testing.assert_allclose(Xb[before], Xa[before], atol=1e-12)
    np.testing.assert_allclose(yb[before], ya[before], atol=1e-12)
    assert not np.allclose(yb[~before], ya[~before])
    if change_from >= 10:   # nothing in the training rows (0..9) changed: the very same scaled arrays
        np.testing.assert_array_equal(b.X[before], a.X[before])
        np.testing.assert_array_equal(b.y[before], a.y[before])


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_window_norm_last_scalers_are_fitted_on_training_windows_only(kind):
    raw = price_frame(200).drop(columns="Adj Close")
    ds = build_dataset(normalise_frame(raw, "t"), seq_len=5, scaler=kind, split=(0.5, 0.25),
                       features=("close", "volume"), window_norm="last")
    train = ds.parts["train"]
    X, y = _unscaled(ds)
    rel = X[train, :, 0]
    if kind == "minmax":
        assert ds.feature_scaler.data_min_[0] == pytest.approx(rel.min())
        assert ds.target_scaler.data_max_[0] == pytest.approx(y[train].max())
    else:
        assert ds.feature_scaler.mean_[0] == pytest.approx(rel.mean())
    raw2 = raw.copy()
    raw2.loc[100:, "Close"] *= 3
    raw2.loc[100:, "Volume"] *= 5
    ds2 = build_dataset(normalise_frame(raw2, "t"), seq_len=5, scaler=kind, split=(0.5, 0.25),
                        features=("close", "volume"), window_norm="last")
    assert scaler_to_dict(ds2.feature_scaler) == scaler_to_dict(ds.feature_scaler)
    assert scaler_to_dict(ds2.target_scaler) == scaler_to_dict(ds.target_scaler)


def test_window_norm_last_volume_is_log_ratio_to_the_window_mean_and_return_is_unchanged():
    closes = 50 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 60)))
    volume = np.random.default_rng(2).integers(1_000_000, 5_000_000, 60).astype(float)
    volume[20] = 0.0                                     # a day without trades stays finite
    frame = _tiny_frame(closes, volume)
    kw = dict(features=("close", "volume", "return"), seq_len=6, split=(0.6, 0.2))
    rel = build_dataset(frame, window_norm="last", **kw)
    raw = build_dataset(frame, window_norm="none", **kw)
    X, _ = _unscaled(rel)
    Xn = raw.feature_scaler.inverse_transform(raw.X.reshape(-1, 3)).reshape(raw.X.shape)
    assert np.isfinite(X).all()
    v = Xn[:, :, 1]
    np.testing.assert_allclose(X[:, :, 1], np.log((v + 1) / (v.mean(axis=1, keepdims=True) + 1)), atol=1e-9)
    np.testing.assert_allclose(X[:, :, 2], Xn[:, :, 2], atol=1e-12)       # log returns as they were
    # Scale-free: ten times the volume gives (almost exactly) the same feature on every
    # traded day (the zero-volume day is 1 / (mean + 1), finite but not scale-free).
    tenfold = build_dataset(_tiny_frame(closes, volume * 10), window_norm="last", **kw)
    traded = v > 0
    assert (~traded).any()
    np.testing.assert_allclose(_unscaled(tenfold)[0][:, :, 1][traded], X[:, :, 1][traded], atol=1e-5)


@pytest.mark.parametrize("window_norm", ["last", "none"])
def test_prices_and_baselines_do_not_depend_on_window_norm(window_norm):
    frame = normalise_frame(price_frame(150), "t")
    ds = build_dataset(frame, seq_len=8, horizon=3, window_norm=window_norm)
    ref = build_dataset(frame, seq_len=8, horizon=3, window_norm="none")
    for name in ("base_price", "actual_price", "history_price", "train_prices"):
        np.testing.assert_array_equal(getattr(ds, name), getattr(ref, name))
    idx = ds.parts["test"]
    np.testing.assert_allclose(ds.to_price(ds.y[idx], idx), ds.actual_price[idx], rtol=1e-10)


def test_unknown_window_norm_is_refused():
    with pytest.raises(DataError, match="window_norm"):
        build_dataset(normalise_frame(price_frame(80), "t"), seq_len=5, window_norm="zscore")
