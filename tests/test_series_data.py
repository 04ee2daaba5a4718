"""Sources of the long-horizon benchmark: bundled ETT, the downloaded exchange rates, series CSV.

Nothing here touches the network: the exchange download runs its real code path against
an HTTP server on 127.0.0.1, and every test gets its own cache folder and, unless it
sets one, a download URL on a closed local port.
"""
from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import socket
import threading
from importlib import resources

import numpy as np
import pandas as pd
import pytest

import cli
from forecast.data import series
from forecast.data.series import ETT_SHA256, is_series_source, load_series, read_series_csv
from forecast.data.sources import load_source, parse_source
from forecast.errors import DataError, UserInputError
from forecast.study.plan import source_slugs

# The real values, read before any test's fixture replaces them.
REAL_EXCHANGE_URL = series.EXCHANGE_URL
REAL_EXCHANGE_SHA256 = series.EXCHANGE_SHA256
ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]


def _closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """A private cache and no way out: the default URL is a closed local port."""
    cache_root = tmp_path / "cache"
    monkeypatch.setenv("MAMBA_GRU_CACHE", str(cache_root))
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(series, "EXCHANGE_URL", f"http://127.0.0.1:{_closed_port()}/exchange_rate.txt.gz")
    monkeypatch.setattr(series, "DOWNLOAD_TIMEOUT", 5.0)
    return cache_root


def _cached_files(root) -> list:
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


# -- bundled ETT ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ETTh1", "ETTh2"])
def test_bundled_ett_decompresses_to_the_recorded_original(name):
    packed = resources.files("forecast.data").joinpath("ltsf", f"{name}.csv.gz").read_bytes()
    digest = hashlib.sha256(gzip.decompress(packed)).hexdigest()
    assert digest == ETT_SHA256[name]
    provenance = resources.files("forecast.data").joinpath("ltsf", "PROVENANCE.md").read_text("utf-8")
    assert digest in provenance


@pytest.mark.parametrize("text, name", [("ett:ETTh1", "ETTh1"), ("ETT:etth2", "ETTh2")])
def test_ett_loads_hourly_with_its_seven_columns(text, name):
    frame, info = load_series(text)
    assert frame.shape == (17420, 7) and list(frame.columns) == ETT_COLUMNS
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert frame.index.name == "date" and isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index[0] == pd.Timestamp("2016-07-01 00:00:00")
    assert frame.index[-1] == pd.Timestamp("2018-06-26 19:00:00")
    assert (np.diff(frame.index.asi8) == pd.Timedelta(hours=1).value).all()
    assert np.isfinite(frame.to_numpy()).all()
    assert info["source"] == "ett" and info["name"] == name and info["spec"] == f"ett:{name}"
    assert info["rows"] == 17420 and info["columns"] == ETT_COLUMNS
    assert info["first_date"] == "2016-07-01T00:00:00" and info["last_date"] == "2018-06-26T19:00:00"
    assert info["sha256"] == ETT_SHA256[name]


def test_ett_values_are_the_files_values():
    frame, _ = load_series("ett:ETTh1")
    # First data row of the original file, as pandas reads it.
    assert frame.iloc[0].tolist() == [5.827000141143799, 2.009000062942505, 1.5989999771118164,
                                      0.4620000123977661, 4.203000068664552, 1.3400000333786009,
                                      30.5310001373291]


@pytest.mark.parametrize("text", ["ett:ETTh3", "ett:ETTm1", "ett:", "ltsf:ETTh1"])
def test_unknown_series_name_names_the_choices(text):
    with pytest.raises(DataError) as err:
        load_series(text)
    message = str(err.value)
    assert "\n" not in message and "ett:ETTh1" in message and "ett:ETTh2" in message
    assert "ltsf:exchange" in message


@pytest.mark.parametrize("text, expected", [
    ("ett:ETTh1", True), ("ETT:x", True), (" ltsf:exchange", True), ("sample:AAPL", False),
    ("data/ett.csv", False), ("", False), (None, False),
])
def test_is_series_source(text, expected):
    assert is_series_source(text) is expected


