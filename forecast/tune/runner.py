"""Where trials run, and the one loop that asks for them and records them.

:func:`drive` is Optuna's ask-and-tell loop: it asks the study for a trial, lets the
sampler draw its values, hands the configuration to an executor, and tells the study
each result as it arrives (with the validation loss of every epoch, so the figures show
the curves). It keeps as many trials running as the executor has room for:

* :class:`InProcess` (no ``--scheduler``): one trial at a time in this process, the
  Numba kernels on every core;
* :class:`DaskTrials` (``--scheduler tcp://...`` or ``local[:N]``): one trial per
  Dask worker, on the cluster the study already uses
  (:class:`forecast.study.dask_executor.DaskExecutor`: same fingerprint check, thread
  pinning and kernel warm-up before a worker's first trial). The source is sent to the
  workers once. A worker that dies mid-trial costs that trial only: the scheduler starts
  it again on another worker, and after Dask's allowed failures it is recorded as failed.

While several trials run, Optuna's TPE sampler treats the running ones as if they had
scored badly (its "constant liar"), so parallel trials do not all draw the same values.
"""
from __future__ import annotations

import dataclasses
import pickle
import sys
import time
import types
import uuid

from forecast.tune.objective import failed_outcome, reference_curves, run_trial
from forecast.tune.space import suggest

__all__ = ["InProcess", "DaskTrials", "make_executor", "drive", "Progress"]


class InProcess:
    """Trials one after the other in this process."""

    capacity = 1
    threads = None            # the backend's own default: every core

    def __init__(self):
        self._queue: list = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def share(self, frame):
        return frame

    def submit(self, number: int, kwargs: dict) -> None:
        self._queue.append((number, kwargs))

    def wait(self):
        """Run the oldest queued trial; ``[(number, outcome, None)]``."""
        number, kwargs = self._queue.pop(0)
        return [(number, run_trial(**kwargs, threads=self.threads), None)]

    def cancel(self) -> None:
        self._queue.clear()

    def describe(self) -> dict:
        return {"executor": "this process, one trial at a time"}


