"""The forecasting pipeline: one call from a configuration to trained, evaluated outputs.

Public API (``cli.py train`` and ``cli.py compare`` are built on it; keep it stable):

* :class:`RunConfig` - every ``train`` option with its default; :meth:`RunConfig.validate`
  raises :class:`~engine.errors.UserInputError` for impossible values.
* :func:`load_dataset` ``(config) -> Dataset`` - load, window, split and scale the data
  once; the result depends on the data options only (not on the model or the seed), so
  it can be passed to several :func:`run_training` calls.
* :func:`run_training` ``(config, out_dir=None, progress=True, dataset=None, write=True) -> dict``
  - train, evaluate on the test part, write the run folder, return the results.
* :func:`evaluate_checkpoint` - re-evaluate a saved model (``cli.py evaluate``).

A run folder holds ``config.json`` (the RunConfig fields), ``history.json`` (one record
per epoch, see :mod:`engine.train`), ``metrics.json`` (``{"test": {...}, "naive": {...},
"drift": {...}}``, each with ``mse rmse mae r2 mape mase direction_accuracy`` in price
units, see :mod:`engine.metrics`), ``predictions.csv`` (``date, actual, predicted,
naive``; for horizon > 1 also ``origin_date, step``, one row per window and step),
``summary.json`` (data description, best epoch, stop reason, seconds) and
``checkpoint.npz`` (see :mod:`engine.checkpoint`). The folder is assembled under a
temporary name and renamed when everything is written, so a failed run leaves nothing.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from engine.backend import BACKENDS, BackendUnavailableError, default_backend, get_kernels
from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.data import (FEATURES, SCALERS, TARGETS, WINDOW_NORMS, Dataset, build_dataset, load_source,
                         parse_source, scaler_from_dict, scaler_to_dict)
from engine.data.frame import parse_day
from engine.errors import CheckpointError, UserInputError
from engine.fileio import OutputDir, atomic_write_json, atomic_write_text, to_jsonable
from engine.metrics import drift_forecast, forecast_metrics, naive_forecast, naive_scale
from engine.train import TrainSettings, fit, predict

__all__ = ["MODELS", "FUSIONS", "DTYPES", "RunConfig", "load_dataset", "build_forecaster",
           "evaluate_model", "run_training", "evaluate_checkpoint", "default_out_dir"]

MODELS = ("mamba", "mingru", "gru", "hybrid")
FUSIONS = ("scalar", "channel", "gate")
DTYPES = ("float64", "float32")


def _process_default_backend() -> str:
    """The process-wide default backend (``MAMBA_GRU_BACKEND``, else numpy)."""
    try:
        return default_backend()
    except ValueError as exc:  # a bad environment value is the user's input too
        raise UserInputError(str(exc)) from None


@dataclass
class RunConfig:
    """All options of one training run (the ``cli.py train`` options, same defaults).

    Sequences may be given as lists or comma-separated strings (``features="open,close"``,
    ``split="0.7,0.15"``); :meth:`validate` normalises them to tuples.

    Attributes
    ----------
    model : {"mamba", "mingru", "gru", "hybrid"}
    backend : {"numpy", "numba"}
    data : str
        ``sample:TICKER``, ``yahoo:TICKER`` or a CSV path.
    start, end : str or None
        Inclusive ISO dates; ``None``: the whole file, or 2010-01-01 / 2023-12-31 for Yahoo.
    features : tuple of str
        Inputs per day, from ``open high low close volume return``.
    target : {"close", "return"}
        Next close(s) or next daily log return(s).
    seq_len, horizon : int
        Input window length and number of days predicted.
    split : (float, float)
        Train and validation fractions of the rows; the test part is the rest.
    window_norm : {"last", "none"}
        ``last``: each window relative to its last input close (prices ``x / p0 - 1``,
        volume ``log((v + 1) / (window mean + 1))``, a close target ``y / p0 - 1``; see
        :mod:`engine.data.dataset`), so the model never extrapolates to unseen price
        levels. ``none``: raw values.
    scaler : {"minmax", "standard"}
        Fitted on the training part after the window normalisation.
    hidden, d_state, layers : int
        Model width, Mamba state size, blocks per branch.
    fusion : {"scalar", "channel", "gate"}
        Hybrid only.
    epochs, batch_size : int
    lr, weight_decay, clip : float
        Peak learning rate, AdamW decoupled decay, max gradient norm (0: no clipping).
    patience : int
        Early-stopping patience in epochs (0: off).
    warmup : int
        Warm-up epochs before the cosine decay (if it is not below ``epochs``, the
        whole run is warm-up).
    seed : int
        Seeds the weights and the mini-batch order.
    dtype : {"float64", "float32"}
    out : str or None
        Output folder; ``None``: ``results/<model>-<timestamp>``.
    """

    model: str = "hybrid"
    backend: str = field(default_factory=_process_default_backend)
    data: str = "sample:AAPL"
    start: str | None = None
    end: str | None = None
    features: tuple = ("close",)
    target: str = "close"
    seq_len: int = 60
    horizon: int = 1
    split: tuple = (0.7, 0.15)
    window_norm: str = "last"
    scaler: str = "minmax"
    hidden: int = 16
    d_state: int = 16
    layers: int = 1
    fusion: str = "scalar"
    # Training defaults have one home, engine.train.TrainSettings.
    epochs: int = TrainSettings.epochs
    batch_size: int = TrainSettings.batch_size
    lr: float = TrainSettings.lr
    weight_decay: float = TrainSettings.weight_decay
    clip: float = TrainSettings.clip
    patience: int = TrainSettings.patience
    warmup: int = TrainSettings.warmup
    seed: int = TrainSettings.seed
    dtype: str = "float64"
    out: str | None = None

    # -- validation -------------------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Check every value and normalise in place; returns ``self``.

        Raises
        ------
        UserInputError
            Unknown names or impossible values, with the option named.
        """
        self.model = _choice("--model", self.model, MODELS)
        self.backend = _choice("--backend", self.backend, BACKENDS)
        self.fusion = _choice("--fusion", self.fusion, FUSIONS)
        self.target = _choice("--target", self.target, TARGETS)
        self.scaler = _choice("--scaler", self.scaler, SCALERS)
        self.window_norm = _choice("--window-norm", self.window_norm, WINDOW_NORMS)
        self.dtype = _choice("--dtype", np.dtype(self.dtype).name if _is_dtype(self.dtype) else self.dtype,
                             DTYPES)
        self.data = str(self.data).strip()
        parse_source(self.data)
        for name in ("start", "end"):
            value = getattr(self, name)
            if value in ("", None):
                setattr(self, name, None)
                continue
            setattr(self, name, parse_day(value, f"--{name}").isoformat())
        if self.start and self.end and self.end <= self.start:
            raise UserInputError(f"--end ({self.end}) must come after --start ({self.start})")
        self.features = _features(self.features)
        self.split = _split(self.split)
        for name in ("seq_len", "horizon", "hidden", "d_state", "layers", "epochs", "batch_size"):
            setattr(self, name, _integer(name, getattr(self, name), minimum=1))
        for name in ("patience", "warmup", "seed"):
            setattr(self, name, _integer(name, getattr(self, name), minimum=0))
        self.lr = _real("lr", self.lr, positive=True)
        self.weight_decay = _real("weight_decay", self.weight_decay)
        self.clip = _real("clip", self.clip)
        if self.lr > 1.0:
            raise UserInputError(f"--lr {self.lr:g} is far too large; use a value like 1e-3")
        if self.out is not None:
            self.out = str(self.out)
        return self

    # -- conversion -------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The fields as plain JSON values (tuples become lists)."""
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """Build from :meth:`to_dict` output (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserInputError(f"unknown run option(s): {', '.join(unknown)}")
        return cls(**values)

    def train_settings(self) -> TrainSettings:
        """The subset that :func:`engine.train.fit` needs."""
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                             weight_decay=self.weight_decay, clip=self.clip, patience=self.patience,
                             warmup=self.warmup, seed=self.seed)

    def data_key(self) -> tuple:
        """Everything :func:`load_dataset` depends on (two configs with equal keys share data)."""
        return (self.data, self.start, self.end, tuple(self.features), self.target, self.seq_len,
                self.horizon, tuple(self.split), self.scaler, self.window_norm)


def _is_dtype(value) -> bool:
    return isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic))


def _choice(option: str, value, allowed) -> str:
    key = str(value).strip().lower()
    if key not in allowed:
        raise UserInputError(f"{option}: unknown value {value!r}; choose one of {', '.join(allowed)}")
    return key


def _integer(name: str, value, minimum: int) -> int:
    option = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        raise UserInputError(f"{option} must be an integer, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{option} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise UserInputError(f"{option} must be an integer, got {value!r}")
    if number < minimum:
        raise UserInputError(f"{option} must be at least {minimum}, got {int(number)}")
    return int(number)


def _real(name: str, value, positive: bool = False) -> float:
    option = "--" + name.replace("_", "-")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{option} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise UserInputError(f"{option} must be {'positive' if positive else 'zero or positive'}, "
                             f"got {value!r}")
    return number


def _items(value) -> list:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    try:
        return [str(t).strip() for t in value]
    except TypeError:
        return [str(value)]


def _features(value) -> tuple:
    names = [t.lower() for t in _items(value)]
    if not names:
        raise UserInputError(f"--features: give at least one of {', '.join(FEATURES)}")
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise UserInputError(f"--features: unknown feature(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(FEATURES)}")
    if len(set(names)) != len(names):
        raise UserInputError(f"--features: a feature is listed twice in {','.join(names)}")
    return tuple(names)


def _split(value) -> tuple:
    items = _items(value)
    try:
        fractions = [float(t) for t in items]
    except ValueError:
        raise UserInputError(f"--split must be two fractions like 0.7,0.15, got {value!r}") from None
    if len(fractions) != 2:
        raise UserInputError(f"--split takes two fractions (train, validation) like 0.7,0.15; "
                             f"got {len(fractions)}")
    train, val = fractions
    if not (0 < train < 1 and 0 < val < 1 and train + val < 1):
        raise UserInputError(f"--split {train:g},{val:g}: each fraction must lie in (0, 1) and their sum "
                             "below 1, so the test part is not empty")
    return (train, val)


def single_threaded_blas():
    """Context manager limiting BLAS to one thread (a no-op without threadpoolctl).

    The models multiply small matrices (a batch of 64 by a few dozen columns), where
    BLAS threads cost more in hand-off than they gain: one thread measured 2-3x
    faster per training step on a 2-core machine. One thread also fixes the order of
    floating-point sums, which keeps runs reproducible.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# -- data and model ----------------------------------------------------------------------

