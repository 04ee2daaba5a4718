"""One run of a classical baseline, with the run folder of a trained model.

A study (:mod:`forecast.study.tasks`) runs ``arima``, ``ets`` and ``theta``
(:mod:`forecast.classical`) beside the neural models, so their run folders hold the
files the summary, the tests and the figures read, with the same meaning:
``config.json`` (the RunConfig fields), ``history.json`` (an empty list: nothing is
trained by epochs), ``metrics.json`` (``test``, ``naive``, ``drift`` in price units, as
:func:`forecast.pipeline.price_metrics` computes them), ``predictions.csv`` (as
:func:`forecast.pipeline.prediction_table` writes it) and ``summary.json`` (data,
``training``: what was fitted and how long it took, ``model_config``: the selected model
and its parameters). There is no ``checkpoint.npz``: ``evaluate`` re-scores trained
weights, and a baseline is refitted in seconds.

A baseline has no seed: its fit is deterministic, so a study runs it once (seed 0).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from forecast.classical import fit_classical, forecast_classical, is_classical
from forecast.config import RunConfig
from forecast.errors import UserInputError
from forecast.run_folder import run_files, run_result
from models.names import CLASSICAL

__all__ = ["CLASSICAL_RUN_FILES", "CLASSICAL_STOP", "ClassicalRun", "classical_run", "fitted_training"]

#: The files of a baseline's run folder, in the order they are written.
CLASSICAL_RUN_FILES = ("config.json", "history.json", "metrics.json", "predictions.csv", "summary.json")
#: ``training.stop_reason`` of a baseline: it was fitted, not trained by epochs.
CLASSICAL_STOP = "fitted"


def fitted_training(fitted, seconds: float | None = None) -> dict:
    """``summary.json``'s ``training`` of a baseline (keys of a trained run's, plus the fit)."""
    return {"best_epoch": None, "best_val_loss": None, "stop_reason": CLASSICAL_STOP,
            "note": "; ".join(fitted.notes) or None, "epochs_run": 0, "fitted": fitted.description,
            "fit_rows": fitted.fit_rows, "fit_seconds": fitted.seconds,
            **({} if seconds is None else {"forecast_seconds": seconds})}


@dataclass
class ClassicalRun:
    """A fitted and evaluated baseline, before anything is written (like :class:`forecast.pipeline.TrainedRun`)."""

    config: RunConfig
    dataset: object
    fitted: object          # forecast.classical.Fitted
    metrics: dict
    predictions: object     # pandas.DataFrame
    summary: dict
    started: float

    def files(self) -> dict:
        """``{file name: bytes}`` of the run folder (:data:`CLASSICAL_RUN_FILES`): no
        epochs, so an empty history, and no checkpoint."""
        return run_files(self.config, [], self.metrics, "predictions.csv", self.predictions, self.summary,
                         self.started)

    def result(self, out_dir) -> dict:
        """The dict :func:`forecast.pipeline.run_training` returns for a trained run."""
        return run_result(self.config, [], self.metrics, self.dataset.info, self.summary, self.started, out_dir)


def classical_run(config: RunConfig, dataset=None) -> ClassicalRun:
    """Fit baseline ``config.model`` on the training rows and forecast the test part.

    Parameters
    ----------
    config : RunConfig
        ``model`` one of :data:`models.names.CLASSICAL`; validated here.
    dataset : Dataset, optional
        From :func:`forecast.pipeline.load_dataset` (or ``dataset_from_frame``) with the
        same data options; loaded when None.

    Returns
    -------
    ClassicalRun
    """
    from forecast.metrics import naive_scale
    from forecast.pipeline import load_dataset, prediction_table, price_metrics, with_intervals

    started = time.perf_counter()
    if not is_classical(config.model):
        raise UserInputError(f"--model {config.model!r} is not a classical baseline ({', '.join(CLASSICAL)})")
    config.validate()
    if dataset is None:
        dataset = load_dataset(config)
    fitted = fit_classical(config.model, dataset)
    t0 = time.perf_counter()
    idx = dataset.parts["test"]
    prices = forecast_classical(fitted, dataset, idx)
    training = fitted_training(fitted, time.perf_counter() - t0)
    # Intervals as a trained model's: calibrated on the validation days, never fitted on.
    calibration = forecast_classical(fitted, dataset, dataset.parts["val"])
    prices, info = with_intervals(prices, calibration, config.level, config.interval, "val")
    metrics = price_metrics(prices, naive_scale(dataset.train_prices), info)
    summary = {"data": dataset.info, "training": training, "model_config": fitted.config(),
               "parameters": len(fitted.parameters)}
    return ClassicalRun(config, dataset, fitted, metrics, prediction_table(dataset, idx, prices, config.interval), summary,
                        started)
