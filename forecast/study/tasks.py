"""One run of a study as a worker trains it: configuration and data in, files out.

Every executor (the local process pool, a Dask cluster) calls the same two functions in
its workers: :func:`prepare_worker` once, before the first run, and :func:`train_one`
per run. A run gets its data as a frame loaded by the client and returns its run folder
as bytes, so a worker needs neither the client's files nor a network, and the client
alone writes the study's folder.

The result of a run depends on its configuration alone: the pipeline seeds everything
from the run's seed, BLAS is pinned to one thread, and the Numba kernels give
bit-identical results for any thread count, so the executor, the number of workers and
the order of the runs change the wall time and nothing else.

This module stays cheap to import (no NumPy at module level).
"""
from __future__ import annotations

import threading
import time

__all__ = ["prepare_worker", "set_kernel_threads", "train_one", "brief"]

#: One run at a time per process. A Dask worker started with several threads would
#: otherwise train runs side by side in one process, where the process-wide BLAS limit
#: and Numba's thread pools are shared.
_RUN_LOCK = threading.Lock()


def set_kernel_threads(backend: str, threads: int) -> None:
    """Give this thread's Numba kernels ``threads`` threads (at most what Numba started).

    A worker calls it at the start of every run (one run at a time per process).
    """
    if backend != "numba":
        return
    import numba

    from engine.backend import set_num_threads

    set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def prepare_worker(backend: str, dtypes, threads: int) -> None:
    """Once per worker process, before its first run: pin BLAS, warm the kernels.

    BLAS is held at one thread for the life of the process: the products are small,
    and a fixed thread count keeps the order of floating-point sums fixed. The kernels
    the runs will call are compiled, or loaded from Numba's disk cache, here rather
    than inside the first run (see :func:`forecast.pipeline.warm_kernels`).
    """
    from threadpoolctl import threadpool_limits

    from forecast.pipeline import warm_kernels

    threadpool_limits(limits=1, user_api="blas")
    set_kernel_threads(backend, threads)
    warm_kernels(backend, dtypes)


def train_one(config: dict, frame, info: dict, threads: int) -> dict:
    """Train one run in this worker and return its folder as data.

    Parameters
    ----------
    config : dict
        The run's RunConfig fields (see :class:`forecast.study.plan.RunSpec`).
    frame : pandas.DataFrame
        The run's source, as :func:`forecast.data.load_source` returned it on the client.
    info : dict
        The source's description from the same call.
    threads : int
        Numba threads for this run.

    Returns
    -------
    dict
        ``files`` (``{file name: bytes}``, for :func:`forecast.pipeline.write_run_files`),
        ``seconds`` (wall time of the run in the worker) and ``brief`` (a line for the
        progress display).
    """
    from forecast.classical import is_classical
    from forecast.pipeline import RunConfig, dataset_from_frame, train_run

    with _RUN_LOCK:
        start = time.perf_counter()
        if is_classical(config.get("model")):
            # A statsforecast baseline (forecast.classical): fitted, not trained, so no kernels.
            from forecast.classical_run import classical_run

            cfg = RunConfig.from_dict(config).validate()
            run = classical_run(cfg, dataset_from_frame(cfg, frame, info))
            return {"files": run.files(), "seconds": time.perf_counter() - start,
                    "brief": brief(run.fitted.description, run.metrics["test"])}
        cfg = RunConfig.from_dict(config).validate()
        set_kernel_threads(cfg.backend, threads)
        run = train_run(cfg, dataset_from_frame(cfg, frame, info), progress=False)
        files = run.files()
        return {"files": files, "seconds": time.perf_counter() - start,
                "brief": brief(len(run.fit.history), run.metrics["test"])}


def brief(epochs, test: dict) -> str:
    """``12 epochs, test RMSE 3.21`` for the progress line (MSE under --protocol ltsf,
    whose metrics have no RMSE); ``epochs`` may instead be a text (a fitted baseline's
    model, ``ARIMA(5,1,3), test RMSE 3.21``)."""
    name = "rmse" if "rmse" in test else "mse"
    value = test.get(name)
    text = "n/a" if value is None else f"{float(value):.4g}"
    what = epochs if isinstance(epochs, str) else f"{epochs} epochs"
    return f"{what}, test {name.upper()} {text}"
