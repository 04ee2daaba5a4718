"""``cli.py compare``: the ablation study of the four forecasters.

Trains every chosen model (``mamba``, ``mingru``, ``hybrid``, ``gru``) on the same split
and budget, for several seeds, window lengths and data sources (:mod:`forecast.study.plan`),
and fits the classical baselines asked for (``arima``, ``ets``, ``theta``, once each:
:mod:`forecast.classical`), on an executor (:mod:`forecast.study.executors`: the local
process pool or a Dask cluster), then hands the finished run folders to :func:`forecast.study.report.build_report` for the
summary, figures and report of each source, and, with several sources, to
:func:`forecast.study.cross.build_cross_report` for the table across them.

With ``--tuned DIR`` each run whose protocol, model and source (and horizon, or target)
match a best.json of ``cli.py tune`` in ``DIR`` trains with its options over the shared
ones (:mod:`forecast.study.tuned`); the run records it and the reports mark its row.

Runs that fail do not stop the study: the others finish, the reports are built from the
finished runs, each failure is one line on stderr and the exit status is non-zero
(2 when every failure is bad input, such as a broken CSV; 1 otherwise). ``--resume``
then trains only what is missing.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from forecast.config import CHOICES, RunConfig, option_type
from forecast.config_file import compare_defaults
from forecast.errors import UserInputError
from forecast.fileio import atomic_write_json
from forecast.ltsf.protocol import HORIZONS, LTSF
from forecast.study.executors import execute, make_executor
from forecast.study.plan import (COMPARE_DEFAULTS, DEFAULT_SEEDS, SOURCES_DIR, RunSpec, StudyPlan,
                                 command_line, plan_study, shared_fields, usable_cores)
from forecast.study.report import build_report
from models.names import CLASSICAL, STUDY_ORDER

__all__ = ["add_arguments", "run", "run_study", "environment", "tuned_summary", "StudyResult", "EXIT_RUNS_FAILED"]

#: Exit status when some runs failed for another reason than bad input.
EXIT_RUNS_FAILED = 1


# -- the command line ------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``compare`` to its sub-parser.

    The training options mirror the fields of :class:`forecast.config.RunConfig` (the
    options of ``train``), so both commands accept the same spellings and defaults.
    """
    study = parser.add_argument_group("study")
    study.add_argument("--data", default=None,
                       help="data source(s), comma-separated: sample:TICKER (AAPL, MSFT, IBM, GOOG), "
                            "yahoo:TICKER or CSV paths; several sources are swept like models and "
                            f"seeds (default: {RunConfig.defaults()['data']})")
    study.add_argument("--models", default=",".join(STUDY_ORDER),
                       help=f"comma-separated models to compare: {', '.join(STUDY_ORDER)}, and the "
                            f"classical baselines {', '.join(CLASSICAL)} (statsforecast's AutoARIMA, "
                            "AutoETS, AutoTheta; one run each, they have no seed) "
                            f"(default: {','.join(STUDY_ORDER)})")
    study.add_argument("--seeds", default=str(DEFAULT_SEEDS),
                       help="number of seeds (3 -> seeds 0,1,2) or a comma-separated list "
                            "(7,11,13; '5,' for the single seed 5); default %(default)s")
    study.add_argument("--seq-lens", "--seq-len", dest="seq_lens", default=None,
                       help="window length(s), comma-separated (e.g. 30,60,120): the study "
                            "is repeated for each; default: the train default")
    study.add_argument("--horizons", default=None,
                       help="--protocol ltsf: horizons swept like window lengths, comma-separated "
                            f"(default: {','.join(map(str, HORIZONS))})")
    study.add_argument("--jobs", type=int, default=None,
                       help="runs trained at the same time on this machine (default: from the "
                            "CPU count and the backend)")
    study.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="train on a Dask cluster: tcp://HOST:PORT of a running 'dask scheduler', "
                            "or local[:N] for a cluster of N worker processes on this machine "
                            "(default: a local process pool)")
    study.add_argument("--out", default="results/compare",
                       help="output folder (default %(default)s)")
    study.add_argument("--config", default=None, metavar="FILE",
                       help="JSON of run options shared by every run (e.g. the best.json of 'tune'; its "
                            "model and seed do not apply, its seq_len is the window length); options "
                            "given here override it")
    study.add_argument("--tuned", default=None, metavar="DIR",
                       help="folder of 'tune' outputs (DIR/*/best.json): a run whose protocol, model, data "
                            "source and horizon (--protocol ltsf) or target (stock) match a best.json trains "
                            "with its tuned options over the shared ones; the reports mark those rows")
    parser.set_defaults(_config_defaults=compare_defaults)
    mode = study.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true",
                      help="delete an existing output folder first")
    mode.add_argument("--resume", action="store_true",
                      help="keep finished runs of an existing output folder, train the rest")
    mode.add_argument("--report-only", action="store_true",
                      help="rebuild summary, figures and report from an existing folder")
    train = parser.add_argument_group("training (same for every run; as in 'train')")
    ltsf = RunConfig.defaults(LTSF)
    for name, default in shared_fields().items():
        flag = "--" + name.replace("_", "-")

        def text(value):
            return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

        shown = text(default)
        if name in COMPARE_DEFAULTS:
            shown = f"{COMPARE_DEFAULTS[name]} (train: {shown})"
        if name in ltsf and ltsf[name] != default and name != "protocol":
            if ltsf[name] is None:
                shown = f"{shown}; stock protocol only"
            elif default is None:
                shown = f"{text(ltsf[name])}, --protocol ltsf only"
            else:
                shown = f"{shown}; under --protocol ltsf {text(ltsf[name])}"
        extra = {"choices": CHOICES[name]} if name in CHOICES else {}
        kind = default if default is not None else ltsf.get(name)
        train.add_argument(flag, dest=name, type=option_type(kind), default=None,
                           help=f"default: {shown}", **extra)


