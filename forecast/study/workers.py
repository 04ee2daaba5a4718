"""What every executor needs to start and describe its workers, and to say why a run failed.

Thread-count variables for worker processes (:func:`thread_env`, :func:`worker_env`),
and :class:`Failure`, the one-line reason of a failed run. Shared by
:mod:`forecast.study.local_pool` and :mod:`forecast.study.dask_executor`.

This module stays cheap to import (no NumPy at module level).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import UserInputError, first_line

__all__ = ["THREAD_VARS", "MAX_ATTEMPTS", "PROJECT_ROOT", "Failure", "thread_env", "threads_label", "patched_environ",
           "worker_env", "failure_line"]

#: Thread-count variables of the libraries a worker may load.
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
#: Times a run is started before a worker that keeps dying under it fails it (Dask's
#: default ``distributed.scheduler.allowed-failures`` is 3 retries as well).
MAX_ATTEMPTS = 3
#: The project root (engine/, models/, forecast/ are folders of it), put on the workers' PYTHONPATH.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


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


class patched_environ:
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
    paths = [str(PROJECT_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
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
