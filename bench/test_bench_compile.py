"""Compile cost of the Numba kernel set, each round in a fresh interpreter.

* cold: an empty ``NUMBA_CACHE_DIR``, so importing the kernels and ``warmup()``
  compile everything;
* cached: a second interpreter on the cache the cold run filled (``cache=True``).

The timed quantity is the whole child process; the import and ``warmup()`` times
measured inside it go to ``extra_info``. A cold compile takes tens of seconds, so these
run only when benchmarks are measured, not in the smoke run.
"""
from __future__ import annotations

import pytest

from bench import harness as B


@pytest.fixture
def measured_only(smoke):
    if smoke:
        pytest.skip("compile cost runs only with --benchmark-only / --benchmark-enable")


def _store(benchmark, runs):
    benchmark.extra_info.update({
        "import_s": [r["import"] for r in runs],
        "warmup_s": [r["warmup"] for r in runs],
        "wall_s": [r["wall"] for r in runs],
    })


def test_compile_cold(benchmark, measured_only, numba_kernels, tmp_path_factory, session_cache):
    """Import + warmup() with an empty cache directory.

    One round: a cold compile of the whole set takes minutes on a busy two-core
    machine. The filled directory is handed on to :func:`test_compile_cached`.
    """
    cache = tmp_path_factory.mktemp("numba-cache-cold")
    runs = []

    def cold():
        runs.append(B.compile_run(cache))

    benchmark.group = "numba compile"
    benchmark.pedantic(cold, rounds=1, iterations=1)
    _store(benchmark, runs)
    session_cache["filled numba cache"] = cache


def test_compile_cached(benchmark, measured_only, numba_kernels, tmp_path_factory, session_cache):
    """Import + warmup() in a new interpreter reusing a filled cache directory."""
    cache = session_cache.get("filled numba cache")
    if cache is None:   # run on its own (-k cached): fill a cache first, untimed
        cache = tmp_path_factory.mktemp("numba-cache-fill")
        B.compile_run(cache)
    runs = []

    def cached():
        runs.append(B.compile_run(cache))

    benchmark.group = "numba compile"
    benchmark.pedantic(cached, rounds=3, iterations=1)
    _store(benchmark, runs)


def test_startup_baseline(benchmark, measured_only, tmp_path):
    """A fresh interpreter importing numpy and numba only: the fixed part of any start-up."""
    benchmark.group = "numba compile"
    benchmark.pedantic(B.compile_run, args=(tmp_path,), kwargs={"baseline": True}, rounds=3, iterations=1)