# -- the study -------------------------------------------------------------------------

def environment(plan: StudyPlan, executor: dict | None = None) -> dict:
    """Versions, CPU and where the runs trained (``executor``: the executor's describe())."""
    import numpy

    env = {"python": platform.python_version(), "numpy": numpy.__version__}
    try:
        import numba
        env["numba"] = numba.__version__
    except ImportError:
        env["numba"] = "not installed"
    env.update({"platform": platform.platform(), "cpu": _cpu_model(),
                "logical cores (os.cpu_count)": os.cpu_count(),
                "usable cores": usable_cores(), "backend": plan.backend})
    env.update(executor or {})
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
    """Whether a run folder holds a complete run with exactly this configuration.

    A tuned option that changed (or a best.json added or removed) changes the
    configuration, so such a run is trained again; so is one whose record of its tuning
    (the best.json's path and the options it changed) differs from the plan's, since the
    report would otherwise name the wrong file.
    """
    try:
        stored = json.loads((spec.run_dir / "config.json").read_text())
        # The client writes the folder under a temporary name and renames it when every
        # file is in, so a folder with a summary.json is complete.
        info = json.loads((spec.run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    same = all(stored.get(k) == v for k, v in spec.config.items() if k in stored and k != "out")
    return same and info.get("tuned") == spec.tuned


@dataclass
class StudyResult:
    """What :func:`run_study` did: the report it wrote (None when no run finished) and why
    every failed run failed (``{RunSpec: workers.Failure}``)."""

    report: Path | None
    failures: dict


def _check_folder(plan: StudyPlan, force: bool, resume: bool) -> None:
    """Refuse an output folder the options do not allow to touch (nothing is changed)."""
    out = plan.out_dir
    if out.exists() and any(out.iterdir()) and not (force or resume):
        raise UserInputError(f"output folder {out} is not empty; pass --force to replace "
                             "it, --resume to keep its finished runs, or another --out")
    if force and out.exists() and not ((out / "study.json").exists() or (out / "runs").is_dir()):
        # --force deletes a whole tree: only ever one that compare wrote.
        raise UserInputError(f"--force: {out} does not look like a compare output folder "
                             "(no study.json or runs/); not deleting it")


def _prepare_folder(plan: StudyPlan, force: bool, resume: bool, todo) -> None:
    """Clear what ``--force`` / ``--resume`` replace, create the folder."""
    out = plan.out_dir
    if force and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    planned = {s.run_dir.resolve() for s in plan.runs}
    found = [p for top in (out / "runs", out / SOURCES_DIR) for p in top.rglob("config.json")]
    for config in found if resume else ():
        # A report reads every run below its runs/: one this study does not plan (another
        # source, model, seed or window of an earlier study) would slip into its tables.
        if config.parent.resolve() not in planned:
            print(f"compare: removing {config.parent} (not part of this study)", file=sys.stderr)
            shutil.rmtree(config.parent)
            _remove_empty_parents(config.parent.parent, stop=out)
    for spec in todo:
        if spec.run_dir.exists():
            shutil.rmtree(spec.run_dir)   # a half-written or stale run would be re-read


def run_study(plan: StudyPlan, force=False, resume=False, progress=True) -> StudyResult:
    """Train the plan's runs, then write summaries, figures and reports.

    With one source the study folder is laid out as it always was (``runs/``,
    ``report.md``...); with several, each source gets that layout in
    ``sources/<name>/`` and the top ``report.md`` compares the sources. The executor is
    started before the folder is touched, so an unreachable scheduler changes nothing.
    """
    out = plan.out_dir
    _check_folder(plan, force, resume)
    todo = [s for s in plan.runs if not (resume and out.exists() and _finished(s))]
    executor = make_executor(plan) if todo else None
    start = time.perf_counter()       # the wall time includes starting the executor
    with executor or contextlib.nullcontext():
        started = time.perf_counter() - start      # a cluster's start-up, a pool's warm-up
        _prepare_folder(plan, force, resume, todo)
        if progress:
            where = (f"{plan.jobs} at a time" if plan.scheduler is None
                     else f"on Dask ({plan.scheduler})")
            print(f"compare: {len(todo)} run(s) to train ({len(plan.runs) - len(todo)} reused), "
                  f"{where}, backend {plan.backend}, output {out}", file=sys.stderr, flush=True)
        outcome = execute(plan, todo, progress=progress, executor=executor)
    wall = time.perf_counter() - start
    study = {"sources": plan.sources, "models": plan.models, "seeds": plan.seeds,
             "seq_lens": plan.seq_lens, "runs": len(plan.runs),
             "reused runs": len(plan.runs) - len(todo)}
    if plan.protocol == LTSF:
        study.update(protocol=LTSF, horizons=plan.horizons)
    if plan.tuned_dir:
        study["tuned"] = tuned_summary(plan)
    if outcome.failures:
        study["failed runs"] = {spec.label: str(why) for spec, why in outcome.failures.items()}
    context = {"command": command_line(plan), "environment": environment(plan, outcome.executor),
               "wall_seconds": wall, "executor_start_seconds": started, "study": study}
    atomic_write_json(out / "study.json", context)
    if plan.protocol == LTSF:
        return StudyResult(_benchmark_report(out, context), outcome.failures)
    return StudyResult(build_reports(out, context, [plan.source_dirs[s] for s in plan.sources]
                                     if plan.several_sources else None),
                       outcome.failures)


def tuned_summary(plan: StudyPlan) -> dict:
    """What ``--tuned`` did, for ``study.json``: the folder, and per best.json the runs it
    tuned (``"model on source"``, with the horizon under ``--protocol ltsf``), empty when
    it matched none."""
    used: dict = {str(f.path): [] for f in plan.tuned_files}
    for spec in plan.runs:
        if spec.tuned:
            what = f"{spec.model} on {spec.source}" + (f" h{spec.horizon}" if spec.horizon else "")
            if what not in used.setdefault(spec.tuned["best_json"], []):
                used[spec.tuned["best_json"]].append(what)
    return {"folder": plan.tuned_dir, "files": used}


def _tuned_note(plan: StudyPlan) -> str:
    """One stderr line: how many runs ``--tuned`` tunes and which best.json files match no run."""
    files = tuned_summary(plan)["files"]
    tuned = sum(1 for s in plan.runs if s.tuned)
    unused = [p for p, runs in files.items() if not runs]
    note = (f"compare: --tuned {plan.tuned_dir}: {tuned} of {len(plan.runs)} run(s) use a tuned configuration "
            f"({len(files) - len(unused)} of {len(files)} best.json)")
    if unused:
        shown = ", ".join(unused[:3]) + (", ..." if len(unused) > 3 else "")
        note += f"; matching no run of this study: {shown}"
    return note


def _benchmark_report(out: Path, context: dict) -> Path | None:
    """The long-horizon benchmark's table and figures (None when no run finished)."""
    from forecast.ltsf.report import build_benchmark_report

    return build_benchmark_report(out, context) if _has_runs(out) else None


def build_reports(out: Path, context: dict, source_dirs=None) -> Path | None:
    """Report(s) of a study folder: one source's, or every source's plus the cross-source one.

    Parameters
    ----------
    out : Path
        The study folder.
    context : dict
        See :func:`forecast.study.report.build_report`.
    source_dirs : list of Path, optional
        The per-source folders of a study over several sources; ``None``: one source.

    Returns
    -------
    Path or None
        The top ``report.md``; None when no run of the study finished.
    """
    from forecast.study.cross import build_cross_report

    if source_dirs is None:
        return build_report(out, context) if _has_runs(out) else None
    built = []
    for folder in source_dirs:
        if _has_runs(folder):
            build_report(folder, context)
            built.append(folder)
    return build_cross_report(out, built, context) if built else None


def _has_runs(folder: Path) -> bool:
    return any((Path(folder) / "runs").rglob("metrics.json"))


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents while they are empty, up to ``stop`` (excluded)."""
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _holds_ltsf_runs(out: Path) -> bool:
    """Whether the first run found below ``out/runs`` was trained under ``--protocol ltsf``
    (a study interrupted before it wrote its study.json says so only there)."""
    first = next((out / "runs").rglob("config.json"), None) if (out / "runs").is_dir() else None
    try:
        return first is not None and json.loads(first.read_text()).get("protocol") == LTSF
    except (OSError, ValueError):
        return False


def _report_only(out: Path) -> Path:
    """Rebuild the report(s) of an existing study folder from its files."""
    several = (out / SOURCES_DIR).is_dir()
    if not several and not (out / "runs").is_dir():
        raise UserInputError(f"--report-only: no runs folder in {out}")
    study = out / "study.json"
    context = json.loads(study.read_text()) if study.exists() else {}
    if context.get("study", {}).get("protocol") == LTSF or _holds_ltsf_runs(out):
        path = _benchmark_report(out, context)
        if path is None:
            raise UserInputError(f"--report-only: no finished runs (metrics.json) below {out}")
        return path
    folders = sorted(p for p in (out / SOURCES_DIR).iterdir() if p.is_dir()) if several else None
    path = build_reports(out, context, folders)
    if path is None:
        raise UserInputError(f"--report-only: no finished runs (metrics.json) below {out}")
    return path


def run(args) -> int:
    """Run ``compare`` from parsed arguments; returns the exit status.

    0: every run finished; 2: bad input (nothing trained, or every failed run failed on
    its input); :data:`EXIT_RUNS_FAILED`: some runs failed otherwise.
    """
    if args.report_only:
        print(f"report: {_report_only(Path(args.out))}")
        return 0
    plan = plan_study(args)
    if plan.tuned_dir:
        print(_tuned_note(plan), file=sys.stderr, flush=True)
    result = run_study(plan, force=args.force, resume=args.resume)
    if result.report is not None:
        print(f"report: {result.report}")
    if not result.failures:
        return 0
    for spec, why in result.failures.items():
        print(f"error: {spec.label}: {why}", file=sys.stderr)
    print(f"error: {len(result.failures)} run(s) failed; fix the cause and repeat the command "
          "with --resume to train only those", file=sys.stderr)
    return 2 if all(why.bad_input for why in result.failures.values()) else EXIT_RUNS_FAILED
