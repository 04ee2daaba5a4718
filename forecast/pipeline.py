"""The forecasting pipeline: one call from a configuration to trained, evaluated outputs.

Public API (``cli.py train`` and ``cli.py compare`` are built on it; keep it stable),
each taking a :class:`forecast.config.RunConfig`:

* :func:`load_dataset` ``(config) -> Dataset`` - load, window, split and scale the data
  once; the result depends on the data options only (not on the model or the seed), so
  it can be passed to several :func:`run_training` calls.
* :func:`run_training` ``(config, out_dir=None, progress=True, dataset=None, write=True) -> dict``
  - train, evaluate on the test part, write the run folder, return the results.
* :func:`evaluate_checkpoint` - re-evaluate a saved model (``cli.py evaluate``).

A run folder holds ``config.json`` (the RunConfig fields), ``history.json`` (one record
per epoch, see :mod:`forecast.train`), ``metrics.json`` (``{"test": {...}, "naive": {...},
"drift": {...}}``, each with ``mse rmse mae r2 mape mase direction_accuracy`` in price
units, see :mod:`forecast.metrics`), ``predictions.csv`` (``date, actual, predicted,
naive``; for horizon > 1 also ``origin_date, step``, one row per window and step),
``summary.json`` (data description, best epoch, stop reason, seconds) and
``checkpoint.npz`` (see :mod:`forecast.checkpoint`). The folder is assembled under a
temporary name and renamed when everything is written, so a failed run leaves nothing.
While it trains, :func:`run_training` keeps the training state beside it, in
``<folder>.partial`` (see :mod:`forecast.resume`), so an interrupted run can continue.
"""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from engine.backend import BackendUnavailableError, get_kernels, single_threaded_blas
from forecast.calibration import add_bounds, bounds_of, interval_metrics
from forecast.checkpoint import checkpoint_model, load_checkpoint
from forecast.config import RunConfig
from forecast.data import Dataset, build_dataset, load_source, scaler_from_dict, scaler_to_dict
from forecast.data.windows import PARTS
from forecast.errors import CheckpointError, TrainingDiverged, UserInputError, first_line
from forecast.fileio import OutputDir, atomic_write_bytes, to_jsonable
from forecast.intervals import DEFAULT_LEVEL, INTERVAL_METHODS
from forecast.ltsf.protocol import LTSF
from forecast.run_folder import run_files, run_result
from forecast.memory import check_training_memory
from forecast.metrics import drift_forecast, forecast_metrics, naive_forecast, naive_scale
from forecast.resume import RunState
from forecast.train import fit, predict, saving_state

