"""The default executor: ``spawn``-ed worker processes on this machine."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from forecast.study.tasks import prepare_worker, train_one
from forecast.study.workers import MAX_ATTEMPTS, Failure, patched_environ, threads_label, worker_env

__all__ = ["LocalPool"]


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
        with patched_environ(worker_env(self.plan)):
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
