"""One trial of ``cli.py tune``: train a configuration, report each epoch, maybe prune.

:func:`run_trial` runs wherever the trial runs (this process, or a Dask worker) and
needs neither the study's storage nor a network: it receives the run's configuration,
the source loaded by the client, the pruner and the finished trials' validation curves
(:func:`reference_curves`), and returns what happened as plain data. The client alone
writes to the study (:mod:`forecast.tune.runner`), so a SQLite file serves any cluster.

The pruner decides in the worker, on a throw-away in-memory study holding the curves
the client sent: the same decision it would take on the real study, except that trials
finishing elsewhere while this one trains are not seen (pruners such as Optuna's median
pruner only compare a trial with *completed* trials, so this only makes them a little
more lenient). Pruners that keep their own state in the study (successive halving,
Hyperband) are therefore not offered.

The objective is the run's best validation loss (MSE on the scaled validation part; the
epoch whose weights training keeps). Nothing computed on the test part reaches a trial.

This module stays cheap to import (Optuna and NumPy are imported inside the functions).
"""
from __future__ import annotations

import math
import pickle
import threading
import time

__all__ = ["run_trial", "reference_curves", "failed_outcome", "TRIAL_STATES"]

#: What :func:`run_trial` reports in ``state``.
TRIAL_STATES = ("complete", "pruned", "failed")

#: One trial at a time per process (a Dask worker with several threads would otherwise
#: train two trials in one process, sharing its BLAS limit and Numba's threads).
_TRIAL_LOCK = threading.Lock()


def failed_outcome(error: str | None) -> dict:
    """What :func:`run_trial` returns for a trial that failed with ``error`` (one line)."""
    return {"state": "failed", "value": None, "curve": {}, "epochs": 0, "best_epoch": None,
            "stop_reason": None, "seconds": 0.0, "error": error}


def reference_curves(study) -> list:
    """``[(value, {epoch: val_loss})]`` of the study's completed trials, for the pruner."""
    from optuna.trial import TrialState

    return [(t.value, dict(t.intermediate_values))
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def _shadow_trial(pruner, curves):
    """A trial of an in-memory study that holds ``curves``: what the pruner looks at."""
    import optuna
    from optuna.trial import TrialState, create_trial

    shadow = optuna.create_study(direction="minimize", pruner=pruner,
                                 sampler=optuna.samplers.RandomSampler(seed=0))
    shadow.add_trials([create_trial(state=TrialState.COMPLETE, value=value, intermediate_values=curve)
                       for value, curve in curves])
    return shadow.ask()


def loss_unit(dataset) -> float:
    """The factor that turns a validation MSE on the scaled target into the target's units.

    The trainer's losses are on the target scaled by a scaler fitted on the training
    windows, and those windows depend on searched options (``seq_len`` moves the first
    target row, so a min-max range can take in, or leave out, an extreme day). Compared
    on the scaled target, two trials would be scored in different units; in the target's
    own units (relative changes or log returns under the stock protocol) they are not. A
    ``--protocol ltsf`` loss is the benchmark's own standardised MSE (its scaler is fitted
    on the training rows, whatever the window): 1.
    """
    import numpy as np

    scaler = getattr(dataset, "target_scaler", None)
    if scaler is None:
        return 1.0
    ends = scaler.inverse_transform(np.array([[0.0], [1.0]]))
    return float((ends[1, 0] - ends[0, 0]) ** 2)


def run_trial(config: dict, frame, info: dict, pruner=None, curves=(), threads: int | None = None) -> dict:
    """Train one configuration; return its outcome as data.

    Parameters
    ----------
    config : dict
        Complete RunConfig fields of the trial.
    frame, info
        The source as the client loaded it (:func:`forecast.pipeline.load_frame`).
    pruner : optuna.pruners.BasePruner, its pickle (bytes) or None
        Judges the trial after each epoch; None: never pruned. A Dask worker receives the
        pickle and loads it here, after Optuna is imported (see the runner).
    curves : list
        :func:`reference_curves` of the study when the trial started.
    threads : int or None
        Numba threads for the trial (a Dask worker's share of the cores); None: leave them.

    Returns
    -------
    dict
        ``state`` (one of :data:`TRIAL_STATES`), ``value`` (best validation loss in the
        target's units, :func:`loss_unit`; None unless complete), ``curve`` (``{epoch:
        validation loss}``, every finite epoch, same units),
        ``epochs``, ``best_epoch``, ``stop_reason``, ``seconds`` and ``error`` (one line,
        when failed).
    """
    import optuna
    import optuna.pruners  # noqa: F401 - loaded before a pickled pruner needs it

    optuna.logging.set_verbosity(optuna.logging.WARNING)   # the shadow study's messages are noise
    if isinstance(pruner, bytes):
        pruner = pickle.loads(pruner)
    from forecast.config import RunConfig
    from forecast.pipeline import dataset_from_frame, train_run
    from forecast.study.tasks import set_kernel_threads
    from forecast.study.workers import failure_line

    outcome = failed_outcome(None)       # until the trial says otherwise
    curve = outcome["curve"]
    with _TRIAL_LOCK:
        start = time.perf_counter()
        shadow = _shadow_trial(pruner, curves) if pruner is not None else None
        last_epoch = int(config.get("epochs") or 0)

        unit = 1.0     # set from the trial's dataset before its first epoch

        def on_epoch(record: dict) -> bool:
            value = record["val_loss"] * unit
            outcome["epochs"] = record["epoch"]
            if not math.isfinite(value):
                return False     # fit stops by itself on a non-finite loss
            curve[int(record["epoch"])] = float(value)
            # After the last epoch the trial is trained: pruning it would only discard it.
            if shadow is not None and record["epoch"] < last_epoch:
                shadow.report(float(value), int(record["epoch"]))
                if shadow.should_prune():
                    raise optuna.TrialPruned()
            return False

        try:
            cfg = RunConfig.from_dict(dict(config)).validate()
            if threads is not None:
                set_kernel_threads(cfg.backend, threads)
            dataset = dataset_from_frame(cfg, frame, info)
            unit = loss_unit(dataset)
            run = train_run(cfg, dataset, progress=False, on_epoch=on_epoch)
            result = run.fit
            outcome.update(epochs=len(result.history), best_epoch=result.best_epoch,
                           stop_reason=result.stop_reason)
            if result.best_epoch is None or not math.isfinite(result.best_val_loss):
                outcome["error"] = result.note or "no epoch gave a finite validation loss"
            else:
                outcome.update(state="complete", value=float(result.best_val_loss) * unit)
        except optuna.TrialPruned:
            outcome.update(state="pruned", stop_reason="pruned")
        except Exception as exc:             # noqa: BLE001 - one trial's failure must not end the study
            # a diverged run, a model too large for memory (UserInputError), or a bug
            outcome["error"] = failure_line(exc)
        outcome["seconds"] = time.perf_counter() - start
    return outcome