# -- exchange rates: a real download from a local server -------------------------------------

def _fake_exchange(rows: int = 12, channels: int = 8) -> tuple[bytes, np.ndarray]:
    """A file in the shape of LSTNet's: no header, comma-separated floats, gzip."""
    values = np.round(np.random.default_rng(0).uniform(0.005, 2.0, size=(rows, channels)), 6)
    text = "\n".join(",".join(f"{v:.6f}" for v in row) for row in values) + "\n"
    return gzip.compress(text.encode("ascii"), mtime=0), values


class _Server:
    """One file over HTTP on 127.0.0.1, in a thread; counts the requests it answers."""

    def __init__(self, payload: bytes, path: str = "/exchange_rate.txt.gz"):
        self.hits = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                server.hits += 1
                if self.path != path:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.timeout = 5
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.thread.join(timeout=5)
        self.httpd.server_close()


@pytest.fixture
def serve():
    """``serve(payload) -> _Server``; every server is stopped when the test ends."""
    servers = []

    def start(payload: bytes, path: str = "/exchange_rate.txt.gz") -> _Server:
        servers.append(_Server(payload, path))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def test_exchange_downloads_once_then_serves_the_cache_offline(serve, offline, monkeypatch):
    payload, values = _fake_exchange()
    server = serve(payload)
    monkeypatch.setattr(series, "EXCHANGE_URL", server.url)
    monkeypatch.setattr(series, "EXCHANGE_SHA256", hashlib.sha256(payload).hexdigest())

    frame, info = load_series("ltsf:Exchange")
    assert server.hits == 1 and info["from_cache"] is False
    cached = offline / "yahoo" / "exchange_rate.txt.gz"
    assert info["cache"] == str(cached) and cached.read_bytes() == payload
    assert _cached_files(offline) == ["exchange_rate.txt.gz"]  # no temporary file left
    assert list(frame.columns) == ["0", "1", "2", "3", "4", "5", "6", "OT"]
    assert frame.index.name == "date"
    assert list(frame.index) == list(pd.date_range("1990-01-01", periods=12, freq="D"))
    np.testing.assert_array_equal(frame.to_numpy(), values)
    assert info["spec"] == "ltsf:exchange" and info["source"] == "ltsf" and info["name"] == "exchange"
    assert info["rows"] == 12 and info["first_date"] == "1990-01-01" and info["last_date"] == "1990-01-12"

    server.stop()
    again, info2 = load_series("ltsf:exchange")
    assert info2["from_cache"] is True and info2["cache"] == str(cached) and server.hits == 1
    pd.testing.assert_frame_equal(again, frame)


def test_exchange_with_the_wrong_hash_is_refused_and_not_cached(serve, offline, monkeypatch):
    payload, _ = _fake_exchange()
    server = serve(payload)
    monkeypatch.setattr(series, "EXCHANGE_URL", server.url)
    monkeypatch.setattr(series, "EXCHANGE_SHA256", "0" * 64)
    with pytest.raises(DataError) as err:
        load_series("ltsf:exchange")
    message = str(err.value)
    assert "\n" not in message and "SHA-256" in message and hashlib.sha256(payload).hexdigest() in message
    assert server.hits == 1 and _cached_files(offline) == []


def test_exchange_unreachable_with_nothing_cached_says_what_to_do(offline):
    with pytest.raises(DataError) as err:
        load_series("ltsf:exchange")
    message = str(err.value)
    assert "\n" not in message and "cannot download" in message
    assert str(offline / "yahoo" / "exchange_rate.txt.gz") in message
    assert _cached_files(offline) == []


def test_exchange_http_error_is_one_data_error(serve, offline, monkeypatch):
    server = serve(b"", path="/elsewhere")
    monkeypatch.setattr(series, "EXCHANGE_URL", server.url.replace("/elsewhere", "/exchange_rate.txt.gz"))
    with pytest.raises(DataError, match="404"):
        load_series("ltsf:exchange")
    assert _cached_files(offline) == []


