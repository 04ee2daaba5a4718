"""One training run under the long-horizon protocol: data, model, fit, metrics, files.

:func:`forecast.pipeline.train_run` hands a run here when ``config.protocol == "ltsf"``;
the result has the interface of :class:`forecast.pipeline.TrainedRun` (``files()``,
``result(out_dir)``, ``fit``, ``metrics``), so the command line, the study's workers and
the run-folder writer treat both protocols alike.

A run folder under this protocol holds ``config.json``, ``history.json``,
``metrics.json`` (``protocol``, ``test_windows``, then ``test``, ``repeat``, ``linear``
and ``val``, each ``{"mse", "mae"}`` on the standardised scale over every window x step
x channel), ``window_losses.csv`` (per test window, in time order: the loss of the model
and of both baselines; what the Diebold-Mariano tests of a study read), ``summary.json``
and ``checkpoint.npz`` (weights, configuration and the fitted scaler).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from engine.backend import single_threaded_blas
from forecast.checkpoint import checkpoint_model
from forecast.data.scaling import scaler_to_dict
from forecast.fileio import to_jsonable
from forecast.ltsf.dataset import LinearMap, SeriesDataset, build_series_dataset, loss_table, repeat_forecast
from forecast.ltsf.protocol import LTSF
from forecast.run_folder import run_files, run_result
from forecast.train import fit, predict

__all__ = ["series_dataset_from_frame", "evaluate_series_model", "SeriesRun",
           "train_series_run", "evaluate_series_checkpoint", "SERIES_RUN_FILES"]

#: The files of a run folder under the protocol, in the order they are written.
SERIES_RUN_FILES = ("config.json", "history.json", "metrics.json", "window_losses.csv", "summary.json",
                    "checkpoint.npz")


def series_dataset_from_frame(config, frame, info: dict, scaler=None) -> SeriesDataset:
    """The protocol's dataset of a loaded series for ``config`` (see :mod:`forecast.ltsf.dataset`)."""
    return build_series_dataset(frame, info, config.seq_len, config.horizon,
                                fixed_ett=info.get("source") == "ett", scaler=scaler)


def evaluate_series_model(model, dataset: SeriesDataset, part: str = "test", batch_size: int = 128,
                          baselines: bool = True, train=None):
    """Metrics and per-window losses of ``model`` (and the baselines) on one part.

    ``train``: the training windows ``(X, y)`` as :meth:`SeriesDataset.part` gives them,
    when the caller holds them already (the linear map is fitted on them); None: built
    from ``dataset``.

    Returns
    -------
    metrics : dict
        ``{"model": {"mse", "mae"}, "repeat": ..., "linear": ...}`` (baselines only when
        asked for; the linear map is fitted on the training windows).
    table : pandas.DataFrame
        ``window, model_mse, model_mae[, repeat_mse, repeat_mae, linear_mse, linear_mae]``.
    """
    X, y = dataset.inputs(part), dataset.targets(part)
    n, H, C = y.shape
    with np.errstate(over="ignore", invalid="ignore"):
        pred = predict(model, np.asarray(X, dtype=getattr(model, "dtype", np.float64)), batch_size)
    forecasts = {"model": pred.reshape(n, H, C)}
    if baselines:
        X_train, y_train = train if train is not None else dataset.part("train")
        forecasts["repeat"] = repeat_forecast(X, H)
        forecasts["linear"] = LinearMap().fit(X_train, y_train.reshape(len(y_train), H, C)).predict(X)
    return loss_table(y, forecasts)


@dataclass
class SeriesRun:
    """A trained and evaluated run under the protocol, before anything is written."""

    config: object         # forecast.config.RunConfig
    model: object
    dataset: SeriesDataset
    fit: object            # forecast.train.TrainResult
    metrics: dict
    losses: object         # pandas.DataFrame of per-window test losses
    summary: dict
    started: float

    def files(self) -> dict:
        """``{file name: bytes}`` of the run folder (:data:`SERIES_RUN_FILES`)."""
        meta = {"model_config": dict(self.model.config), "seed": self.config.seed, "dtype": self.config.dtype,
                "run_config": self.config.to_dict(), "protocol": LTSF,
                "scalers": {"series": scaler_to_dict(self.dataset.scaler)}, "data": self.dataset.info,
                "best_epoch": self.fit.best_epoch}
        return run_files(self.config, self.fit.history, self.metrics, "window_losses.csv", self.losses,
                         self.summary, self.started, (self.model.state_dict(), meta))

    def result(self, out_dir) -> dict:
        """The dict :func:`forecast.pipeline.run_training` returns."""
        return run_result(self.config, self.fit.history, self.metrics, self.dataset.info, self.summary,
                          self.started, out_dir)


