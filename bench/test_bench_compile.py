"""Whole processes: compile cost, and ``cli.py train`` end to end, timed from outside.

* the whole kernel set: import + ``warmup()`` in a fresh interpreter with an empty
  ``NUMBA_CACHE_DIR`` (cold) and on the filled one (cached), beside a bare start-up;
* what a new user waits for: ``cli.py train --backend numba --epochs 1`` on an empty
  cache directory, then on the filled one; the difference is the compile wait;
* the README's first command, ``cli.py train --model hybrid`` (every default), warm
  cache, start-up included: the wall time of a default run.

The timed quantity is the whole child process. These take from tens of seconds to
minutes, so they are marked ``bench_slow``: they exist only when benchmarks are
measured (a smoke run deselects them).
"""
from __future__ import annotations

import statistics

import pytest

from bench import harness as B

pytestmark = pytest.mark.bench_slow


@pytest.fixture
def numba_ok():
    ok, why = B.numba_available()
    if not ok:
        pytest.skip(why)


def _store(benchmark, runs):
    benchmark.extra_info.update({
        "import_s": [r["import"] for r in runs],
        "warmup_s": [r["warmup"] for r in runs],
        "wall_s": [r["wall"] for r in runs],
    })


def test_compile_cold(benchmark, numba_ok, tmp_path_factory, session_cache):
    """Import + warmup() of the whole kernel set with an empty cache directory.

    One round: a cold compile of the whole set takes minutes on a busy two-core
    machine. The filled directory is handed on to :func:`test_compile_cached`.
    """
    cache = tmp_path_factory.mktemp("numba-cache-cold")
    runs = []
    benchmark.group = "numba compile"
    benchmark.pedantic(lambda: runs.append(B.compile_run(cache)), rounds=1, iterations=1)
    _store(benchmark, runs)
    session_cache["filled numba cache"] = cache


def test_compile_cached(benchmark, numba_ok, tmp_path_factory, session_cache):
    """Import + warmup() in a new interpreter reusing a filled cache directory."""
    cache = session_cache.get("filled numba cache")
    if cache is None:   # run on its own (-k cached): fill a cache first, untimed
        cache = tmp_path_factory.mktemp("numba-cache-fill")
        B.compile_run(cache)
    runs = []
    benchmark.group = "numba compile"
    benchmark.pedantic(lambda: runs.append(B.compile_run(cache)), rounds=3, iterations=1)
    _store(benchmark, runs)


def test_startup_baseline(benchmark, tmp_path):
    """A fresh interpreter importing numpy and numba only: the fixed part of any start-up."""
    benchmark.group = "numba compile"
    benchmark.pedantic(B.compile_run, args=(tmp_path,), kwargs={"baseline": True}, rounds=3, iterations=1)


def test_first_train_compile_wait(benchmark, numba_ok, tmp_path):
    """``cli.py train --backend numba --epochs 1`` on an empty cache; the warm run in extra_info."""
    args = ("--epochs", "1", "--patience", "0")
    benchmark.group = "first cli.py train (numba)"
    cold = benchmark.pedantic(B.run_train_process, args=("numba", args), kwargs={"cache_dir": tmp_path},
                              rounds=1, iterations=1)
    warm = statistics.median(B.run_train_process("numba", args, cache_dir=tmp_path) for _ in range(2))
    benchmark.extra_info.update({"cold_s": cold, "warm_s": warm, "compile_wait_s": cold - warm,
                                 "target_s": 10.0})
    assert cold > 0 and warm > 0


def test_readme_first_command(benchmark, numba_ok):
    """``cli.py train --model hybrid`` (the README's first command), whole process, warm cache."""
    benchmark.group = "README's first command (cli.py train --model hybrid)"
    benchmark.extra_info["command"] = "python " + " ".join(B.train_command(None, B.README_ARGS))
    # the warm-up round fills the Numba cache if needed and is not timed
    benchmark.pedantic(B.run_train_process, args=(None, B.README_ARGS), rounds=2, iterations=1, warmup_rounds=1)