def test_a_cached_exchange_file_with_other_bytes_is_refused(offline, monkeypatch):
    payload, _ = _fake_exchange()
    monkeypatch.setattr(series, "EXCHANGE_SHA256", hashlib.sha256(payload).hexdigest())
    (offline / "yahoo").mkdir(parents=True)
    (offline / "yahoo" / "exchange_rate.txt.gz").write_bytes(_fake_exchange(rows=5)[0])
    with pytest.raises(DataError, match="delete it"):
        load_series("ltsf:exchange")


def test_the_exchange_constants_name_the_real_file():
    assert REAL_EXCHANGE_URL == ("https://raw.githubusercontent.com/laiguokun/multivariate-time-series-data/"
                                 "master/exchange_rate/exchange_rate.txt.gz")
    assert REAL_EXCHANGE_SHA256 == "6a4fbb561dcdee43f071a83badbeec9223a335552278348656738b556f1c2e9d"


# -- series CSV ----------------------------------------------------------------------------

GOOD_CSV = """date,a,b,OT
2020-01-01 00:00:00,1.0,2.0,3.0
2020-01-01 01:00:00,1.5,2.5,3.5
2020-01-01 02:00:00,-1,0,7
"""


def _write(tmp_path, text: str, name: str = "s.csv"):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def test_series_csv_loads_in_file_order(tmp_path):
    path = _write(tmp_path, GOOD_CSV)
    frame, info = load_series(path)
    assert list(frame.columns) == ["a", "b", "OT"] and frame.index.name == "date"
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    np.testing.assert_array_equal(frame.to_numpy(), [[1.0, 2.0, 3.0], [1.5, 2.5, 3.5], [-1.0, 0.0, 7.0]])
    assert info["source"] == "csv" and info["spec"] == path and info["name"] == "s"
    assert info["path"] == path and info["rows"] == 3 and info["columns"] == ["a", "b", "OT"]
    assert info["first_date"] == "2020-01-01T00:00:00" and info["last_date"] == "2020-01-01T02:00:00"
    assert info["sha256"] == hashlib.sha256(GOOD_CSV.encode()).hexdigest()


def test_series_csv_gzip_and_csv_prefix_and_daily_dates(tmp_path):
    path = _write(tmp_path, "day,x\n2020-01-01,1\n2020-01-02,2\n", "d.csv.gz")
    frame, info = load_series(f"csv:{path}")
    assert info["name"] == "d" and info["first_date"] == "2020-01-01" and info["last_date"] == "2020-01-02"
    pd.testing.assert_frame_equal(frame, read_series_csv(path))