def load_dataset(config: RunConfig, refresh: bool = False) -> Dataset:
    """Load, window, split and scale the data that ``config`` names.

    Parameters
    ----------
    config : RunConfig
        Validated here. Only :meth:`RunConfig.data_key` fields matter.
    refresh : bool
        Yahoo only: download even when cached.

    Returns
    -------
    Dataset
        See :class:`engine.data.Dataset`; ``info`` describes source, dates and split.
    """
    config.validate()
    frame, info = load_source(config.data, config.start, config.end, refresh=refresh)
    return build_dataset(frame, features=config.features, target=config.target, seq_len=config.seq_len,
                         horizon=config.horizon, split=config.split, scaler=config.scaler, info=info,
                         window_norm=config.window_norm)


def build_forecaster(config: RunConfig, input_size: int):
    """The model that ``config`` describes, freshly initialised from ``config.seed``."""
    from models import build_model

    try:
        return build_model(config.model, input_size=input_size, hidden_size=config.hidden,
                           d_state=config.d_state, n_layers=config.layers, horizon=config.horizon,
                           backend=config.backend, dtype=np.dtype(config.dtype), seed=config.seed,
                           fusion=config.fusion)
    except BackendUnavailableError as exc:
        raise UserInputError(str(exc)) from exc


def _warm_kernels(config: RunConfig) -> None:
    """Compile the Numba kernels before the first epoch, so its ``epoch_seconds``
    measures training and not compilation (the NumPy backend has nothing to compile)."""
    get_kernels(config.backend).warmup(dtypes=(np.dtype(config.dtype),))


