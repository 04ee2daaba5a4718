"""Study throughput: runs per minute of a small ``compare`` study, per executor.

The same study is run as a user runs it, ``python cli.py compare ...`` in a fresh
interpreter, once on the local process pool and once on a 2-worker Dask LocalCluster
(``--scheduler local:2``), so the difference is what the scheduler costs against a run.
Nothing from ``forecast/`` is imported here (bench -> models -> engine): the commands
are whole subprocesses and their ``study.json`` is read as plain JSON.

Three rates per executor: over the whole command (interpreter start, imports, executor
start, training, report and figures), over the study's own ``wall_seconds`` (executor
start and training, without the report), and over the training once the executor is up
(``wall_seconds - executor_start_seconds``), which is where a scheduler's per-run cost
shows; the executor's start-up is a fixed cost per study, shown on its own.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness.client import REPO_ROOT, clean_env

__all__ = ["STUDY", "SMOKE_STUDY", "EXECUTORS", "study_command", "time_study", "measure_study_rate"]

#: The study timed: 12 runs of a few seconds each (3 models x 4 seeds, 2 epochs, 30-day
#: windows over 2008-2013), long enough that a run dwarfs a task's round trip.
STUDY = ("--models", "gru,mingru,hybrid", "--seeds", "4", "--epochs", "2", "--seq-len", "30",
         "--start", "2008-01-01")
#: Smoke shapes: checks the plumbing in seconds; the numbers mean nothing.
SMOKE_STUDY = ("--models", "mingru", "--seeds", "2", "--epochs", "1", "--hidden", "4", "--d-state", "4",
               "--seq-len", "10", "--start", "2012-01-01")
#: Executor name -> its ``compare`` options (both train 2 runs at a time).
EXECUTORS = {"local process pool (--jobs 2)": ("--jobs", "2"),
             "Dask LocalCluster (--scheduler local:2)": ("--scheduler", "local:2")}


def study_command(study, executor_args, backend: str, out) -> list:
    """The ``cli.py compare`` command line of one measurement."""
    return [sys.executable, "cli.py", "compare", *study, "--backend", backend, *executor_args,
            "--out", str(out)]


def time_study(study, executor_args, backend: str, timeout: float = 1800.0) -> dict:
    """Run one study in a subprocess; return its timings.

    Returns
    -------
    dict
        ``wall`` (the whole command, s), ``training`` (the study's ``wall_seconds``),
        ``start`` (its ``executor_start_seconds``), ``runs`` (runs trained).
    """
    # As every benchmarked process: no thread or wait-policy variables of the harness's own
    env = dict(clean_env(), MPLBACKEND="Agg")
    with tempfile.TemporaryDirectory(prefix="bench-study-") as tmp:
        out = Path(tmp) / "study"
        t0 = time.perf_counter()
        proc = subprocess.run(study_command(study, executor_args, backend, out), cwd=str(REPO_ROOT),
                              env=env, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"compare failed ({proc.returncode}): {proc.stderr[-2000:]}")
        info = json.loads((out / "study.json").read_text(encoding="utf-8"))
    study_info = info["study"]
    return {"wall": wall, "training": float(info["wall_seconds"]),
            "start": float(info.get("executor_start_seconds", 0.0)),
            "runs": int(study_info["runs"]) - int(study_info.get("reused runs", 0))}


def measure_study_rate(backend: str, smoke: bool = False, rounds: int = 1, log=None) -> list[dict]:
    """Runs per minute of the study on each executor of :data:`EXECUTORS` (median of rounds).

    Rounds alternate between the executors, so a change in the machine's load reaches
    both alike.
    """
    study = SMOKE_STUDY if smoke else STUDY
    samples = {name: [] for name in EXECUTORS}
    for _ in range(rounds):
        for name, args in EXECUTORS.items():
            samples[name].append(time_study(study, args, backend))
            if log:
                s = samples[name][-1]
                log(f"study on {name}: {s['runs']} runs, {s['wall']:.1f} s command, "
                    f"{s['training']:.1f} s training of which {s['start']:.1f} s executor start")
    rows = []
    for name, runs in samples.items():
        wall = statistics.median(r["wall"] for r in runs)
        training = statistics.median(r["training"] for r in runs)
        start = statistics.median(r["start"] for r in runs)
        running = statistics.median(r["training"] - r["start"] for r in runs)
        n = runs[0]["runs"]
        rows.append({"executor": name, "runs": n, "rounds": len(runs), "backend": backend,
                     "wall": wall, "training": training, "start": start, "running": running,
                     "per_min_wall": 60.0 * n / wall, "per_min_training": 60.0 * n / training,
                     "per_min_running": 60.0 * n / running,
                     "command": " ".join(["python", *study_command(study, (), backend, "OUT")[1:]])})
    base = rows[0]["running"]
    for row in rows:
        row["vs_pool"] = row["running"] / base
    return rows
