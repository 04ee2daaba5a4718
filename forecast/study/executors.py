"""Executors: where a study's runs train, and the one loop that collects them.

:func:`execute` loads every source once on the client, hands each run to an executor
as data (configuration + price frame), writes each returned run folder atomically as
it arrives (the client is the only writer, so workers need no shared file system),
shows progress, and carries on past failed runs: a run that fails for a reason of its
own is recorded in the :class:`Outcome` with one line, and every other run finishes.

Two executors share the interface ``with executor: for spec, result, error in
executor.run(tasks)``:

* :class:`LocalPool` (the default): ``spawn``-ed worker processes on this machine;
* :class:`forecast.study.dask_executor.DaskExecutor`: a Dask distributed cluster
  (``--scheduler tcp://HOST:PORT``, or ``local[:N]`` for a LocalCluster).

Both run :func:`forecast.study.tasks.prepare_worker` once per worker and
:func:`forecast.study.tasks.train_one` per run, so a run's files are the same whichever
executor trained it.

This module stays cheap to import (no NumPy at module level).
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from forecast.errors import UserInputError, first_line
from forecast.study.tasks import prepare_worker, train_one

__all__ = ["THREAD_VARS", "RUN_COST", "MAX_ATTEMPTS", "Outcome", "Failure", "LocalPool", "thread_env",
           "worker_env", "threads_label", "failure_line", "load_sources", "make_executor", "execute"]

#: Thread-count variables of the libraries a worker may load.
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
#: Relative cost of one epoch per model, so the longest runs start first and the
#: study does not end with one core training alone (the order changes no result).
RUN_COST = {"hybrid": 14.0, "mamba": 13.0, "gru": 1.7, "mingru": 1.0}
#: Times a run is started before a worker that keeps dying under it fails it (Dask's
#: default ``distributed.scheduler.allowed-failures`` is 3 retries as well).
MAX_ATTEMPTS = 3
#: The project root, put on the workers' PYTHONPATH.
_ROOT = Path(__file__).resolve().parents[2]


def thread_env(backend: str, threads: int) -> dict:
    """Thread-count variables for a worker.

    BLAS is pinned to one thread: the gain on these small products is nil and a
    different thread count may split a sum differently, which would make results
    depend on ``--jobs``. Numba gets ``threads`` (its kernels cut work by shape, not by
    thread, so results are identical for any count).
    """
    env = {name: "1" for name in THREAD_VARS}
    env["NUMBA_NUM_THREADS"] = str(threads if backend == "numba" else 1)
    return env


def threads_label(backend: str, threads: int) -> str:
    """``"2 Numba, 1 BLAS"``: the threads one run uses, for the report."""
    return f"{thread_env(backend, threads)['NUMBA_NUM_THREADS']} Numba, 1 BLAS"


class _patched_environ:
    """Set environment variables for the ``with`` block, then restore the old values.

    Worker processes are spawned inside the block and inherit the variables from their
    very first instruction, before anything imports NumPy or Numba.
    """

    def __init__(self, values: dict):
        self.values = values
        self.saved: dict = {}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)
        return self

    def __exit__(self, *exc):
        for key, old in self.saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        return False


def worker_env(plan) -> dict:
    """Environment of the worker processes this machine starts (pool or LocalCluster)."""
    env = dict(thread_env(plan.backend, plan.threads))
    # Spawned workers must import this project even when it is not installed (spawn
    # also copies sys.path, but only after the interpreter has started).
    paths = [str(_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["MPLBACKEND"] = "Agg"
    return env


def failure_line(exc: BaseException) -> str:
    """One line saying why a run failed: the message of bad input, else type and message."""
    if isinstance(exc, UserInputError):
        return str(exc)
    return f"{type(exc).__name__}: {first_line(exc)}"


@dataclass(frozen=True)
class Failure:
    """Why a run failed, in one line, and whether the cause was bad input (a broken CSV)."""

    line: str
    bad_input: bool = False

    def __str__(self) -> str:
        return self.line

    @classmethod
    def of(cls, exc: BaseException) -> "Failure":
        return cls(failure_line(exc), isinstance(exc, UserInputError))


# -- the local pool ----------------------------------------------------------------------

class LocalPool:
    """Runs in ``plan.jobs`` ``spawn``-ed processes on this machine.

    A fresh interpreter per worker (no forked copy of the parent's threads or loaded
    libraries), started with the thread-count variables of :func:`thread_env` already
    in its environment; each worker trains several runs one after the other, so the
    start-up and the imports are paid once per worker. When a worker process dies
    (killed, out of memory) the pool breaks; its unfinished runs go to a new pool, up
    to :data:`MAX_ATTEMPTS` starts each.
    """

    def __init__(self, plan):
        self.plan = plan
        self.threads = plan.threads    # Numba threads per run
        self.restarted = 0             # runs sent to a new pool after a worker died

    def __enter__(self) -> "LocalPool":
        from forecast.pipeline import warm_kernels

        # Compile once here, so the workers load the kernels from Numba's disk cache
        # instead of all compiling the same kernels at the same time.
        warm_kernels(self.plan.backend, (self.plan.base["dtype"],))
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def describe(self) -> dict:
        """What the report says about where the runs trained."""
        info = {"executor": "local process pool", "jobs (runs at once)": self.plan.jobs,
                "threads per run": threads_label(self.plan.backend, self.threads)}
        if self.restarted:
            info["runs restarted after a worker process died"] = self.restarted
        return info

    def _pool(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        init = (self.plan.backend, (self.plan.base["dtype"],), self.threads)
        with _patched_environ(worker_env(self.plan)):
            return ProcessPoolExecutor(max_workers=self.plan.jobs, mp_context=ctx,
                                       initializer=prepare_worker, initargs=init)

    def run(self, tasks):
        """Yield ``(spec, result, None)`` or ``(spec, None, Failure)`` as runs finish."""
        pending = list(tasks)
        order = {spec: i for i, (spec, _) in enumerate(pending)}   # most expensive first
        attempts: dict = {}
        while pending:
            pending.sort(key=lambda task: order[task[0]])
            pool = self._pool()
            try:
                futures = {pool.submit(train_one, **kwargs): (spec, kwargs) for spec, kwargs in pending}
                pending = []
                for fut in as_completed(futures):
                    spec, kwargs = futures[fut]
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        attempts[spec] = attempts.get(spec, 0) + 1
                        if attempts[spec] < MAX_ATTEMPTS:
                            pending.append((spec, kwargs))
                            self.restarted += 1
                        else:
                            yield spec, None, Failure(f"its worker process died {MAX_ATTEMPTS} times")
                        continue
                    except Exception as exc:
                        yield spec, None, Failure.of(exc)
                        continue
                    yield spec, result, None
            except BaseException:
                _stop(pool)
                raise
            pool.shutdown(wait=True)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel queued runs and end the workers still training (on an interrupt)."""
    # The executor has no public way to stop a running task; its process table is the
    # only handle on workers that would otherwise train for minutes to no purpose (and
    # keep this process waiting for them at exit). shutdown() drops the table, so it is
    # read first.
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()