def _check_dataset(config: RunConfig, dataset: Dataset) -> None:
    if (dataset.features, dataset.target, dataset.seq_len, dataset.horizon, dataset.window_norm) != \
            (tuple(config.features), config.target, config.seq_len, config.horizon, config.window_norm):
        raise UserInputError("the dataset passed to run_training was built for other features, "
                             "target, seq_len, horizon or window_norm than the config")


# -- evaluation --------------------------------------------------------------------------

def evaluate_model(model, dataset: Dataset, part: str = "test", batch_size: int = 128):
    """Metrics and predictions of ``model`` on one part, in price units.

    Returns
    -------
    metrics : dict
        ``{"test": model metrics, "naive": last-value baseline, "drift": drift baseline}``
        (the first key is always ``"test"``, whatever ``part`` is, so files read alike).
    predictions : pandas.DataFrame
        ``date, actual, predicted, naive`` (+ ``origin_date, step`` when horizon > 1).
    """
    idx = dataset.parts[part]
    X, _ = dataset.part(part)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = predict(model, np.asarray(X, dtype=getattr(model, "dtype", np.float64)), batch_size)
        predicted = dataset.to_price(scaled, idx)
    actual = dataset.actual_price[idx]
    base = dataset.base_price[idx]
    naive = naive_forecast(base, dataset.horizon)
    drift = drift_forecast(dataset.history_price[idx], dataset.horizon)
    scale = naive_scale(dataset.train_prices)
    metrics = {
        "test": forecast_metrics(actual, predicted, base, scale),
        "naive": forecast_metrics(actual, naive, base, scale),
        "drift": forecast_metrics(actual, drift, base, scale),
    }
    H = dataset.horizon
    table = {
        "date": pd.to_datetime(dataset.target_dates[idx].ravel()).strftime("%Y-%m-%d"),
        "actual": actual.ravel(),
        "predicted": predicted.ravel(),
        "naive": naive.ravel(),
    }
    if H > 1:
        table["origin_date"] = np.repeat(pd.to_datetime(dataset.origin_dates[idx]).strftime("%Y-%m-%d"), H)
        table["step"] = np.tile(np.arange(1, H + 1), len(idx))
    return metrics, pd.DataFrame(table)