def _metrics(dataset: SeriesDataset, test: dict, val: dict) -> dict:
    return {"protocol": LTSF, "test_windows": dataset.windows("test"), "test": test["model"],
            "repeat": test["repeat"], "linear": test["linear"], "val": val["model"]}


def train_series_run(config, dataset: SeriesDataset, model, progress: bool = True,
                     on_epoch=None) -> SeriesRun:
    """Train ``model`` on the protocol's training windows, evaluate on every test window.

    Parameters
    ----------
    config : forecast.config.RunConfig
        Validated, ``protocol == "ltsf"``.
    dataset : SeriesDataset
        Built for ``config``'s lookback and horizon.
    model : models.LongHorizonForecaster
        Freshly built, kernels warm.
    progress : bool
        Progress bar on stderr.
    on_epoch : callable or None
        Called with each epoch's record (see :func:`forecast.train.fit`).
    """
    t0 = time.perf_counter()
    # The training windows, built once: the least-squares start, training and the linear
    # map all read them (at H = 720 on ETTh1 the targets alone take 315 MB).
    train = dataset.part("train")
    with single_threaded_blas():
        if config.linear_init == "lstsq":
            model.init_linear_path(*train)
        result = fit(model, train, dataset.part("val"), config.train_settings(),
                     progress=progress, desc=f"{config.model} H={config.horizon}", on_epoch=on_epoch)
        if result.note and progress:
            print(f"note: {result.note}", file=sys.stderr)
        test, losses = evaluate_series_model(model, dataset, "test", train=train)
        del train
        val, _ = evaluate_series_model(model, dataset, "val", baselines=False)
    summary = {"data": dataset.info, "training": result.outcome(), "model_config": dict(model.config),
               "parameters": model.num_parameters()}
    return SeriesRun(config, model, dataset, result, _metrics(dataset, test, val), losses, summary, t0)


def series_run_meta(meta: dict, path, data: str | None = None, backend: str | None = None) -> tuple:
    """What a ``--protocol ltsf`` checkpoint says about its run: ``(config, scaler,
    model_config, seed, dtype)``, the config validated with ``data`` and ``backend`` in
    place of the run's when given.

    Raises
    ------
    CheckpointError
        Metadata missing or malformed.
    """
    from forecast.config import RunConfig
    from forecast.data.scaling import scaler_from_dict
    from forecast.errors import CheckpointError

    try:
        config = RunConfig.from_dict(dict(meta["run_config"]))
        scaler = scaler_from_dict(meta["scalers"]["series"])
        model_config, seed, dtype = dict(meta["model_config"]), int(meta.get("seed", 0)), meta.get("dtype", "float64")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: metadata incomplete ({exc})") from exc
    if data is not None:
        config.data = data
    if backend is not None:
        config.backend = backend
    return config.validate(), scaler, model_config, seed, dtype


def series_run_data(state, path, config, model_config: dict, seed: int, dtype) -> tuple:
    """A ``--protocol ltsf`` checkpoint's model and the series ``config.data`` names:
    ``(model, frame, info)``; a series of other channels than the model's is one error."""
    from forecast.data.series import load_series
    from forecast.errors import UserInputError

    model = checkpoint_model(state, model_config, path, backend=config.backend, dtype=dtype, seed=seed)
    frame, info = load_series(config.data)
    if frame.shape[1] != model.n_channels:
        raise UserInputError(f"{config.data} has {frame.shape[1]} channels; the model of {path} "
                             f"takes {model.n_channels}")
    return model, frame, info


def evaluate_series_checkpoint(state, meta: dict, path, data=None, part: str = "test", backend=None) -> dict:
    """Re-evaluate a checkpoint written under the protocol (``cli.py evaluate``).

    The run's lookback, horizon and *saved* scaler are reused; ``data`` may name another
    series with the same channels (its borders follow its own length and kind).

    Returns
    -------
    dict
        ``metrics`` (as in ``metrics.json``, on ``part``), ``window_losses`` (DataFrame),
        ``data``, ``config``, ``part``.
    """
    config, scaler, model_config, seed, dtype = series_run_meta(meta, path, data=data, backend=backend)
    model, frame, info = series_run_data(state, path, config, model_config, seed, dtype)
    dataset = series_dataset_from_frame(config, frame, info, scaler=scaler)
    with single_threaded_blas():
        metrics, losses = evaluate_series_model(model, dataset, part)
    result = {"protocol": LTSF, "test_windows": dataset.windows(part), "test": metrics["model"],
              "repeat": metrics["repeat"], "linear": metrics["linear"]}
    return {"metrics": result, "window_losses": losses, "data": to_jsonable(dataset.info),
            "config": config.to_dict(), "part": part}