def make_executor(plan):
    """The executor ``plan.scheduler`` asks for (Dask is imported only when asked for)."""
    if plan.scheduler is None:
        return LocalPool(plan)
    from forecast.study.dask_executor import DaskExecutor

    return DaskExecutor(plan)


# -- the loop ----------------------------------------------------------------------------

@dataclass
class Outcome:
    """What :func:`execute` did: seconds of every finished run, the reason of every failure."""

    seconds: dict = field(default_factory=dict)      # RunSpec -> seconds in its worker
    failures: dict = field(default_factory=dict)     # RunSpec -> Failure
    executor: dict = field(default_factory=dict)     # the executor's describe()


def load_sources(runs, start, end) -> tuple[dict, dict]:
    """Load every source of ``runs`` once: ``({source: (frame, info)}, {source: error line})``."""
    from forecast.data import load_source

    loaded, failed = {}, {}
    for source in dict.fromkeys(spec.source for spec in runs):
        try:
            loaded[source] = load_source(source, start, end)
        except Exception as exc:   # a bad source fails its runs, not the study
            failed[source] = Failure.of(exc)
    return loaded, failed


def _cost(spec) -> float:
    """Expected training time of a run, up to a constant (longest runs go first)."""
    return RUN_COST.get(spec.model, 10.0) * spec.seq_len * int(spec.config.get("epochs", 1))


def execute(plan, runs=None, progress=True, executor=None) -> Outcome:
    """Train ``runs`` (default: all of the plan) and write their folders as they finish.

    Parameters
    ----------
    plan : StudyPlan
    runs : list of RunSpec, optional
    progress : bool
        A progress bar and one line per finished or failed run, on stderr.
    executor : optional
        An executor already entered (``with executor:``) by the caller; default: a
        :func:`make_executor` ``(plan)`` started and closed here.

    Returns
    -------
    Outcome
        Failed runs are listed there, not raised: the other runs still finish.

    Raises
    ------
    UserInputError
        When the executor cannot run anything (an unreachable scheduler, workers with
        another version of the project); nothing is written then.
    """
    from forecast.pipeline import write_run_files

    runs = sorted(plan.runs if runs is None else runs, key=_cost, reverse=True)
    outcome = Outcome()
    if not runs:
        return outcome
    sources, bad = load_sources(runs, plan.base.get("start"), plan.base.get("end"))
    owned = executor is None
    executor = make_executor(plan) if owned else executor
    tasks = []
    for spec in runs:
        if spec.source in bad:
            outcome.failures[spec] = bad[spec.source]
        else:
            frame, info = sources[spec.source]
            tasks.append((spec, {"config": spec.config, "frame": frame, "info": info,
                                 "threads": executor.threads}))
    bar = _progress_bar(len(runs), progress)
    try:
        for spec, message in outcome.failures.items():
            _report(bar, spec, f"FAILED: {message}")
        if tasks:
            with executor if owned else contextlib.nullcontext():
                for spec, result, error in executor.run(tasks):
                    _collect(outcome, bar, spec, result, error, write_run_files)
                outcome.executor = executor.describe()
    finally:
        bar.close()
    return outcome


def _collect(outcome: Outcome, bar, spec, result, error, write) -> None:
    """Write a finished run's folder (the client is the only writer) or record its failure."""
    if error is None:
        try:
            write(spec.run_dir, result["files"])
        except (OSError, UserInputError) as exc:
            error = Failure(f"writing {spec.run_dir}: {failure_line(exc)}")
    if error is None:
        outcome.seconds[spec] = result["seconds"]
        _report(bar, spec, f"{result['brief']} in {result['seconds']:.1f} s")
    else:
        outcome.failures[spec] = error
        _report(bar, spec, f"FAILED: {error}")


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="runs", unit="run", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True, leave=False)


def _report(bar, spec, text: str) -> None:
    """Advance the bar and print one line above it (nothing when progress is off)."""
    bar.update(1)
    if not bar.disable:
        bar.write(f"[{bar.n:>{len(str(bar.total))}}/{bar.total}] {spec.label}: {text}", file=sys.stderr)
