"""The Dask executor: a study's runs as tasks on a Dask distributed cluster.

``--scheduler tcp://HOST:PORT`` connects to a running cluster (``dask scheduler`` plus
``dask worker`` processes, or any deployment); ``--scheduler local[:N]`` starts a
``LocalCluster`` of N worker processes (one thread each) on this machine and closes it
at the end.

* Before any run, a worker plugin (:class:`StudyWorkerPlugin`) checks each worker's
  code fingerprint and library versions against the client's
  (:mod:`forecast.study.fingerprint`), pins BLAS to one thread and warms the kernels
  (:func:`forecast.study.tasks.prepare_worker`). A worker that joins later runs the same
  setup before it gets a task; a mismatch refuses the worker with one line.
* Every run is one task, :func:`forecast.study.tasks.train_one`, whose arguments carry
  the data and whose result carries the run folder, so workers need no shared file
  system.
* A worker that dies mid-run loses nothing: the scheduler gives its runs to another
  worker (up to ``distributed.scheduler.allowed-failures`` times, then the run is
  reported failed). An exception raised by a run is not retried: it would fail again.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import uuid

import dask
from distributed import Client, KilledWorker, LocalCluster, as_completed
from distributed.diagnostics.plugin import WorkerPlugin

from forecast.errors import UserInputError, first_line
from forecast.study.fingerprint import VersionMismatch, check_fingerprint, fingerprint
from forecast.study.plan import LOCAL_SCHEDULER
from forecast.study.tasks import prepare_worker, train_one
from forecast.study.workers import Failure, failure_line, threads_label, worker_env

__all__ = ["DaskExecutor", "StudyWorkerPlugin", "PLUGIN_NAME", "CONNECT_TIMEOUT", "WORKER_WAIT"]

PLUGIN_NAME = "mamba-gru-study"
#: Seconds to reach the scheduler before ``--scheduler`` is reported unreachable.
CONNECT_TIMEOUT = 10
#: Seconds to wait for a first worker on a scheduler that has none.
WORKER_WAIT = 120


class StudyWorkerPlugin(WorkerPlugin):
    """Per-worker setup before its first run: version check, threads, kernel warm-up.

    Parameters
    ----------
    expected : dict
        The client's :func:`forecast.study.fingerprint.fingerprint`.
    backend : str
    dtypes : tuple of str
        The parameter dtypes the study trains in (the kernels to warm).
    threads : int
        Numba threads per run on this worker.
    """

    def __init__(self, expected: dict, backend: str, dtypes: tuple, threads: int):
        self.expected = expected
        self.backend = backend
        self.dtypes = tuple(dtypes)
        self.threads = int(threads)

    async def setup(self, worker):
        check_fingerprint(self.expected, worker.address)
        # Compiling can take minutes on a cold cache; off the event loop, so the worker
        # keeps answering the scheduler's heartbeats meanwhile.
        await asyncio.get_running_loop().run_in_executor(
            None, prepare_worker, self.backend, self.dtypes, self.threads)


class DaskExecutor:
    """Runs on a Dask cluster; see the module docstring.

    Parameters
    ----------
    plan : StudyPlan
        ``plan.scheduler`` is ``"local"`` (a LocalCluster of ``plan.jobs`` workers) or a
        scheduler address.
    """

    def __init__(self, plan):
        self.plan = plan
        self.local = plan.scheduler == LOCAL_SCHEDULER
        # A LocalCluster shares this machine's cores out as the pool does; on a remote
        # cluster one Numba thread per run, since each worker is meant to train one
        # run per core (dask worker --nworkers N --nthreads 1).
        self.threads = plan.threads if self.local else 1
        self.cluster = None
        self.client = None
        self._environ = None
        self._workers: dict = {}

    # -- lifetime ------------------------------------------------------------------------
    def __enter__(self) -> "DaskExecutor":
        try:
            self.client = self._start_local() if self.local else self._connect()
            self._register_plugin()
        except BaseException:
            self._close()
            raise
        return self

    def __exit__(self, *exc) -> bool:
        self._close()
        return False

    def _start_local(self) -> Client:
        # The nanny copies these into this process's environment every time it (re)starts
        # a worker process, which inherits them before it imports anything. What it
        # changes here is put back when the cluster closes (see _close).
        self._environ = dict(os.environ)
        spawn_env = {**dask.config.get("distributed.nanny.pre-spawn-environ", default={}),
                     **worker_env(self.plan)}
        # Dask sets MALLOC_TRIM_THRESHOLD_=65536 for its workers; that also turns off glibc's
        # adaptive mmap threshold, and the many mid-sized arrays a training step allocates
        # and frees then cost a system call each: a run took 3-4x longer than in a plain
        # process (hybrid, NumPy kernels: 11 s against 3 s). The sampling profiler, which
        # interrupts the training loops 100 times a second, is off for the same reason.
        spawn_env.pop("MALLOC_TRIM_THRESHOLD_", None)
        with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env,
                              "distributed.worker.profile.enabled": False}):
            self.cluster = LocalCluster(n_workers=self.plan.jobs, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=":0",
                                        silence_logs=logging.ERROR)
        return Client(self.cluster)

    def _connect(self) -> Client:
        address = self.plan.scheduler
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UserInputError(f"--scheduler {address}: cannot reach a Dask scheduler there "
                                 f"({first_line(exc)})") from None
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT)
        except (TimeoutError, asyncio.TimeoutError, OSError):
            client.close()
            raise UserInputError(f"--scheduler {address}: no worker joined within {WORKER_WAIT} s; "
                                 f"start some with 'dask worker {address} --nworkers -1 --nthreads 1'") from None
        return client

    def _register_plugin(self) -> None:
        plugin = StudyWorkerPlugin(fingerprint(), self.plan.backend, (self.plan.base["dtype"],),
                                   self.threads)
        try:
            self.client.register_plugin(plugin, name=PLUGIN_NAME)
        except UserInputError:
            raise
        except Exception as exc:   # e.g. a worker without this project cannot even unpickle it
            raise VersionMismatch(f"a Dask worker could not set up for the study ({failure_line(exc)}); "
                                  "install the client's version of the project on every worker") from None
        self._workers = dict(self.client.nthreads())     # {worker address: threads}
        crowded = [w for w, n in self._workers.items() if int(n) > 1]
        if crowded:
            print(f"note: {len(crowded)} Dask worker(s) have several threads; their runs take turns "
                  "(one run per process). Start workers with --nthreads 1 and --nworkers N instead.",
                  file=sys.stderr)

    def _close(self) -> None:
        if self.client is not None:
            # A plugin left on a shared scheduler would set up (or refuse) every worker
            # that joins later, long after this study.
            with contextlib.suppress(Exception):
                self.client.unregister_worker_plugin(PLUGIN_NAME)
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
        if self._environ is not None:
            _restore_environ(self._environ)
            self._environ = None

    def describe(self) -> dict:
        """What the report says about where the runs trained."""
        where = (f"Dask LocalCluster ({self.plan.jobs} worker processes, 1 thread each)" if self.local
                 else f"Dask scheduler {self.plan.scheduler}")
        return {"executor": where, "Dask workers at start": len(self._workers),
                "threads per run": threads_label(self.plan.backend, self.threads)}

    # -- the runs ------------------------------------------------------------------------
    def run(self, tasks):
        """Yield ``(spec, result, None)`` or ``(spec, None, Failure)`` as runs finish."""
        study = uuid.uuid4().hex[:8]
        futures = {}
        for i, (spec, kwargs) in enumerate(tasks):
            # The runs come most expensive first; keep that order on the cluster.
            fut = self.client.submit(train_one, **kwargs, key=f"run-{study}-{i}", pure=False,
                                     priority=len(tasks) - i)
            futures[fut] = spec
        try:
            for fut in as_completed(list(futures)):
                spec = futures.pop(fut)
                if fut.status == "finished":
                    result, error = fut.result(), None
                elif fut.status == "cancelled":
                    result, error = None, Failure("its task was cancelled on the cluster")
                else:
                    result, error = None, _task_error(fut.exception())
                fut.release()
                yield spec, result, error
        finally:
            if futures:           # interrupted: stop the runs nobody will collect
                self.client.cancel(list(futures))


def _restore_environ(saved: dict) -> None:
    """Put this process's environment back as ``saved`` (only the keys that changed)."""
    for key in set(os.environ) - set(saved):
        del os.environ[key]
    for key, value in saved.items():
        if os.environ.get(key) != value:
            os.environ[key] = value


def _task_error(exc: BaseException) -> Failure:
    if isinstance(exc, KilledWorker):
        return Failure(f"its worker died on every try (KilledWorker: {first_line(exc)})")
    return Failure.of(exc)
