"""Walk-forward (rolling-origin) backtest of one model over the test part.

The test windows of the run's split (:mod:`forecast.data.windows`) are cut into ``K``
consecutive folds. Before each fold the model is trained on the past only, then
predicts the fold's windows with those weights:

* **the past of a fold** is every row up to the *today* (last input day) of the fold's
  first window, row ``o``. Only windows whose targets all lie in those rows are used
  for training and early stopping; for horizon ``H > 1`` this leaves out the ``H - 1``
  windows whose last targets fall after ``o``, which the fold's first forecast could
  not have known.
* **train / validation**: the validation part is the last ``V`` rows of the past,
  ``V`` being the validation rows of ``--split`` on the whole series; the training part
  is everything before it, so it grows fold by fold while early stopping always
  judges on the most recent ``V`` days. With ``H = 1`` the first fold's split is
  exactly ``train``'s, so a one-fold ``full`` backtest reproduces ``train``'s
  test predictions.
* **scalers** are refitted on each fold's training part (:func:`forecast.data.build_dataset`
  with the fold's row bounds), as ``train`` fits them on its own.
* **refit** ``full``: a fresh model (same seed) trained as ``train`` trains;
  ``finetune``: the first fold as ``full``, every later fold continues from the
  previous fold's weights for ``finetune_epochs`` epochs (no warm-up) on its own past
  and its refitted scalers: online learning.

A classical baseline (``arima``, ``ets``, ``theta``: :mod:`forecast.classical`) is
refitted before each fold too, by statsforecast, on the fold's training rows (those its
scalers would see), then forecasts each of the fold's days from the history known that
day with the fitted parameters. It has no epochs to continue, so only ``--refit full``
applies to it.

Metrics are in price units beside the naive and drift forecasts, per fold and over
all folds, with the MASE scale of the whole series' training part (as ``train``'s).
No prediction depends on a price after its own fold: its model, scalers and inputs
are all taken from rows up to the fold's last window's today.

Outputs (:func:`run_backtest` with ``write=True``), assembled under a temporary name:
``predictions.csv`` (``date, fold, actual, predicted, naive`` plus ``origin_date, step``
for ``H > 1``), ``backtest.json`` (see :func:`run_backtest`) and ``backtest.png``.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.backend import single_threaded_blas
from forecast.classical import fit_classical, forecast_classical, is_classical
from forecast.classical_run import fitted_training
from forecast.config import RunConfig
from forecast.data import Dataset, load_source
from forecast.data.sources import price_currency
from forecast.errors import UserInputError
from forecast.fileio import OutputDir, atomic_write_json, atomic_write_text, to_jsonable
from forecast.ltsf.protocol import LTSF
from forecast.metrics import naive_scale
from forecast.pipeline import (build_forecaster, dataset_from_frame, default_out_dir, forecast_prices,
                               prediction_table, price_metrics, warm_kernels,
                               with_intervals)
from forecast.stats import DM_METHOD, DM_TEST, SIGNIFICANCE_LEVEL, diebold_mariano, squared_error_differential
from forecast.train import fit

__all__ = ["REFITS", "DEFAULT_FINETUNE_EPOCHS", "VALIDATION_RULE", "Fold", "plan_folds", "run_backtest"]

#: How the model is brought up to date before each fold; the first is the default.
REFITS = ("full", "finetune")
DEFAULT_FINETUNE_EPOCHS = 3
VALIDATION_RULE = ("each fold trains on the windows whose targets all lie on or before the today of "
                   "the fold's first window; the last V rows of that past (V = the validation rows "
                   "of --split on the whole series) are its validation part for early stopping, the "
                   "rows before them its training part; scalers are fitted on that training part")


@dataclass(frozen=True)
class Fold:
    """One fold of the backtest.

    Attributes
    ----------
    number : int
        1-based.
    windows : ndarray of int
        Window indices the fold predicts (consecutive test windows).
    bounds : (int, int)
        Row bounds ``(b1, b2)`` of the fold's past: training rows ``[0, b1)``,
        validation rows ``[b1, b2)``; row ``b2 - 1`` is the today of its first window.
    """

    number: int
    windows: np.ndarray
    bounds: tuple


def plan_folds(dataset: Dataset, folds: int) -> list[Fold]:
    """Cut the test windows of ``dataset`` into ``folds`` consecutive folds.

    Fold sizes differ by at most one window (the first folds take the extra ones).

    Raises
    ------
    UserInputError
        ``folds`` below 1 or above the number of test windows.
    """
    test = np.asarray(dataset.parts["test"])
    if isinstance(folds, bool) or int(folds) != folds or folds < 1:
        raise UserInputError(f"--folds must be an integer of at least 1, got {folds!r}")
    if folds > len(test):
        raise UserInputError(f"--folds {folds} is more than the {len(test)} test windows; "
                             f"use at most {len(test)}")
    val_rows = int(dataset.info["split"]["val"]["rows"])
    plan = []
    for number, windows in enumerate(np.array_split(test, int(folds)), start=1):
        today = int(windows[0]) + dataset.seq_len - 1   # window i's inputs are rows i .. i+L-1
        plan.append(Fold(number, windows, (today + 1 - val_rows, today + 1)))
    return plan


def _check_refit(refit: str, finetune_epochs) -> tuple[str, int]:
    key = str(refit).strip().lower()
    if key not in REFITS:
        raise UserInputError(f"--refit: unknown value {refit!r}; choose one of {', '.join(REFITS)}")
    if isinstance(finetune_epochs, bool) or int(finetune_epochs) != finetune_epochs or finetune_epochs < 1:
        raise UserInputError(f"--finetune-epochs must be an integer of at least 1, got {finetune_epochs!r}")
    return key, int(finetune_epochs)


def _day(value) -> str:
    return str(pd.Timestamp(value).date())


def _fold_dates(dataset: Dataset, windows) -> dict:
    return {"first_date": _day(dataset.target_dates[windows[0], 0]),
            "last_date": _day(dataset.target_dates[windows[-1], -1]),
            "first_origin": _day(dataset.origin_dates[windows[0]]),
            "last_origin": _day(dataset.origin_dates[windows[-1]])}


def _named(metrics: dict) -> dict:
    """``price_metrics`` calls the model ``test``; here every part is test, so: ``model``
    (and ``intervals``, every interval method's coverage, kept as it is)."""
    named = {"model": metrics["test"], "naive": metrics["naive"], "drift": metrics["drift"]}
    if "intervals" in metrics:
        named["intervals"] = metrics["intervals"]
    return named


def _tests(prices: dict, horizon: int) -> list[dict]:
    """Diebold-Mariano of the model against naive and drift over all folds, per step."""
    out = []
    actual = prices["actual"]
    for against in ("naive", "drift"):
        for step in range(1, horizon + 1):
            col = step - 1
            res = diebold_mariano(squared_error_differential(actual[:, col], prices["predicted"][:, col],
                                                             prices[against][:, col]), horizon=step)
            out.append({"against": against, "test": DM_TEST, "step": step,
                        "statistic": res.statistic, "p_value": res.p_value, "n": res.n, "note": res.note})
    return out


def _trained_fold(config: RunConfig, data: Dataset, fold: Fold, n_folds: int, model, refit: str,
                  finetune_epochs: int, progress: bool):
    """Train (or fine-tune) a neural model on the fold's past; ``(model, prices, training,
    calibration)`` (calibration: the forecasts of the fold's validation windows)."""
    settings = config.train_settings()
    fresh = refit == "full" or model is None
    if fresh:
        model = build_forecaster(config, data.n_features)
    else:
        settings = dataclasses.replace(settings, epochs=finetune_epochs, warmup=0)
    result = fit(model, data.part("train"), data.part("val"), settings, progress=progress,
                 desc=f"{config.model} fold {fold.number}/{n_folds}")
    training = {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                "stop_reason": result.stop_reason, "note": result.note,
                "best_val_loss": result.best_val_loss,
                "started_from": "scratch" if fresh else "previous fold"}
    return model, forecast_prices(model, data, fold.windows), training, forecast_prices(model, data, data.parts["val"])


def _classical_fold(name: str, data: Dataset, fold: Fold):
    """Fit a classical baseline on the fold's training rows and forecast the fold;
    ``(prices, training, calibration)`` (calibration: the forecasts of the fold's validation windows). Like a trained model's scalers, the fit sees rows ``[0, b1)``
    only; the validation rows reach it as history, never as a refit."""
    fitted = fit_classical(name, data)
    t0 = time.perf_counter()
    prices = forecast_classical(fitted, data, fold.windows)
    training = {**fitted_training(fitted, time.perf_counter() - t0), "started_from": "scratch"}
    return prices, training, forecast_classical(fitted, data, data.parts["val"])


def run_backtest(config: RunConfig, folds: int, refit: str = "full",
                 finetune_epochs: int = DEFAULT_FINETUNE_EPOCHS, out_dir=None, progress: bool = True,
                 write: bool = True) -> dict:
    """Walk-forward backtest of ``config.model`` (see the module docstring).

    Parameters
    ----------
    config : RunConfig
        The training options (validated here); ``config.out`` is the default folder.
        ``model`` may also be a classical baseline (:data:`models.names.CLASSICAL`).
    folds : int
        Number of consecutive folds the test windows are cut into.
    refit : {"full", "finetune"}
    finetune_epochs : int
        Epochs per fold after the first under ``finetune``.
    out_dir : path-like or None
        Output folder; ``None``: ``config.out``, then ``results/backtest-<model>-<time>``.
    progress : bool
        A progress bar per fold on stderr.
    write : bool
        False: write nothing, only return the results.

    Returns
    -------
    dict
        ``model, refit, n_folds, finetune_epochs`` (None under ``full``), ``validation``
        (the rule), ``config``, ``data`` (source and the whole series' split), ``folds``
        (per fold: ``fold, windows``, target and origin date range, ``train`` and ``val``
        rows / windows / dates, ``training`` outcome, ``metrics`` {model, naive, drift}),
        ``overall`` (metrics over all folds), ``tests`` (Diebold-Mariano against naive and
        drift, per step), ``significance_level``, ``seconds``, ``out_dir`` and
        ``predictions`` (the DataFrame written to ``predictions.csv``).

    Raises
    ------
    UserInputError
        Bad options or data; nothing is left on disk.
    """
    t0 = time.perf_counter()
    if str(config.protocol).strip().lower() == LTSF:
        raise UserInputError("backtest walks forward through the stock protocol's test part; "
                             "--protocol ltsf has the benchmark's fixed borders (use train or compare "
                             "--protocol ltsf)")
    classical = is_classical(config.model)
    config.validate()
    refit, finetune_epochs = _check_refit(refit, finetune_epochs)
    if classical and refit != "full":
        raise UserInputError(f"--refit {refit} continues training a neural model; {config.model} is a "
                             "classical baseline, refitted on each fold's past (use --refit full)")
    frame, info = load_source(config.data, config.start, config.end)
    whole = dataset_from_frame(config, frame, info)
    plan = plan_folds(whole, folds)
    scale = naive_scale(whole.train_prices)
    if not classical:
        warm_kernels(config.backend, (config.dtype,), model=build_forecaster(config, whole.n_features))
    model, records, tables, pooled, cal_windows = None, [], [], [], 0
    with single_threaded_blas():
        for fold in plan:
            t_fold = time.perf_counter()
            data = dataset_from_frame(config, frame, info, bounds=fold.bounds)
            if classical:
                prices, training, calibration = _classical_fold(config.model, data, fold)
            else:
                model, prices, training, calibration = _trained_fold(config, data, fold, len(plan), model, refit,
                                                                     finetune_epochs, progress)
            # Each fold's intervals are calibrated on its own validation windows, as its model is.
            prices, info = with_intervals(prices, calibration, config.level, config.interval, "val")
            cal_windows += info["calibration_windows"]
            table = prediction_table(data, fold.windows, prices, config.interval)
            table.insert(1, "fold", fold.number)
            tables.append(table)
            pooled.append(prices)
            split = data.info["split"]
            records.append({
                "fold": fold.number, "windows": int(len(fold.windows)), **_fold_dates(data, fold.windows),
                "train": split["train"], "val": split["val"],
                "training": {**training, "seconds": time.perf_counter() - t_fold},
                "metrics": _named(price_metrics(prices, scale, info)),
            })
    overall = {key: np.concatenate([p[key] for p in pooled]) for key in pooled[0]}
    predictions = pd.concat(tables, ignore_index=True)
    summary = {
        "model": config.model, "refit": refit, "n_folds": len(plan),
        "finetune_epochs": finetune_epochs if refit == "finetune" else None,
        "validation": VALIDATION_RULE, "config": config.to_dict(), "data": whole.info,
        "folds": records,
        "overall": _named(price_metrics(overall, scale, {**info, "calibration": "each fold's validation part",
                                                         "calibration_windows": cal_windows})),
        "tests": _tests(overall, whole.horizon), "significance_level": SIGNIFICANCE_LEVEL,
        "tests_note": f"statistic of the model minus the baseline (negative: the model's error is "
                      f"smaller); {DM_METHOD}",
    }
    target = None
    if write:
        target = os.fspath(out_dir) if out_dir is not None else (config.out or
                                                                 default_out_dir(f"backtest-{config.model}"))
        with OutputDir(target) as out:
            summary["seconds"] = time.perf_counter() - t0
            atomic_write_text(out.file("predictions.csv"), predictions.to_csv(index=False, float_format="%.10g"))
            atomic_write_json(out.file("backtest.json"), summary)
            from forecast.backtest_figure import plot_backtest   # matplotlib only when drawing

            plot_backtest(predictions, summary, out.file("backtest.png"), unit=price_currency(whole.info))
    summary = to_jsonable(summary)
    summary.update({"seconds": time.perf_counter() - t0, "out_dir": target, "predictions": predictions})
    return summary
