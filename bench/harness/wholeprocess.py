"""Whole ``python cli.py train`` processes, timed from outside: what a user waits for.

* the README's first command, ``python cli.py train --model hybrid`` (every default: the
  numba backend, 30 epochs, early stopping), as a newcomer meets it: first on an empty
  ``NUMBA_CACHE_DIR`` (the kernels it uses compile), then warm (:func:`readme_runs`);
* first-run compile wait: ``cli.py train --backend numba --epochs 1`` with an empty
  ``NUMBA_CACHE_DIR`` minus the same run once that directory is filled (:func:`compile_wait`).

Each run is a fresh process with a clean environment (:func:`bench.harness.client.clean_env`)
and its own output folder; its wall time is measured by this process around the whole
child. Bench does not import the application: it runs ``cli.py`` as a user does.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile

from bench.harness.client import REPO_ROOT, OtherLoad, clean_env

__all__ = ["E2E_ARGS", "README_ARGS", "SMOKE_ARGS", "train_command", "run_train_process", "measure_train_process",
           "train_end_to_end", "readme_runs", "compile_wait"]

#: The README's first command: ``python cli.py train`` with these options, the rest defaults.
README_ARGS = ("--model", "hybrid")
#: The whole run the bench times (kept under its old name): the README's first command.
E2E_ARGS = README_ARGS
#: Tiny model and window for smoke runs: checks the plumbing in seconds.
SMOKE_ARGS = ("--hidden", "4", "--d-state", "4", "--seq-len", "10")


def train_command(backend: str | None, args=E2E_ARGS, out_dir: str = "OUT") -> list[str]:
    """The ``cli.py train`` command line (after the interpreter) for ``backend``.

    ``backend=None``: as the README types it, the default backend (numba where it
    imports) and the progress bar; only ``--out`` is added, so the run writes outside
    the repository.
    """
    if backend is None:
        return ["cli.py", "train", *args, "--out", out_dir]
    return ["cli.py", "train", *args, "--backend", backend, "--quiet", "--out", out_dir]


def run_train_process(backend: str | None, args=E2E_ARGS, cache_dir=None, timeout: float = 1800.0) -> float:
    """Run one ``cli.py train`` process and return its wall time in seconds.

    See :func:`measure_train_process`, which also says how busy the machine was.
    """
    return measure_train_process(backend, args, cache_dir, timeout)[0]


def measure_train_process(backend: str | None, args=E2E_ARGS, cache_dir=None,
                          timeout: float = 1800.0) -> tuple[float, float | None]:
    """Run one ``cli.py train`` process; return its wall time in seconds and the other load.

    Parameters
    ----------
    backend : str or None
        None: the default backend, as the README runs it (:func:`train_command`).
    args : sequence of str
        Options before ``--backend``.
    cache_dir : path, optional
        ``NUMBA_CACHE_DIR`` of the child (default: inherited).
    timeout : float
        Seconds before the child is killed.

    Returns
    -------
    float, float or None
        Seconds, and the share of the machine other processes used meanwhile
        (:class:`bench.harness.client.OtherLoad`).

    Raises
    ------
    RuntimeError
        If the run fails (with the end of its stderr).
    """
    import time

    env = clean_env()
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as out:
        cmd = [sys.executable] + train_command(backend, args, out)
        with OtherLoad([]) as load:
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=str(REPO_ROOT), env=env, capture_output=True, text=True,
                                  timeout=timeout)
            wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:])} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, load.share


def train_end_to_end(backends=("numpy", "numba"), rounds: int = 2, args=E2E_ARGS, warm: bool = True) -> dict:
    """Wall times of whole ``cli.py train`` runs, backends alternating round by round.

    ``warm`` first makes one untimed run per backend (it fills the Numba cache, if it is
    not warm already, and the file-system cache). Returns ``{backend: [(seconds, other
    load), ...]}``.
    """
    if warm:
        for backend in backends:
            run_train_process(backend, args)
    runs: dict = {b: [] for b in backends}
    for _ in range(rounds):
        for backend in backends:
            runs[backend].append(measure_train_process(backend, args))
    return runs


def readme_runs(rounds: int = 2, args=README_ARGS) -> dict:
    """The README's first command as a newcomer meets it, and warm.

    One run on an empty ``NUMBA_CACHE_DIR`` (what the first run after installing waits
    for: compiling the kernels it uses, then the whole training), then ``rounds`` runs
    on that filled directory. Returns ``{"first": (seconds, other load), "warm": [(seconds,
    other load), ...]}``.
    """
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        first = measure_train_process(None, args, cache_dir=cache)
        warm = [measure_train_process(None, args, cache_dir=cache) for _ in range(rounds)]
    return {"first": first, "warm": warm}


def compile_wait(args=("--epochs", "1", "--patience", "0"), warm_rounds: int = 2) -> dict:
    """The compile wait of a first ``cli.py train --backend numba``.

    One run with an empty ``NUMBA_CACHE_DIR`` (every kernel it uses compiles), then
    ``warm_rounds`` runs on that filled directory. Returns ``cold``, ``warm`` (median)
    and ``wait = cold - warm`` in seconds, and ``other_load`` (the worst of the runs).
    """
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        cold, load = measure_train_process("numba", args, cache_dir=cache)
        warm = [measure_train_process("numba", args, cache_dir=cache) for _ in range(warm_rounds)]
    loads = [x for x in [load] + [w[1] for w in warm] if x is not None]
    median_warm = statistics.median(w[0] for w in warm)
    return {"cold": cold, "warm": median_warm, "wait": cold - median_warm,
            "other_load": max(loads) if loads else None}