class DaskTrials:
    """Trials as tasks on a Dask cluster, one per worker at a time.

    Parameters
    ----------
    scheduler : str
        ``"local"`` or a scheduler address (see :func:`forecast.study.plan.parse_scheduler`).
    workers : int or None
        Worker processes of a local cluster (None: one per usable core).
    backend, dtype : str
        What the workers warm their kernels for.
    """

    def __init__(self, scheduler: str, workers: int | None, backend: str, dtype: str):
        from forecast.study.dask_executor import DaskExecutor
        from forecast.study.plan import LOCAL_SCHEDULER, usable_cores

        jobs = (workers or usable_cores()) if scheduler == LOCAL_SCHEDULER else 1
        # The study's executor starts (or reaches) the cluster and checks the workers; it
        # reads these attributes of a study plan and nothing else.
        plan = types.SimpleNamespace(scheduler=scheduler, jobs=jobs, threads=max(1, usable_cores() // jobs),
                                     backend=backend, base={"dtype": dtype})
        self.cluster = DaskExecutor(plan)
        self._futures: dict = {}
        self._batch = uuid.uuid4().hex[:8]

    @property
    def threads(self) -> int:
        return self.cluster.threads

    @property
    def capacity(self) -> int:
        # One trial per worker process (the trial lock serialises more), counted afresh
        # so that workers joining a remote cluster are put to work.
        return max(1, len(self.cluster.client.nthreads()))

    def __enter__(self):
        self.cluster.__enter__()
        return self

    def __exit__(self, *exc):
        self.cancel()
        return self.cluster.__exit__(*exc)

    def share(self, frame):
        """The source as each trial receives it: the frame itself, sent with every trial.

        Scattered once instead, the frame lived on the workers as a piece of cluster data,
        and a killed worker that held its only copy (a broadcast to workers still starting
        can leave one) made the scheduler cancel every trial that referred to it, not only
        the killed worker's own. A source is small (a bundled ticker about 150 kB, ETTh1
        about 1 MB), so sending it with each trial costs little and no trial depends on
        another worker's memory.
        """
        return frame

    def submit(self, number: int, kwargs: dict) -> None:
        # The pruner travels as bytes, unpickled by the trial itself after it has imported
        # Optuna: unpickled by Dask on the worker's event loop, it imported Optuna's lazily
        # loaded submodules while a trial thread imported them too, and the race failed the
        # message ("KeyError: 'optuna.pruners'", seen on a 2-worker LocalCluster).
        kwargs = dict(kwargs, pruner=None if kwargs.get("pruner") is None else pickle.dumps(kwargs["pruner"]))
        fut = self.cluster.client.submit(run_trial, **kwargs, threads=self.threads, pure=False,
                                         key=f"trial-{self._batch}-{number}")
        self._futures[fut] = number

    def wait(self):
        """Block until a trial ends; ``[(number, outcome or None, error line or None)]``."""
        from distributed import wait

        from forecast.study.dask_executor import _task_error

        try:
            done, _ = wait(list(self._futures), return_when="FIRST_COMPLETED")
        except Exception:    # noqa: BLE001 - distributed >= 2024 raises when a future was cancelled
            done = [f for f in self._futures if f.status != "pending"]
        finished = []
        for fut in done:
            number = self._futures.pop(fut)
            if fut.status == "finished":
                finished.append((number, fut.result(), None))
            elif fut.status == "cancelled":
                finished.append((number, None, "its task was cancelled on the cluster"))
            else:
                finished.append((number, None, str(_task_error(fut.exception()))))
            fut.release()
        return finished

    def cancel(self) -> None:
        if self._futures and self.cluster.client is not None:
            self.cluster.client.cancel(list(self._futures))
        self._futures.clear()

    def describe(self) -> dict:
        return self.cluster.describe()


def make_executor(scheduler: str | None, workers: int | None, backend: str, dtype: str):
    """:class:`InProcess` without a scheduler, else :class:`DaskTrials`."""
    if scheduler is None:
        return InProcess()
    return DaskTrials(scheduler, workers, backend, dtype)


class Progress:
    """One line per finished trial on stderr (nothing when disabled)."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done = total, enabled, 0

    def line(self, study, number: int, outcome: dict) -> None:
        self.done += 1
        if not self.enabled:
            return
        state = outcome["state"]
        if state == "complete":
            what = f"validation loss {outcome['value']:.6g} (best epoch {outcome['best_epoch']} of {outcome['epochs']})"
        elif state == "pruned":
            last = outcome["curve"].get(outcome["epochs"])
            what = f"pruned after epoch {outcome['epochs']}" + (f" (validation loss {last:.6g})" if last else "")
        else:
            what = f"FAILED: {outcome['error']}"
        try:
            best = study.best_trial
            tail = f"; best {best.value:.6g} (trial {best.number})"
        except ValueError:     # no completed trial yet
            tail = ""
        width = len(str(self.total))
        print(f"[{self.done:>{width}}/{self.total}] trial {number}: {what} in {outcome['seconds']:.1f} s{tail}",
              file=sys.stderr, flush=True)


def tell(study, trial, outcome: dict) -> None:
    """Record a trial's outcome in the study (its curve first, then its state)."""
    from optuna.trial import TrialState

    for epoch, value in sorted(outcome["curve"].items()):
        trial.report(value, int(epoch))
    for key in ("epochs", "best_epoch", "stop_reason", "seconds", "error"):
        if outcome.get(key) is not None:
            trial.set_user_attr(key, outcome[key])
    if outcome["state"] == "complete":
        study.tell(trial, outcome["value"])
    elif outcome["state"] == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


def drive(study, space: dict, base, executor, frame, info, n_trials: int, timeout: float | None = None,
          pruner=None, progress: bool = True) -> dict:
    """Run ``n_trials`` more trials of ``study`` on ``executor`` (entered by the caller).

    Parameters
    ----------
    study : optuna.Study
    space : dict
        The search space (:mod:`forecast.tune.space`).
    base : RunConfig
        Validated; every trial is ``base`` with the drawn values.
    executor : InProcess or DaskTrials
    frame, info
        The source (:func:`forecast.pipeline.load_frame`), loaded once on the client.
    n_trials : int
    timeout : float or None
        Seconds after which no new trial starts (running ones finish).
    pruner : optuna.pruners.BasePruner or None
    progress : bool

    Returns
    -------
    dict
        ``trials`` (started here), ``seconds`` (wall time), ``states`` (count per state).
    """
    start = time.perf_counter()
    deadline = None if timeout is None else start + float(timeout)
    shared = executor.share(frame)
    running: dict = {}
    asked, states = 0, {}
    bar = Progress(n_trials, progress)
    try:
        while True:
            while (asked < n_trials and len(running) < executor.capacity
                   and (deadline is None or time.perf_counter() < deadline)):
                trial = study.ask()
                params = suggest(space, trial)
                config = dataclasses.replace(base, **params, out=None).to_dict()
                # The starting configuration always trains to the end: the best trial is then
                # never worse than it, whatever the pruner.
                judge = None if trial.user_attrs.get("start") else pruner
                executor.submit(trial.number, {"config": config, "frame": shared, "info": info,
                                               "pruner": judge, "curves": reference_curves(study)})
                running[trial.number] = trial
                asked += 1
            if not running:
                break
            for number, outcome, error in executor.wait():
                outcome = outcome if error is None else failed_outcome(error)
                tell(study, running.pop(number), outcome)
                states[outcome["state"]] = states.get(outcome["state"], 0) + 1
                bar.line(study, number, outcome)
    except BaseException:
        executor.cancel()
        for trial in running.values():     # a trial left RUNNING would stay so in the storage
            tell(study, trial, failed_outcome("interrupted"))
        raise
    return {"trials": asked, "seconds": time.perf_counter() - start, "states": states}
