"""Medians of interleaved samples, so a ratio survives a machine whose load drifts."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Timing", "time_medians", "time_median"]


@dataclass
class Timing:
    """Median seconds per call and how it was measured."""

    median: float
    samples: int
    loops: int

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
