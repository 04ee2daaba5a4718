"""``cli.py compare``: the ablation study of the four forecasters.

Trains every chosen model (``mamba``, ``mingru``, ``hybrid``, ``gru``) on the same data,
split and budget, for several seeds and window lengths (:mod:`forecast.study.plan`), on an
executor (:mod:`forecast.study.executors`), then hands the finished run folders to
:func:`forecast.study.report.build_report` for the summary, figures and report.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

from engine.backend import BACKENDS
from forecast.config import DTYPES
from forecast.data import SCALERS, TARGETS, WINDOW_NORMS
from forecast.errors import UserInputError
from forecast.fileio import atomic_write_json
from forecast.study.executors import execute, thread_env, warm_kernels
from forecast.study.plan import (COMPARE_DEFAULTS, DEFAULT_SEEDS, RunSpec, StudyPlan, command_line,
                                 plan_study, shared_fields, usable_cores)
from forecast.study.report import build_report
from models.names import FUSIONS, STUDY_ORDER

__all__ = ["add_arguments", "run", "run_study", "environment"]

#: Allowed values of the train options that have a fixed set (as ``train`` has).
CHOICES = {"backend": BACKENDS, "fusion": FUSIONS, "dtype": DTYPES, "target": TARGETS,
           "scaler": SCALERS, "window_norm": WINDOW_NORMS}


# -- the command line ------------------------------------------------------------------

def _converter(default):
    """How to read a train option's text, from the type of its default."""
    if isinstance(default, bool):
        return lambda s: str(s).strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, (list, tuple)):
        return lambda s: [t.strip() for t in str(s).split(",") if t.strip()]
    return str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``compare`` to its sub-parser.

    The training options mirror the fields of :class:`forecast.config.RunConfig` (the
    options of ``train``), so both commands accept the same spellings and defaults.
    """
    study = parser.add_argument_group("study")
    study.add_argument("--models", default=",".join(STUDY_ORDER),
                       help=f"comma-separated models to compare (default: {','.join(STUDY_ORDER)})")
    study.add_argument("--seeds", default=str(DEFAULT_SEEDS),
                       help="number of seeds (3 -> seeds 0,1,2) or a comma-separated list "
                            "(7,11,13; '5,' for the single seed 5); default %(default)s")
    study.add_argument("--seq-lens", "--seq-len", dest="seq_lens", default=None,
                       help="window length(s), comma-separated (e.g. 30,60,120): the study "
                            "is repeated for each; default: the train default")
    study.add_argument("--jobs", type=int, default=None,
                       help="runs trained at the same time (default: from the CPU count "
                            "and the backend)")
    study.add_argument("--out", default="results/compare",
                       help="output folder (default %(default)s)")
    mode = study.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true",
                      help="delete an existing output folder first")
    mode.add_argument("--resume", action="store_true",
                      help="keep finished runs of an existing output folder, train the rest")
    mode.add_argument("--report-only", action="store_true",
                      help="rebuild summary, figures and report from an existing folder")
    train = parser.add_argument_group("training (same for every run; as in 'train')")
    for name, default in shared_fields().items():
        flag = "--" + name.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        if name in COMPARE_DEFAULTS:
            shown = f"{COMPARE_DEFAULTS[name]} (train: {shown})"
        extra = {"choices": CHOICES[name]} if name in CHOICES else {}
        train.add_argument(flag, dest=name, type=_converter(default), default=None,
                           help=f"default: {shown}", **extra)


# -- the study -------------------------------------------------------------------------

def environment(plan: StudyPlan) -> dict:
    """Versions, CPU and parallel settings, for the report."""
    import numpy

    env = {"python": platform.python_version(), "numpy": numpy.__version__}
    try:
        import numba
        env["numba"] = numba.__version__
    except ImportError:
        env["numba"] = "not installed"
    env.update({"platform": platform.platform(), "cpu": _cpu_model(),
                "logical cores (os.cpu_count)": os.cpu_count(),
                "usable cores": usable_cores(), "backend": plan.backend,
                "jobs (runs at once)": plan.jobs,
                "threads per run": (f"{thread_env(plan.backend, plan.threads)['NUMBA_NUM_THREADS']}"
                                    " Numba, 1 BLAS")})
    return env


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _finished(spec: RunSpec) -> bool:
    """Whether a run folder holds a complete run with exactly this configuration."""
    try:
        stored = json.loads((spec.run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return False
    same = all(stored.get(k) == v for k, v in spec.config.items() if k in stored and k != "out")
    # The pipeline writes the folder under a temporary name and renames it when every
    # file is in, so a folder with a summary.json is complete.
    return same and (spec.run_dir / "summary.json").exists()


def run_study(plan: StudyPlan, force=False, resume=False, progress=True) -> Path:
    """Train the plan's runs, then write summary, figures and report. Returns report.md."""
    out = plan.out_dir
    if out.exists() and any(out.iterdir()) and not (force or resume):
        raise UserInputError(f"output folder {out} is not empty; pass --force to replace "
                             "it, --resume to keep its finished runs, or another --out")
    if force and out.exists():
        # --force deletes a whole tree: only ever one that compare wrote.
        if not ((out / "study.json").exists() or (out / "runs").is_dir()):
            raise UserInputError(f"--force: {out} does not look like a compare output folder "
                                 "(no study.json or runs/); not deleting it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [s for s in plan.runs if not (resume and _finished(s))]
    planned = {s.run_dir.resolve() for s in plan.runs}
    for found in list((out / "runs").rglob("config.json")) if resume else ():
        # The report reads every run below runs/: one this study does not plan (another
        # model, seed or window of an earlier study) would slip into its tables.
        if found.parent.resolve() not in planned:
            print(f"compare: removing {found.parent} (not part of this study)", file=sys.stderr)
            shutil.rmtree(found.parent)
            _remove_empty_parents(found.parent.parent, stop=out / "runs")
    for spec in todo:
        if spec.run_dir.exists():
            shutil.rmtree(spec.run_dir)   # a half-written or stale run would be re-read
    if progress:
        print(f"compare: {len(todo)} run(s) to train ({len(plan.runs) - len(todo)} reused), "
              f"{plan.jobs} at a time, backend {plan.backend}, output {out}",
              file=sys.stderr, flush=True)
    start = time.perf_counter()
    if todo:
        warm_kernels(plan.backend)
    execute(plan, todo, progress=progress)
    wall = time.perf_counter() - start
    context = {"command": command_line(plan), "environment": environment(plan),
               "wall_seconds": wall,
               "study": {"models": plan.models, "seeds": plan.seeds, "seq_lens": plan.seq_lens,
                         "runs": len(plan.runs), "reused runs": len(plan.runs) - len(todo)}}
    atomic_write_json(out / "study.json", context)
    return build_report(out, context)


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents while they are empty, up to ``stop`` (excluded)."""
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def run(args) -> int:
    """Run ``compare`` from parsed arguments; returns the exit status."""
    if args.report_only:
        out = Path(args.out)
        if not (out / "runs").is_dir():
            raise UserInputError(f"--report-only: no runs folder in {out}")
        study = out / "study.json"
        context = json.loads(study.read_text()) if study.exists() else {}
        path = build_report(out, context)
    else:
        plan = plan_study(args)
        path = run_study(plan, force=args.force, resume=args.resume)
    print(f"report: {path}")
    return 0
