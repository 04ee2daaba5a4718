"""Forecasts past the data's last row, with conformal intervals (``cli.py predict``).

A trained stock run (its ``checkpoint.npz``) forecasts the ``steps`` periods after the
last row of its data (or of another source with the same columns): the model sees the
last ``seq_len`` rows through the run's own window normalisation and *saved* scalers,
exactly as it saw its training windows.

Steps. A model trained with ``--horizon H`` emits ``H`` steps at once. Beyond ``H`` (a
one-step model asked for five days), forecasts are made *recursively*: each block of
forecasts is appended to the close series as if observed, and the next window is read
from it. That needs every input feature to follow from the close (``close`` and
``return``); a model fed open, high, low or volume cannot be run past its horizon.
Recursive errors compound, and the intervals say so: each step's interval is calibrated
on that step's own errors, made by the same recursion from past origins.

Intervals (:mod:`forecast.intervals`): the scores ``|actual - forecast| / today's
price`` of every forecast whose outcome lies after the run's training part (its
validation part, then its test part, then any newer rows the data has now), per step.
``split`` takes their conformal quantile; ``adaptive`` starts from the validation part's
scores and runs adaptive conformal inference through every later outcome up to the last
row, so the interval of the next step reflects the most recent errors.

Dates (:mod:`forecast.data.calendar`): the sessions of the stock's exchange for
``sample:`` and ``yahoo:`` data, the data's own frequency for a CSV (``calendar`` names
an exchange for it).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from forecast.checkpoint import checkpoint_model, load_checkpoint
from forecast.errors import CheckpointError, UserInputError
from forecast.intervals import INTERVAL_METHODS, adaptive_bounds, check_level, conformal_quantile, relative_scores

__all__ = ["Prediction", "RECURSIVE_FEATURES", "predict_checkpoint", "add_arguments", "run"]

#: Input features a recursion can rebuild from forecast closes alone.
RECURSIVE_FEATURES = frozenset({"close", "return"})
#: Fewest calibration scores per step: below it a 90% interval's conformal rank does not exist.
MIN_CALIBRATION = 20


@dataclass
class Prediction:
    """Forecasts of the periods after the data's last row.

    Attributes
    ----------
    table : pandas.DataFrame
        ``date, step, forecast, lower, upper`` (prices in the data's units).
    info : dict
        Source, last date and close, level and method, how the dates and the steps
        beyond the model's horizon were made, the calibration per step.
    """

    table: pd.DataFrame
    info: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """``info`` plus ``forecasts`` (the table's rows), as plain JSON values."""
        rows = self.table.assign(date=self.table["date"].astype(str))
        return {**self.info, "forecasts": rows.to_dict(orient="records")}


class _WindowForecaster:
    """A stock run's model with its window pipeline, forecasting from any row of a series."""

    def __init__(self, model, config, feature_scaler, target_scaler):
        self.model, self.config = model, config
        self.feature_scaler, self.target_scaler = feature_scaler, target_scaler
        self.features, self.L, self.H = tuple(config.features), int(config.seq_len), int(config.horizon)

    def _block(self, X_raw: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """Prices (n, H) forecast from raw windows (n, L, F) whose today's close is ``anchor``."""
        from forecast.data.dataset import normalise_windows
        from forecast.train import predict

        n, F = len(X_raw), X_raw.shape[2]
        if self.config.window_norm == "last":
            X_raw, _ = normalise_windows(X_raw, np.zeros((n, self.H)), anchor, self.features, self.config.target)
        X = self.feature_scaler.transform(X_raw.reshape(-1, F)).reshape(X_raw.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = predict(self.model, np.asarray(X, dtype=self.model.dtype), 256)
        values = self.target_scaler.inverse_transform(np.asarray(scaled, np.float64).reshape(-1, 1)).reshape(n, -1)
        if self.config.target == "close":
            return anchor[:, None] * (1.0 + values) if self.config.window_norm == "last" else values
        return anchor[:, None] * np.exp(np.cumsum(values, axis=1))

    def _recursive_window(self, closes: np.ndarray) -> np.ndarray:
        """Raw windows (n, L, F) read from close paths (n, >= L + 1), features from closes only."""
        L = self.L
        columns = {"close": closes[:, -L:], "return": np.log(closes[:, -L:] / closes[:, -L - 1:-1])}
        return np.stack([columns[f] for f in self.features], axis=2)

    def paths(self, close: np.ndarray, feats: np.ndarray, origins: np.ndarray, steps: int) -> np.ndarray:
        """Forecast prices (len(origins), steps) from each origin row (its today).

        The first ``H`` steps read the data's own feature rows; later blocks append the
        forecasts to the close path and read the next window from it (recursion).
        """
        origins = np.asarray(origins, dtype=np.int64)
        rows = origins[:, None] + np.arange(-self.L + 1, 1)[None, :]
        out = [self._block(feats[rows], close[origins])]
        made = self.H
        if steps > made:
            # Close paths with one day before the window, for the first return.
            path = close[origins[:, None] + np.arange(-self.L, 1)[None, :]]
            path = np.concatenate([path, out[0]], axis=1)
            while made < steps:
                block = self._block(self._recursive_window(path), path[:, -1])
                out.append(block)
                path = np.concatenate([path, block], axis=1)
                made += self.H
        return np.concatenate(out, axis=1)[:, :steps]


def _first_row_after(dates: np.ndarray, day: str | None) -> int:
    """Index of the first row dated after ``day`` (len(dates) if none; 0 if ``day`` is None)."""
    if day is None:
        return 0
    return int(np.searchsorted(dates, np.datetime64(pd.Timestamp(day).to_datetime64()), side="right"))


def _step_quantiles(forecasts: np.ndarray, origins: np.ndarray, close: np.ndarray, b1: int, b2: int,
                    level: float, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Per step: the relative half-width ``q`` of the next forecast, and its number of scores.

    ``forecasts[i, k - 1]`` is the step-``k`` forecast from row ``origins[i]``; its outcome
    is row ``origins[i] + k``. Scores of outcomes in ``[b1, b2)`` (the validation part)
    seed the adaptive method; later known outcomes are revealed to it one origin at a
    time. ``split`` pools all of them.
    """
    last = len(close) - 1
    q, counts = np.empty(forecasts.shape[1]), np.zeros(forecasts.shape[1], dtype=np.int64)
    for k in range(1, forecasts.shape[1] + 1):
        target = origins + k
        known = (target >= b1) & (target <= last)
        scores = relative_scores(close[target[known]][:, None], forecasts[known, k - 1:k],
                                 close[origins[known]]).ravel()
        if len(scores) < MIN_CALIBRATION:
            raise UserInputError(f"only {len(scores)} outcomes after the run's training part can calibrate step "
                                 f"{k}'s interval (at least {MIN_CALIBRATION}); use the run's own data or a longer "
                                 "source")
        seed = (target >= b1) & (target < b2)
        if method == "split" or not seed.any():
            q[k - 1] = conformal_quantile(scores, level)
        else:
            # The revealed sequence: origins whose step-k outcome lies after the validation
            # part, then the forecast origin itself (the last row); only its q is kept.
            cal = relative_scores(close[target[seed]][:, None], forecasts[seed, k - 1:k], close[origins[seed]])
            later = known & ~seed & (target >= b2)
            seq = np.concatenate([relative_scores(close[target[later]][:, None], forecasts[later, k - 1:k],
                                                  close[origins[later]]).ravel(), np.full(k, np.nan)])
            # Windows whose outcomes are not yet known (the last k origins) close the
            # sequence: their scores are never revealed before the final origin's turn.
            predicted = np.zeros((len(seq), 1))
            _, upper = adaptive_bounds(cal, seq[:, None], predicted, np.ones(len(seq)), level, steps=[k])
            q[k - 1] = float(upper[-1, 0])
        counts[k - 1] = len(scores)
    return q, counts


def predict_checkpoint(path, data: str | None = None, steps: int | None = None, level: float | None = None,
                       method: str | None = None, backend: str | None = None, calendar: str | None = None,
                       refresh: bool = True) -> Prediction:
    """Forecast the ``steps`` periods after the last row of a stock run's data.

    Parameters
    ----------
    path : path-like
        A ``checkpoint.npz`` written by ``train`` (stock protocol).
    data : str, optional
        Another source with the run's columns; default the run's own. Its rows after the
        run's end date are used too: a forecast starts from the newest row.
    steps : int, optional
        Periods ahead; default the model's horizon. Beyond it, recursive (module docstring).
    level : float, optional
        Interval coverage in percent; default the run's (90).
    method : {"adaptive", "split"}, optional
        Interval method; default the run's.
    backend : str, optional
        Kernel set; default the run's.
    calendar : str, optional
        Exchange code whose sessions date the forecasts (e.g. ``XNYS``); default the
        source's exchange, or the data's frequency for a CSV.
    refresh : bool
        ``yahoo:`` data: download the newest rows (the cache serves when offline).

    Returns
    -------
    Prediction

    Raises
    ------
    CheckpointError, UserInputError
        A corrupt or ``--protocol ltsf`` checkpoint, data whose columns or length do not
        fit the model, steps a recursion cannot make, a bad level or calendar.
    """
    from engine.backend import single_threaded_blas
    from forecast.data import load_source, parse_source
    from forecast.data.calendar import exchange_for, future_dates
    from forecast.data.dataset import price_columns
    from forecast.pipeline import stock_run_meta

    t0 = time.perf_counter()
    state, meta = load_checkpoint(path)
    if meta.get("protocol") == "ltsf":
        return _predict_series(state, meta, path, data, steps, level, method, backend, calendar, t0)
    config, scalers, model_config, seed, dtype = stock_run_meta(meta, path)
    try:
        split = meta["data"]["split"]
        train_last, val_last = split["train"]["last_date"], split["val"]["last_date"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: metadata incomplete ({exc})") from exc
    if backend is not None:
        config.backend = backend
    config.validate()
    H = config.horizon
    steps = H if steps is None else steps
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise UserInputError(f"--steps must be an integer of at least 1, got {steps!r}")
    steps = int(steps)
    if steps > H and not set(config.features) <= RECURSIVE_FEATURES:
        raise UserInputError(f"--steps {steps}: the model forecasts {H} step(s) and reads "
                             f"{', '.join(config.features)}; steps beyond {H} feed its forecasts back as "
                             "inputs, which only a model of close and return can take (train it with "
                             f"--horizon {steps}, or with --features close)")
    try:
        level = check_level(config.level if level is None else level)
    except (TypeError, ValueError) as exc:
        raise UserInputError(str(exc) if "--level" in str(exc) else f"--level {level!r}: a number of percent") from None
    method = config.interval if method is None else str(method).strip().lower()
    if method not in INTERVAL_METHODS:
        raise UserInputError(f"--interval: unknown value {method!r}; choose one of {', '.join(INTERVAL_METHODS)}")

    source = data if data is not None else config.data
    spec = parse_source(source)
    # The newest rows: a Yahoo source up to today (the run's own end date is where its
    # study stopped, not where a forecast should); other sources are read whole.
    end = date.today().isoformat() if spec.kind == "yahoo" else None
    frame, info = load_source(spec, config.start, end, refresh=refresh and spec.kind == "yahoo")
    dates, close, feats, _ = price_columns(frame, config.features, config.target, config.window_norm,
                                           info.get("spec", source))
    if feats.shape[1] != model_config.get("input_size", feats.shape[1]):
        raise UserInputError(f"{source} gives {feats.shape[1]} features; the model takes {model_config['input_size']}")
    need = config.seq_len + (1 if steps > H else 0)
    if len(close) < need:
        raise UserInputError(f"{source} has {len(close)} usable rows; the model's window needs {need}")
    model = checkpoint_model(state, model_config, path, backend=config.backend, dtype=dtype, seed=seed)
    forecaster = _WindowForecaster(model, config, *scalers)

    b1, b2 = _first_row_after(dates, train_last), _first_row_after(dates, val_last)
    last = len(close) - 1
    first = max(b1 - steps, need - 1)     # the earliest origin with an outcome after training
    origins = np.arange(first, last + 1)
    with single_threaded_blas():
        forecasts = forecaster.paths(close, feats, origins, steps)
    if len(origins) < 2 or b1 > last:
        raise UserInputError(f"{source} has no rows after the run's training part ({train_last}) to calibrate "
                             "the intervals")
    q, counts = _step_quantiles(forecasts[:-1], origins[:-1], close, b1, b2, level, method)
    ahead = forecasts[-1]
    today = close[last]
    exchange = calendar if calendar is not None else exchange_for(spec.kind, getattr(spec, "ticker", None))
    when, dated_by = future_dates(dates, steps, exchange)
    table = pd.DataFrame({"date": when, "step": np.arange(1, steps + 1), "forecast": ahead,
                          "lower": ahead - q * today, "upper": ahead + q * today})
    info_out = {
        "source": info.get("spec", source), "checkpoint": str(path), "model": config.model,
        "last_date": str(pd.Timestamp(dates[last]).date()), "last_close": float(today),
        "level": level, "interval": method, "dates": dated_by, "model_horizon": H, "steps": steps,
        "recursive": steps > H,
        "calibration": {"outcomes_after": train_last, "adaptive_seed_until": val_last if method == "adaptive" else None,
                        "scores_per_step": [int(c) for c in counts],
                        "relative_half_width": [float(v) for v in q]},
        "seconds": time.perf_counter() - t0,
    }
    if steps > H:
        which = f"step {steps} is" if steps == H + 1 else f"steps {H + 1} to {steps} are"
        info_out["note"] = (f"{which} recursive: forecasts fed back as observed closes; "
                            "their intervals are calibrated on the recursion's own past errors at each step, "
                            "so they widen as errors compound")
    return Prediction(table, info_out)


def _predict_series(state, meta, path, data, steps, level, method, backend, calendar, t0) -> Prediction:
    """:func:`predict_checkpoint` of a ``--protocol ltsf`` run: every channel, ``steps <= H``.

    The last ``seq_len`` rows, standardised by the run's saved scaler, give the model's
    ``H x C`` outputs in the data's units. Intervals are split conformal per step and
    channel on the absolute errors of every window whose targets lie after the training
    rows (the validation part, the test part and any later rows): the errors of series
    such as temperatures or exchange rates are not relative to a price. Adaptive conformal
    inference would need a pass per step and channel (672 at H = 96, C = 7) over thousands
    of windows; it is not offered here.
    """
    from engine.backend import single_threaded_blas
    from forecast.data.calendar import future_dates
    from forecast.ltsf.protocol import part_rows
    from forecast.ltsf.run import series_run_data, series_run_meta
    from forecast.train import predict

    config, scaler, model_config, seed, dtype = series_run_meta(meta, path, data=data, backend=backend)
    L, H = config.seq_len, config.horizon
    steps = H if steps is None else steps
    if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= H:
        raise UserInputError(f"--steps {steps!r}: a --protocol ltsf model forecasts 1 to {H} steps (its horizon)")
    steps = int(steps)
    if method not in (None, "split"):
        raise UserInputError("--interval adaptive is for stock runs; a --protocol ltsf run's intervals are split "
                             "conformal (use --interval split or leave it out)")
    try:
        level = check_level(90.0 if level is None else level)
    except (TypeError, ValueError) as exc:
        raise UserInputError(str(exc) if "--level" in str(exc) else f"--level {level!r}: a number of percent") from None
    model, frame, info = series_run_data(state, path, config, model_config, seed, dtype)
    values = frame.to_numpy(dtype=np.float64)
    scaled = scaler.transform(values)
    T, C = scaled.shape
    train_end = part_rows(T, L, info.get("source") == "ett")["train"][1]
    # Calibration windows: targets after the training rows, all outcomes known.
    starts = np.arange(max(train_end - L, 0), T - L - H + 1)
    if len(starts) < MIN_CALIBRATION:
        raise UserInputError(f"{config.data}: only {len(starts)} windows after the training rows to calibrate "
                             f"the intervals (at least {MIN_CALIBRATION})")
    windows = np.lib.stride_tricks.sliding_window_view(scaled, L, axis=0)     # (T-L+1, C, L)
    X = np.concatenate([windows[starts], windows[[T - L]]]).transpose(0, 2, 1)
    with single_threaded_blas(), np.errstate(over="ignore", invalid="ignore"):
        out = predict(model, np.ascontiguousarray(X, dtype=model.dtype), 256)
    out = np.asarray(out, np.float64).reshape(len(X), H, C)
    forecasts = scaler.inverse_transform(out.reshape(-1, C)).reshape(out.shape)
    actual = np.stack([values[s + L:s + L + H] for s in starts])
    scores = np.abs(actual - forecasts[:-1])                               # (n, H, C)
    q = np.array([[conformal_quantile(scores[:, h, c], level) for c in range(C)] for h in range(steps)])
    ahead = forecasts[-1, :steps]
    when, dated_by = future_dates(frame.index, steps, calendar)
    columns = list(map(str, frame.columns))
    table = pd.DataFrame({"date": np.repeat(when, C), "step": np.repeat(np.arange(1, steps + 1), C),
                          "channel": np.tile(columns, steps), "forecast": ahead.ravel(),
                          "lower": (ahead - q).ravel(), "upper": (ahead + q).ravel()})
    info_out = {
        "source": info.get("spec", config.data), "checkpoint": str(path), "model": config.model,
        "protocol": "ltsf", "last_date": str(pd.Timestamp(frame.index[-1])), "channels": columns,
        "level": level, "interval": "split", "dates": dated_by, "model_horizon": H, "steps": steps,
        "recursive": False,
        "calibration": {"windows": int(len(starts)), "targets_after_row": int(train_end),
                        "score": "|actual - forecast| per step and channel, in the data's units"},
        "seconds": time.perf_counter() - t0,
    }
    return Prediction(table, info_out)


# -- the command ----------------------------------------------------------------------------

def add_arguments(p) -> None:
    """Options of ``cli.py predict``."""
    from engine.backend import BACKENDS

    p.add_argument("--checkpoint", required=True,
                   help="a checkpoint.npz written by train (stock; --protocol ltsf: every channel, up to its horizon)")
    p.add_argument("--data", default=None,
                   help="another source with the run's columns (default: the run's own; yahoo: refreshed)")
    p.add_argument("--steps", type=int, default=None,
                   help="periods after the last row (default: the model's horizon; beyond it, recursive)")
    p.add_argument("--level", type=float, default=None, help="interval coverage in percent (default: the run's, 90)")
    p.add_argument("--interval", choices=INTERVAL_METHODS, default=None,
                   help="interval method (default: the run's, adaptive)")
    p.add_argument("--calendar", default=None, metavar="EXCHANGE",
                   help="exchange code whose sessions date the forecasts, e.g. XNYS, XLON (default: the "
                        "source's exchange; a CSV: its own frequency)")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="default: the run's")
    p.add_argument("--offline", action="store_true", help="yahoo: use the cached rows, do not download")
    p.add_argument("--out", default=None, help="also write the forecasts: FILE.csv or FILE.json")


def _format(table: pd.DataFrame) -> str:
    info = table.attrs
    if info.get("protocol") == "ltsf":
        head = f"{info['model']} on {info['source']}: after {info['last_date']}, {len(info['channels'])} channels"
    else:
        head = f"{info['model']} on {info['source']}: last close {info['last_close']:.4g} on {info['last_date']}"
    lines = [f"{head}; {info['level']:g}% {info['interval']} conformal intervals; dates: {info['dates']}"]
    wide = "channel" in table.columns
    stamp = "%Y-%m-%d %H:%M" if (table["date"].dt.normalize() != table["date"]).any() else "%Y-%m-%d"
    width = 18 if "%H" in stamp else 12
    lines.append(f"{'date':{width}}{'step':>5}" + (f"{'channel':>10}" if wide else "")
                 + f"{'forecast':>12}{'lower':>12}{'upper':>12}")
    for row in table.itertuples(index=False):
        lines.append(f"{row.date.strftime(stamp):{width}}{row.step:5d}" + (f"{row.channel:>10}" if wide else "")
                     + f"{row.forecast:12.4f}{row.lower:12.4f}{row.upper:12.4f}")
    if "note" in info:
        lines.append(f"note: {info['note']}")
    return "\n".join(lines)


def run(args) -> int:
    """``cli.py predict``: the table on stdout, the file when ``--out`` is given."""
    import os

    from forecast.fileio import atomic_write_json, atomic_write_text

    out = args.out
    if out is not None and os.path.splitext(out)[1].lower() not in (".csv", ".json"):
        raise UserInputError(f"--out {out}: name a .csv or a .json file")
    from forecast import api

    table = api.predict(args.checkpoint, data=args.data, steps=args.steps, level=args.level,
                        interval=args.interval, backend=args.backend, calendar=args.calendar,
                        refresh=not args.offline)
    print(_format(table))
    if out is not None:
        if out.lower().endswith(".json"):
            atomic_write_json(out, Prediction(table, dict(table.attrs)).to_json())
        else:
            dated = table.assign(date=table["date"].astype(str))
            atomic_write_text(out, dated.to_csv(index=False, float_format="%.10g"))
        print(f"forecasts written to {out}")
    return 0
