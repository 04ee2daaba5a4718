"""Compile cost of the whole Numba kernel set, each measurement in a fresh interpreter.

What a first ``cli.py train`` waits for (only the kernels a run uses) is measured by
:func:`bench.harness.wholeprocess.compile_wait`.
"""
from __future__ import annotations

import subprocess
import sys
import time

from bench.harness.client import REPO_ROOT, clean_env

__all__ = ["REPO_ROOT", "compile_run"]

_COMPILE_SCRIPT = (
    "import time\n"
    "t0 = time.perf_counter()\n"
    "import engine.kernels.numba as k\n"
    "t1 = time.perf_counter()\n"
    "k.warmup()\n"
    "t2 = time.perf_counter()\n"
    "print('TIMES', t1 - t0, t2 - t1)\n"
)
_BASELINE_SCRIPT = "import numpy, numba\nprint('TIMES', 0.0, 0.0)\n"


def compile_run(cache_dir, baseline: bool = False, timeout: float = 900.0) -> dict:
    """Start a fresh interpreter that imports the numba kernels and calls ``warmup()``.

    Parameters
    ----------
    cache_dir : path or None
        ``NUMBA_CACHE_DIR`` of the child: an empty directory gives a cold compile, a
        directory filled by an earlier run gives the cached start-up; None keeps
        Numba's usual location (``__pycache__`` beside the kernels).
    baseline : bool
        Only import numpy and numba (the fixed cost of any start-up).
    timeout : float
        Seconds before the child is abandoned.

    Returns
    -------
    dict
        ``wall`` (whole child process), ``import`` and ``warmup`` (measured inside it).
    """
    env = clean_env()
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _BASELINE_SCRIPT if baseline else _COMPILE_SCRIPT],
        cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=timeout,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"warmup subprocess failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("TIMES")][-1]
    _, imp, warm = line.split()
    return {"wall": wall, "import": float(imp), "warmup": float(warm)}
