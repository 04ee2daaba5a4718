"""Executors: where a study's runs train.

The local executor (the default) runs them in a pool of ``spawn``-ed worker processes.
The thread-count variables are placed in the environment the workers are started with,
so they are set before NumPy or Numba load, which is the only moment they are read.
The result of a run depends on its configuration alone: the pipeline seeds everything
from the run's seed, BLAS is pinned to one thread, and the Numba kernels give
bit-identical results for any thread count, so ``--jobs`` changes the wall time and
nothing else.

This module stays cheap to import (no NumPy at module level): every worker imports it
to find :func:`train_one`.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from forecast.errors import UserInputError

__all__ = ["THREAD_VARS", "RUN_COST", "RunFailed", "thread_env", "train_one", "execute", "warm_kernels"]

#: Thread-count variables of the libraries a worker may load.
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
#: Relative cost of one epoch per model, so the longest runs start first and the
#: study does not end with one core training alone (the order changes no result).
RUN_COST = {"hybrid": 14.0, "mamba": 13.0, "gru": 1.7, "mingru": 1.0}
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


class RunFailed(RuntimeError):
    """A training run raised an unexpected error in its worker process."""


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


def _worker_env(plan) -> dict:
    env = dict(thread_env(plan.backend, plan.threads))
    # Spawned workers must import this project even when it is not installed (spawn
    # also copies sys.path, but only after the interpreter has started).
    paths = [str(_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["MPLBACKEND"] = "Agg"
    return env


def train_one(config: dict, run_dir: str) -> float:
    """Train one run into ``run_dir`` (in a worker process); return its wall time.

    Nothing here depends on which process runs it or what ran there before: the
    pipeline draws every random number from generators seeded by the run's seed.
    """
    from forecast.pipeline import RunConfig, run_training

    start = time.perf_counter()
    run_training(RunConfig.from_dict(config), run_dir, progress=False)
    return time.perf_counter() - start


def execute(plan, runs=None, progress=True) -> dict:
    """Train ``runs`` (default: all of the plan), ``plan.jobs`` worker processes at a time.

    Workers come from a ``spawn`` context: a fresh interpreter per worker (no forked
    copy of the parent's threads or loaded libraries), started with the thread-count
    variables of :func:`thread_env` already in its environment. Each worker trains
    several runs one after the other, so the interpreter start-up and the imports are
    paid once per worker rather than once per run.

    Returns
    -------
    dict
        ``{RunSpec: seconds}`` for every run trained.

    Raises
    ------
    UserInputError, RunFailed
        The first failure; the runs not yet started are cancelled and the workers
        are stopped.
    """
    runs = list(plan.runs if runs is None else runs)
    seconds: dict = {}
    if not runs:
        return seconds
    ctx = multiprocessing.get_context("spawn")
    width = len(str(len(runs)))
    with _patched_environ(_worker_env(plan)):
        pool = ProcessPoolExecutor(max_workers=plan.jobs, mp_context=ctx)
        try:
            futures = {pool.submit(train_one, spec.config, str(spec.run_dir)): spec
                       for spec in sorted(runs, key=_cost, reverse=True)}
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    try:
        for fut in as_completed(futures):
            spec = futures[fut]
            try:
                seconds[spec] = fut.result()
            except UserInputError as exc:
                raise UserInputError(f"{spec.label}: {exc}") from exc
            except Exception as exc:
                raise RunFailed(f"{spec.label} failed: {type(exc).__name__}: {exc}") from exc
            if progress:
                print(f"[{len(seconds):>{width}}/{len(runs)}] {spec.label}: "
                      f"{_brief(spec.run_dir)} in {seconds[spec]:.1f} s",
                      file=sys.stderr, flush=True)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    return seconds


def _cost(spec) -> float:
    """Expected training time of a run, up to a constant (longest runs go first)."""
    return RUN_COST.get(spec.model, 10.0) * spec.seq_len * int(spec.config.get("epochs", 1))


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel queued runs and end the workers still training (after a failure)."""
    # The executor has no public way to stop a running task; its process table is the
    # only handle on workers that would otherwise train for minutes to no purpose (and
    # keep this process waiting for them at exit). shutdown() drops the table, so it is
    # read first.
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()


def _brief(run_dir: Path) -> str:
    """``12 epochs, test RMSE 3.21`` for the progress line."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        history = json.loads((run_dir / "history.json").read_text())
        return f"{len(history)} epochs, test RMSE {float(metrics['test']['rmse']):.4g}"
    except (OSError, ValueError, KeyError, TypeError):
        return "done"


def warm_kernels(backend: str) -> None:
    """Compile the kernels once here, so the workers load them from Numba's disk cache.

    Without this every worker would compile the same kernels at the same time. The
    kernels are compiled with ``cache=True``; the cache is shared through the file
    system (``NUMBA_CACHE_DIR`` when set). The NumPy backend has nothing to compile.
    """
    from engine.backend import BackendUnavailableError, get_kernels

    try:
        kernels = get_kernels(backend)
    except BackendUnavailableError as exc:
        raise UserInputError(str(exc)) from exc
    kernels.warmup()