__all__ = ["load_dataset", "load_frame", "dataset_from_frame", "build_forecaster", "warm_kernels", "forecast_prices",
           "price_metrics", "prediction_table", "with_intervals", "evaluate_model", "train_run", "TrainedRun", "RUN_FILES",
           "write_run_files", "run_training", "evaluate_checkpoint", "stock_run_meta", "default_out_dir"]


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
        See :class:`forecast.data.Dataset`; ``info`` describes source, dates and split.
    """
    config.validate()
    frame, info = load_frame(config, refresh)
    return dataset_from_frame(config, frame, info)


def load_frame(config: RunConfig, refresh: bool = False) -> tuple:
    """The source ``config`` names as ``(frame, info)``: a multichannel series
    (:func:`forecast.data.series.load_series`) under ``--protocol ltsf``, else a price
    frame cut to ``start`` / ``end`` (:func:`forecast.data.load_source`; ``refresh``:
    Yahoo only, download even when cached)."""
    if config.protocol == LTSF:
        from forecast.data.series import load_series

        return load_series(config.data)
    return load_source(config.data, config.start, config.end, refresh=refresh)


def dataset_from_frame(config: RunConfig, frame, info: dict, bounds=None, scalers=None) -> Dataset:
    """:func:`forecast.data.build_dataset` with ``config``'s data options, on a loaded frame.

    ``bounds`` (explicit split rows) and ``scalers`` (already fitted) are passed through;
    see :func:`forecast.data.build_dataset`. A study loads each source once, on the
    client, and sends the frame with every run, so its workers need neither the
    client's files nor a network. Under ``--protocol ltsf`` the frame is a multichannel
    series and the result a :class:`forecast.ltsf.dataset.SeriesDataset`.
    """
    if config.protocol == LTSF:
        from forecast.ltsf.run import series_dataset_from_frame

        return series_dataset_from_frame(config, frame, info)
    return build_dataset(frame, features=config.features, target=config.target, seq_len=config.seq_len,
                         horizon=config.horizon, split=config.split, scaler=config.scaler, scalers=scalers,
                         info=info, window_norm=config.window_norm, bounds=bounds)


def build_forecaster(config: RunConfig, input_size: int, windows: int | None = None):
    """The model that ``config`` describes, freshly initialised from ``config.seed``.

    Sizes whose training would not fit in the available memory are refused first
    (:func:`forecast.memory.check_training_memory`; ``windows``, the number of training
    windows when known, bounds the batch in that estimate).
    """
    from models import build_model

    check_training_memory(config, input_size, windows)
    try:
        return build_model(**config.model_options(input_size), backend=config.backend,
                           dtype=np.dtype(config.dtype), seed=config.seed)
    except BackendUnavailableError as exc:
        raise UserInputError(str(exc)) from exc
    except ValueError as exc:
        raise UserInputError(first_line(exc)) from exc


def warm_kernels(backend: str, dtypes=None, model=None) -> None:
    """Compile (or load from Numba's disk cache) the kernels a run will call.

    The one place that warms kernels: every run calls it before its first epoch, so
    ``epoch_seconds`` measures training and not compilation, and a study calls it
    once per worker before the first run. The NumPy backend has nothing to compile.

    Parameters
    ----------
    backend : str
    dtypes : iterable of dtype-likes, optional
        The parameter dtypes the runs use; default: every dtype the kernels support.
    model : Forecaster, optional
        Warm exactly the kernels this model uses (``model.warm_up()``) instead.
    """
    try:
        kernels = get_kernels(backend)
    except BackendUnavailableError as exc:
        raise UserInputError(str(exc)) from exc
    if model is not None:
        model.warm_up()
    elif dtypes is None:
        kernels.warmup()
    else:
        kernels.warmup(dtypes=tuple(np.dtype(d) for d in dtypes))


def _check_dataset(config: RunConfig, dataset) -> None:
    if config.protocol == LTSF:
        if (getattr(dataset, "seq_len", None), getattr(dataset, "horizon", None)) != (config.seq_len,
                                                                                      config.horizon) \
                or not hasattr(dataset, "scaler"):
            raise UserInputError("the dataset passed to run_training was built for another protocol, "
                                 "seq_len or horizon than the config")
        return
    if (dataset.features, dataset.target, dataset.seq_len, dataset.horizon, dataset.window_norm) != \
            (tuple(config.features), config.target, config.seq_len, config.horizon, config.window_norm):
        raise UserInputError("the dataset passed to run_training was built for other features, "
                             "target, seq_len, horizon or window_norm than the config")


# -- evaluation --------------------------------------------------------------------------

def forecast_prices(model, dataset: Dataset, idx, batch_size: int = 128) -> dict:
    """The model's and the baselines' forecasts of windows ``idx``, in price units.

    Returns
    -------
    dict of str to ndarray
        ``actual``, ``predicted``, ``naive``, ``drift`` (each (len(idx), horizon)) and
        ``base`` (len(idx),): today's price of each window.
    """
    idx = np.asarray(idx)
    X = dataset.X[idx]
    with np.errstate(over="ignore", invalid="ignore"):
        # Anything with forward() can be evaluated; models of the layer contract say their dtype.
        scaled = predict(model, np.asarray(X, dtype=getattr(model, "dtype", np.float64)), batch_size)
        predicted = dataset.to_price(scaled, idx)
    base = dataset.base_price[idx]
    return {"actual": dataset.actual_price[idx], "predicted": predicted, "base": base,
            "naive": naive_forecast(base, dataset.horizon),
            "drift": drift_forecast(dataset.history_price[idx], dataset.horizon)}


def price_metrics(prices: dict, scale: float, intervals: dict | None = None) -> dict:
    """``{"test": model, "naive": ..., "drift": ...}`` metrics of :func:`forecast_prices` output.

    ``scale`` is the MASE denominator (:func:`forecast.metrics.naive_scale` of training prices).
    When ``prices`` carries interval bounds (:func:`forecast.calibration.add_bounds`),
    ``intervals`` (``level``, ``method`` and how they were calibrated) is required: each
    forecast's metrics gain ``coverage`` and ``interval_width`` of that method, and the
    key ``intervals`` holds every method's (:func:`forecast.calibration.interval_metrics`).
    """
    actual, base = prices["actual"], prices["base"]
    metrics = {"test": forecast_metrics(actual, prices["predicted"], base, scale),
               "naive": forecast_metrics(actual, prices["naive"], base, scale),
               "drift": forecast_metrics(actual, prices["drift"], base, scale)}
    scored = interval_metrics(prices, intervals) if intervals is not None else None
    if scored is not None:
        per_forecast, block = scored
        for key, values in per_forecast.items():
            metrics[key].update(values)
        metrics["intervals"] = block
    return metrics


def prediction_table(dataset: Dataset, idx, prices: dict, method: str | None = None) -> pd.DataFrame:
    """``date, actual, predicted, naive`` (+ ``origin_date, step`` when horizon > 1; +
    ``lower, upper`` of interval ``method`` when ``prices`` carries bounds)."""
    idx = np.asarray(idx)
    H = dataset.horizon
    table = {
        "date": pd.to_datetime(dataset.target_dates[idx].ravel()).strftime("%Y-%m-%d"),
        "actual": prices["actual"].ravel(),
        "predicted": prices["predicted"].ravel(),
        "naive": prices["naive"].ravel(),
    }
    if H > 1:
        table["origin_date"] = np.repeat(pd.to_datetime(dataset.origin_dates[idx]).strftime("%Y-%m-%d"), H)
        table["step"] = np.tile(np.arange(1, H + 1), len(idx))
    bounds = bounds_of(prices, method) if method is not None else None
    if bounds is not None:
        table["lower"], table["upper"] = bounds[0].ravel(), bounds[1].ravel()
    return pd.DataFrame(table)


def with_intervals(prices: dict, calibration: dict, level: float, method: str, calibrated_on: str):
    """``(prices with bounds, intervals info for price_metrics)``: intervals calibrated on
    the forecasts ``calibration`` of part ``calibrated_on`` (see :mod:`forecast.calibration`)."""
    info = {"level": float(level), "method": method, "calibration": calibrated_on,
            "calibration_windows": int(len(calibration["base"])), "score": "|actual - forecast| / today's price"}
    return add_bounds(prices, calibration, level), info


def evaluate_model(model, dataset: Dataset, part: str = "test", batch_size: int = 128,
                   level: float = DEFAULT_LEVEL, method: str = INTERVAL_METHODS[0]):
    """Metrics, intervals and predictions of ``model`` on one part, in price units.

    Intervals are calibrated on the validation part (data the model was not trained on;
    :mod:`forecast.intervals`), so the validation part itself gets none.

    Returns
    -------
    metrics : dict
        ``{"test": model metrics, "naive": last-value baseline, "drift": drift baseline}``
        (the first key is always ``"test"``, whatever ``part`` is, so files read alike),
        each with ``coverage`` and ``interval_width``, and ``intervals`` (every method's
        coverage), unless ``part`` is ``"val"``.
    predictions : pandas.DataFrame
        ``date, actual, predicted, naive`` (+ ``origin_date, step`` when horizon > 1,
        + ``lower, upper`` of ``method`` at ``level`` percent).
    """
    idx = dataset.parts[part]
    prices = forecast_prices(model, dataset, idx, batch_size)
    info = None
    if part != "val" and dataset.windows("val"):
        calibration = forecast_prices(model, dataset, dataset.parts["val"], batch_size)
        prices, info = with_intervals(prices, calibration, level, method, "val")
    metrics = price_metrics(prices, naive_scale(dataset.train_prices), info)
    return metrics, prediction_table(dataset, idx, prices, method)


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


#: The files of a run folder, in the order they are written.
RUN_FILES = ("config.json", "history.json", "metrics.json", "predictions.csv", "summary.json",
             "checkpoint.npz")


@dataclass
class TrainedRun:
    """A trained and evaluated run, before anything is written (see :func:`train_run`)."""

    config: RunConfig
    model: object
    dataset: Dataset
    fit: object            # forecast.train.FitResult
    metrics: dict
    predictions: pd.DataFrame
    summary: dict
    started: float         # time.perf_counter() when the run began

    def files(self) -> dict:
        """``{file name: bytes}`` of the run folder (:data:`RUN_FILES`; see
        :func:`forecast.run_folder.run_files`)."""
        meta = _checkpoint_meta(self.config, self.model, self.dataset, self.fit.best_epoch)
        return run_files(self.config, self.fit.history, self.metrics, "predictions.csv", self.predictions,
                         self.summary, self.started, (self.model.state_dict(), meta))

    def result(self, out_dir) -> dict:
        """The dict :func:`run_training` returns."""
        return run_result(self.config, self.fit.history, self.metrics, self.dataset.info, self.summary,
                          self.started, out_dir)


def write_run_files(target, files: dict) -> None:
    """Write a run folder from ``{file name: bytes}``, atomically (:class:`OutputDir`).

    The folder appears complete or not at all; ``target`` must not exist or be empty.
    """
    with OutputDir(target) as out:
        for name, payload in files.items():
            atomic_write_bytes(out.file(name), payload)


def train_run(config: RunConfig, dataset: Dataset | None = None, progress: bool = True,
              on_epoch=None) -> TrainedRun:
    """Train and evaluate one run in memory; nothing is written.

    Parameters are those of :func:`run_training`, plus ``on_epoch``, handed to
    :func:`forecast.train.fit` (called with each epoch's record; a tuner prunes through
    it). A study's workers call this and return :meth:`TrainedRun.files` to the client.
    """
    t0 = time.perf_counter()
    config.validate()
    if dataset is None:
        dataset = load_dataset(config)
    else:
        _check_dataset(config, dataset)
    model = build_forecaster(config, dataset.n_features, dataset.windows("train"))
    warm_kernels(config.backend, (config.dtype,), model=model)
    if config.protocol == LTSF:
        from forecast.ltsf.run import train_series_run

        return _refuse_diverged(train_series_run(config, dataset, model, progress, on_epoch=on_epoch))
    with single_threaded_blas():
        result = fit(model, dataset.part("train"), dataset.part("val"), config.train_settings(),
                     progress=progress, desc=config.model, on_epoch=on_epoch)
        if result.note and progress:
            print(f"note: {result.note}", file=sys.stderr)
        metrics, predictions = evaluate_model(model, dataset, "test", level=config.level, method=config.interval)
    summary = {"data": dataset.info, "training": result.outcome(), "model_config": dict(model.config),
               "parameters": model.num_parameters()}
    return _refuse_diverged(TrainedRun(config, model, dataset, result, metrics, predictions, summary, t0))


def _refuse_diverged(run):
    """``run``, unless its training diverged or its forecasts are not finite.

    Either would leave a run folder whose metrics are null or meaningless; the run is
    refused with one line instead (:class:`~forecast.errors.TrainingDiverged`).
    """
    if run.fit.stop_reason == "non_finite":
        raise TrainingDiverged(f"training diverged: {run.fit.note.split(':')[0]} (nothing written); try a "
                               f"smaller --lr than {run.config.lr:g}, or check the data for extreme values")
    mse = run.metrics["test"]["mse"]
    if mse is None or not np.isfinite(mse):
        raise TrainingDiverged("the trained model's test forecasts are not finite numbers (nothing written); "
                               "check the data for extreme values, or try a smaller --lr")
    return run


def run_training(config: RunConfig, out_dir=None, progress: bool = True, dataset: Dataset | None = None,
                 write: bool = True, resume: bool = False) -> dict:
    """Train, evaluate and save one run; resumable when interrupted.

    While it trains, the run keeps its state in ``<out_dir>.partial`` (see
    :mod:`forecast.resume`), saved after every epoch; ``resume=True`` continues an
    interrupted run from there.

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
        False: write nothing (no state either), only return the results.
    resume : bool
        Continue the interrupted run of ``out_dir`` (or ``config.out``); ``config`` must
        hold its options (:func:`forecast.resume.resume_config` reads them).

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
        Bad options or data, a diverged training (:class:`~forecast.errors.TrainingDiverged`),
        nothing to resume or other options than the interrupted run's; nothing is left on
        disk (a resumed run's state stays).
    """
    if not write:
        if resume:
            raise UserInputError("resuming a run needs its run folder: write=True")
        return train_run(config, dataset, progress).result(None)
    config.validate()
    if resume and out_dir is None and not config.out:
        raise UserInputError("--resume needs --out DIR, the folder of the interrupted run")
    target = os.fspath(out_dir) if out_dir is not None else (config.out or default_out_dir(config.model))
    config.out = target  # config.json then says where the run was written
    if resume:
        state = RunState.open(target)
        state.check_options(config.to_dict())
    else:
        state = RunState.create(target, config.to_dict())
    try:
        with saving_state(state):
            run = train_run(config, dataset, progress)
        write_run_files(target, run.files())
    except Exception:
        if not resume:       # it would fail again; a resumed state is the user's to keep
            state.discard()
        raise
    except BaseException:    # interrupted (Ctrl-C, SIGTERM under OutputDir): keep the state for --resume
        print(f"note: training state kept in {state.path}; continue with: python cli.py train --resume "
              f"--out {target}", file=sys.stderr)
        raise
    state.discard()
    return run.result(target)


# -- re-evaluation -----------------------------------------------------------------------

def stock_run_meta(meta: dict, path) -> tuple:
    """What a stock run's checkpoint says about it: ``(config, (feature_scaler,
    target_scaler), model_config, seed, dtype)``.

    Raises
    ------
    CheckpointError
        Metadata missing or malformed.
    """
    try:
        run_config = dict(meta["run_config"])
        # Older checkpoints predate window_norm and trained on raw values.
        run_config["window_norm"] = meta.get("window_norm", run_config.get("window_norm", "none"))
        config = RunConfig.from_dict(run_config)
        scalers = (scaler_from_dict(meta["scalers"]["feature"]), scaler_from_dict(meta["scalers"]["target"]))
        return config, scalers, dict(meta["model_config"]), int(meta.get("seed", 0)), meta.get("dtype", "float64")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: metadata incomplete ({exc})") from exc


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
    if meta.get("protocol") == LTSF:
        if start is not None or end is not None:
            raise UserInputError("--start and --end do not apply to a --protocol ltsf run: its borders "
                                 "are fixed by the benchmark")
        if part not in PARTS:
            raise UserInputError(f"--part: choose {', '.join(PARTS)}, got {part!r}")
        from forecast.ltsf.run import evaluate_series_checkpoint

        return evaluate_series_checkpoint(state, meta, path, data=data, part=part, backend=backend)
    config, scalers, model_config, seed, dtype = stock_run_meta(meta, path)
    if data is not None:
        config.data = data
        config.start, config.end = start, end
    elif start is not None or end is not None:
        config.start, config.end = start or config.start, end or config.end
    if backend is not None:
        config.backend = backend
    config.validate()
    if part not in PARTS:
        raise UserInputError(f"--part: choose {', '.join(PARTS)}, got {part!r}")
    model = checkpoint_model(state, model_config, path, backend=config.backend, dtype=dtype, seed=seed)
    frame, info = load_source(config.data, config.start, config.end)
    dataset = dataset_from_frame(config, frame, info, scalers=scalers)
    if dataset.n_features != model_config.get("input_size", dataset.n_features):
        raise CheckpointError(f"{path}: the model takes {model_config['input_size']} features, "
                              f"the data gives {dataset.n_features}")
    with single_threaded_blas():
        metrics, predictions = evaluate_model(model, dataset, part, level=config.level, method=config.interval)
    return {"metrics": to_jsonable(metrics), "predictions": predictions, "data": to_jsonable(dataset.info),
            "config": config.to_dict(), "part": part}