@pytest.mark.parametrize("text, words", [
    ("date,a,b\n2020-01-01,1,x\n2020-01-02,2,3\n", ["column 'b'", "not numeric", "'x'", "row 1"]),
    ("date,a,b\n2020-01-01,1,2\n2020-01-02,,3\n", ["column 'a'", "non-finite", "NaN", "row 2", "2020-01-02"]),
    ("date,a,b\n2020-01-01,1,2\n2020-01-02,3,inf\n", ["column 'b'", "non-finite", "inf", "row 2"]),
    ("date,a\n2020-01-01,1\nsoon,2\n", ["cannot parse date", "'soon'", "column 'date'", "row 2"]),
    ("date,a\n2020-01-01,1\n2020-01-32,2\n", ["cannot parse date", "'2020-01-32'"]),
    ("date\n2020-01-01\n2020-01-02\n", ["1 column(s)", "numeric columns"]),
    ("date,a\n2020-01-01,1\n2020-01-01,2\n", ["2020-01-01", "appears twice", "rows 1 and 2"]),
    ("date,a\n2020-01-02,1\n2020-01-03,2\n2020-01-01,3\n", ["dates go back", "row 3", "time order"]),
    ("date,a,b\n", ["no data rows"]),
    ("date,a,b\n2020-01-01,1,2,3\n", ["more values than the header"]),
    ("date,a,a\n2020-01-01,1,2\n", ["column 'a' appears twice"]),
    ("t,a\n1,2\n2,3\n", ["cannot parse date '1'", "column 't'"]),
    ("", ["empty"]),
])
def test_series_csv_errors_are_one_line_naming_the_place(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as err:
        load_series(path)
    message = str(err.value)
    assert "\n" not in message and path in message
    for word in words:
        assert word in message, (word, message)


def test_series_csv_offsets_become_utc(tmp_path):
    # Across a clock change local times repeat; UTC ones do not.
    path = _write(tmp_path, "date,a\n2020-10-25T02:30+02:00,1\n2020-10-25T02:30+01:00,2\n")
    frame, _ = load_series(path)
    assert list(frame.index) == [pd.Timestamp("2020-10-25 00:30"), pd.Timestamp("2020-10-25 01:30")]
    assert frame.index.tz is None


def test_missing_series_csv(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_series(str(tmp_path / "nope.csv"))


# -- sources.py: the kinds parse, the price loader refuses them -------------------------------

@pytest.mark.parametrize("text, kind, name, spelled", [
    ("ett:etth1", "ett", "ETTh1", "ett:ETTh1"), ("ETT:ETTH2", "ett", "ETTh2", "ett:ETTh2"),
    ("ltsf:EXCHANGE", "ltsf", "exchange", "ltsf:exchange"), (" ltsf: exchange ", "ltsf", "exchange", "ltsf:exchange"),
])
def test_parse_source_spells_series_canonically(text, kind, name, spelled):
    spec = parse_source(text)
    assert (spec.kind, spec.name, str(spec), spec.ticker) == (kind, name, spelled, name)


@pytest.mark.parametrize("text", ["ett:ETTh9", "ett:", "ltsf:traffic"])
def test_parse_source_refuses_unknown_series(text):
    with pytest.raises(UserInputError, match="choose one of ett:ETTh1"):
        parse_source(text)


@pytest.mark.parametrize("text, spelled", [("ett:etth1", "ett:ETTh1"), ("ltsf:exchange", "ltsf:exchange")])
def test_load_source_refuses_series_with_one_line(text, spelled):
    with pytest.raises(DataError) as err:
        load_source(text)
    assert str(err.value) == f"{spelled} is a multichannel benchmark series: use --protocol ltsf"


def test_study_folders_of_series_sources():
    assert source_slugs(["ett:ETTh1", "ltsf:exchange", "sample:AAPL"]) == {
        "ett:ETTh1": "ett-ETTh1", "ltsf:exchange": "ltsf-exchange", "sample:AAPL": "sample-AAPL"}


# -- cli.py data ---------------------------------------------------------------------------

def test_cli_data_describes_a_series(capsys):
    assert cli.main(["data", "ett:etth2"]) == 0
    out = capsys.readouterr().out
    assert "ett:ETTh2" in out and "17420" in out and "2016-07-01T00:00:00 to 2018-06-26T19:00:00" in out
    assert "HUFL, HULL, MUFL, MULL, LUFL, LULL, OT" in out and ETT_SHA256["ETTh2"] in out


def test_cli_data_series_json_and_cache(serve, offline, monkeypatch, capsys):
    payload, _ = _fake_exchange()
    server = serve(payload)
    monkeypatch.setattr(series, "EXCHANGE_URL", server.url)
    monkeypatch.setattr(series, "EXCHANGE_SHA256", hashlib.sha256(payload).hexdigest())
    assert cli.main(["data", "ltsf:exchange"]) == 0
    assert "(downloaded)" in capsys.readouterr().out
    assert cli.main(["data", "ltsf:exchange", "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    assert desc["from_cache"] is True and desc["rows"] == 12 and desc["columns"][-1] == "OT"


def test_cli_data_series_refuses_a_date_cut(capsys):
    assert cli.main(["data", "ett:ETTh1", "--start", "2017-01-01"]) == 2
    assert "--start/--end" in capsys.readouterr().err