# -- the run -----------------------------------------------------------------------------

def default_out_dir(model: str, root: str = "results") -> str:
    """``results/<model>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... if taken."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(root, f"{model}-{stamp}")
    path, k = base, 1
    while os.path.exists(path):
        k += 1
        path = f"{base}-{k}"
    return path


def _checkpoint_meta(config: RunConfig, model, dataset: Dataset, best_epoch) -> dict:
    return {
        "model_config": dict(model.config),
        "seed": config.seed,
        "dtype": config.dtype,
        "run_config": config.to_dict(),
        "window_norm": dataset.window_norm,
        "scalers": {"feature": scaler_to_dict(dataset.feature_scaler),
                    "target": scaler_to_dict(dataset.target_scaler)},
        "data": dataset.info,
        "best_epoch": best_epoch,
    }


def _write_run(out: OutputDir, config, result, metrics, predictions, summary, model, dataset) -> None:
    atomic_write_json(out.file("config.json"), config.to_dict())
    atomic_write_json(out.file("history.json"), result.history)
    atomic_write_json(out.file("metrics.json"), metrics)
    atomic_write_text(out.file("predictions.csv"), predictions.to_csv(index=False, float_format="%.10g"))
    atomic_write_json(out.file("summary.json"), summary)
    save_checkpoint(out.file("checkpoint.npz"), model.state_dict(),
                    _checkpoint_meta(config, model, dataset, result.best_epoch))


def run_training(config: RunConfig, out_dir=None, progress: bool = True, dataset: Dataset | None = None,
                 write: bool = True) -> dict:
    """Train, evaluate and save one run.

    Parameters
    ----------
    config : RunConfig
        Validated here (in place).
    out_dir : path-like or None
        Run folder; ``None`` takes ``config.out``, then :func:`default_out_dir`. It must
        not exist yet (or be empty). Ignored when ``write`` is False.
    progress : bool
        tqdm bar on stderr, and a line there when training stops early.
    dataset : Dataset or None
        From :func:`load_dataset` with the same data options, to skip reloading.
    write : bool
        False: write nothing, only return the results.

    Returns
    -------
    dict
        ``metrics`` ({"test", "naive", "drift"}), ``history`` (list of epoch records),
        ``config`` (RunConfig fields), ``data`` (source, ticker, rows, first/last date,
        ``split`` with rows, windows, first/last date per part), ``training``
        (best_epoch, best_val_loss, stop_reason, note, epochs_run), ``seconds`` (wall
        time of the whole call) and ``out_dir`` (None when nothing was written).

    Raises
    ------
    UserInputError
        Bad options or data; nothing is left on disk.
    """
    t0 = time.perf_counter()
    config.validate()
    if dataset is None:
        dataset = load_dataset(config)
    else:
        _check_dataset(config, dataset)
    model = build_forecaster(config, dataset.n_features)
    _warm_kernels(config)
    with single_threaded_blas():
        result = fit(model, dataset.part("train"), dataset.part("val"), config.train_settings(),
                     progress=progress, desc=config.model)
        if result.note and progress:
            print(f"note: {result.note}", file=sys.stderr)
        metrics, predictions = evaluate_model(model, dataset, "test")
    training = {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
                "stop_reason": result.stop_reason, "note": result.note, "epochs_run": len(result.history)}
    summary = {"data": dataset.info, "training": training, "model_config": dict(model.config),
               "parameters": model.num_parameters()}
    target = None
    if write:
        target = os.fspath(out_dir) if out_dir is not None else (config.out or default_out_dir(config.model))
        config.out = target  # config.json then says where the run was written
        with OutputDir(target) as out:
            summary["seconds"] = time.perf_counter() - t0
            _write_run(out, config, result, metrics, predictions, summary, model, dataset)
    return {
        "metrics": to_jsonable(metrics),
        "history": to_jsonable(result.history),
        "config": config.to_dict(),
        "data": to_jsonable(dataset.info),
        "training": to_jsonable(training),
        "seconds": time.perf_counter() - t0,
        "out_dir": target,
    }


# -- re-evaluation -----------------------------------------------------------------------

def evaluate_checkpoint(path, data: str | None = None, start=None, end=None, part: str = "test",
                        backend: str | None = None) -> dict:
    """Re-evaluate a saved model on its own data or on another source.

    The window length, features, target, split, window normalisation and the *saved*
    scalers of the training run are reused (refitting them on other data would feed
    the model differently scaled inputs than it learnt on). Checkpoints written before
    ``window_norm`` existed are read as ``window_norm="none"``, which is what they did.

    Parameters
    ----------
    path : path-like
        A ``checkpoint.npz``.
    data, start, end : str or None
        Another source / date range; ``None`` keeps the run's.
    part : {"train", "val", "test"}
    backend : str or None
        Kernel set; ``None`` keeps the run's.

    Returns
    -------
    dict
        ``metrics`` ({"test", "naive", "drift"} as in ``metrics.json``), ``predictions``
        (DataFrame), ``data`` (description), ``config`` (the run's RunConfig fields), ``part``.

    Raises
    ------
    CheckpointError, UserInputError
    """
    state, meta = load_checkpoint(path)
    try:
        run_config = dict(meta["run_config"])
        # Older checkpoints predate window_norm and trained on raw values.
        run_config["window_norm"] = meta.get("window_norm", run_config.get("window_norm", "none"))
        config = RunConfig.from_dict(run_config)
        scalers = (scaler_from_dict(meta["scalers"]["feature"]), scaler_from_dict(meta["scalers"]["target"]))
        model_config = dict(meta["model_config"])
        seed, dtype = int(meta.get("seed", 0)), meta.get("dtype", "float64")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: metadata incomplete ({exc})") from exc
    if data is not None:
        config.data = data
        config.start, config.end = start, end
    elif start is not None or end is not None:
        config.start, config.end = start or config.start, end or config.end
    if backend is not None:
        config.backend = backend
    config.validate()
    if part not in ("train", "val", "test"):
        raise UserInputError(f"--part: choose train, val or test, got {part!r}")
    from models import build_model

    try:
        model = build_model(**model_config, backend=config.backend, dtype=dtype, seed=seed)
        model.load_state_dict(state)
    except BackendUnavailableError as exc:
        raise UserInputError(str(exc)) from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} does not fit its model ({_one_line(exc)})") from exc
    frame, info = load_source(config.data, config.start, config.end)
    dataset = build_dataset(frame, features=config.features, target=config.target, seq_len=config.seq_len,
                            horizon=config.horizon, split=config.split, scaler=config.scaler,
                            scalers=scalers, info=info, window_norm=config.window_norm)
    if dataset.n_features != model_config.get("input_size", dataset.n_features):
        raise CheckpointError(f"{path}: the model takes {model_config['input_size']} features, "
                              f"the data gives {dataset.n_features}")
    with single_threaded_blas():
        metrics, predictions = evaluate_model(model, dataset, part)
    return {"metrics": to_jsonable(metrics), "predictions": predictions, "data": to_jsonable(dataset.info),
            "config": config.to_dict(), "part": part}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().strip("'\"")
    return text.splitlines()[0] if text else type(exc).__name__
