"""Medians of interleaved samples, so a ratio survives a machine whose load drifts.

:func:`time_medians` samples functions of this process; :func:`time_workers` samples
implementations hosted by worker processes (:mod:`bench.harness.client`).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Timing", "time_medians", "time_median", "time_workers", "worst_other_load", "benchmark_worker"]


@dataclass
class Timing:
    """Median seconds per call and how it was measured.

    ``other_load`` (workers only): the share of the machine's CPU that other processes
    used during the samples, all bursts together (:class:`bench.harness.client.OtherLoad`).
    """

    median: float
    samples: int
    loops: int
    other_load: float | None = None

    def __float__(self) -> float:
        return self.median


def time_medians(fns: dict, budget: float = 0.5, min_samples: int = 5, max_samples: int = 50,
                 min_sample_time: float = 2e-3) -> dict:
    """Median wall time of each ``fn()`` in ``fns``, sampled interleaved.

    Samples of the functions alternate (a, b, c, a, b, c, ...), so a change in machine
    load hits every contender alike and their ratio (the speed-up) stays meaningful on
    a shared machine even when the absolute times drift. The median, not the mean,
    because outliers only ever go one way. Calls shorter than ``min_sample_time`` are
    looped inside one sample so timer resolution and call overhead do not dominate.

    Parameters
    ----------
    fns : dict of str to callable
        Already warmed up (compiled) by the caller; one extra untimed call of each is
        made here to size the loops.
    budget : float
        Target total seconds of timed calls, all functions together.
    min_samples, max_samples : int
        Bounds on the number of samples of each function.
    min_sample_time : float

    Returns
    -------
    dict of str to Timing
    """
    loops, first = {}, {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        first[name] = max(time.perf_counter() - t0, 1e-9)
        loops[name] = max(1, int(np.ceil(min_sample_time / first[name]))) if first[name] < min_sample_time else 1
    round_cost = sum(first[k] * loops[k] for k in fns)
    samples = int(np.clip(budget / round_cost, min_samples, max_samples))
    times = {name: [] for name in fns}
    for _ in range(samples):
        for name, fn in fns.items():
            n = loops[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: Timing(statistics.median(ts), samples, loops[name]) for name, ts in times.items()}


def time_median(fn: Callable, **kwargs) -> Timing:
    """Median wall time of one function; see :func:`time_medians` for the keywords."""
    return time_medians({"fn": fn}, **kwargs)["fn"]


def time_workers(contenders: dict, budget: float = 5.0, min_rounds: int = 3, max_rounds: int = 15,
                 min_burst_time: float = 0.15, max_burst: int = 10, probe: bool = True,
                 warmup: int = 1) -> dict:
    """Median step time of implementations in worker processes, sampled in interleaved bursts.

    Each round visits every contender once: the worker makes one untimed step (its thread
    pools wake up, as they are awake in a training loop), then a burst of timed steps,
    timing each inside itself (:func:`bench.harness.worker.measure`, no pipe in the
    measured interval). Between visits the harness waits until every contender is idle
    (:func:`bench.harness.client.wait_quiet`): one worker's spinning threads must not
    take the cores of the next. Rounds alternate the contenders, so a drift in machine
    load hits all of them alike.

    Parameters
    ----------
    contenders : dict of str to (Worker, str)
        Name to a worker and the id of its case (set up and checked by the caller).
    budget : float
        Target seconds of timed steps, all contenders together.
    min_rounds, max_rounds : int
    min_burst_time : float
        A burst lasts at least this long (``max_burst`` steps at most).
    probe : bool
        Time one step of each first, to size bursts and rounds; without it every burst
        is one step and there are ``min_rounds`` rounds (smoke runs).
    warmup : int
        Untimed steps before each burst: 0 where a step is itself a long loop of steps
        (an epoch), whose first step wakes the pools for the rest.

    Returns
    -------
    dict of str to Timing
        ``samples`` is the number of timed steps, ``loops`` the burst length.
    """
    from bench.harness.client import OtherLoad, wait_quiet

    pids = [w.pid for w, _ in contenders.values()] + [0]     # 0: this process's own pools
    burst = {name: 1 for name in contenders}
    rounds = min_rounds
    if probe:
        cost = {}
        for name, (worker, case) in contenders.items():
            cost[name] = max(worker.measure(case, calls=1, warmup=1)[0], 1e-6)
            wait_quiet(pids)
        for name, t in cost.items():
            burst[name] = int(np.clip(np.ceil(min_burst_time / t), 1, max_burst))
        round_cost = sum(cost[n] * burst[n] for n in contenders)
        rounds = int(np.clip(budget / round_cost, min_rounds, max_rounds))
    samples: dict = {name: [] for name in contenders}
    loads: dict = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (worker, case) in contenders.items():
            with OtherLoad([worker.pid]) as load:
                samples[name] += worker.measure(case, calls=burst[name], warmup=warmup)
            loads[name].append(load)
            wait_quiet(pids)
    return {name: Timing(statistics.median(ts), len(ts), burst[name], OtherLoad.combined(loads[name]))
            for name, ts in samples.items()}


def worst_other_load(timings: dict) -> float | None:
    """The largest ``other_load`` of a set of timings (None if none was measured)."""
    loads = [t.other_load for t in timings.values() if t.other_load is not None]
    return max(loads) if loads else None


def benchmark_worker(benchmark, pool, worker, cases) -> list:
    """Let pytest-benchmark time step requests to a worker (after warm-up and quiet).

    The timed call is the round trip of ``step`` requests for every case in ``cases``
    (one case, or the parts of a floor, in order): microseconds of pipe against
    milliseconds of work. The worker's own time of each call goes to
    ``benchmark.extra_info["inside_median_s"]``, so the pipe's share can be checked, and
    the share of the machine other processes used meanwhile to ``"other_load"``.

    Returns
    -------
    list of float
        The inside times of the timed calls.
    """
    from bench.harness.client import OtherLoad

    cases = [cases] if isinstance(cases, str) else list(cases)
    for case in cases:
        worker.warmup(case, 2)
    pool.others_quiet(worker)
    inside = []
    with OtherLoad([worker.pid]) as load:
        benchmark(lambda: inside.append(sum(worker.step(case) for case in cases)))
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        # pytest-benchmark also calls while it calibrates: keep the timed rounds only
        inside = inside[-stats.stats.rounds * stats.iterations:]
    benchmark.extra_info["inside_median_s"] = statistics.median(inside)
    benchmark.extra_info["other_load"] = load.share
    return inside
