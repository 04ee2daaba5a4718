"""``cli.py compare``: the ablation study of the four forecasters.

Trains every chosen model (``mamba``, ``mingru``, ``hybrid``, ``gru``) on the same data,
split and budget, for several seeds and window lengths, then hands the finished run
folders to :func:`engine.report.build_report` for the summary, figures and report.

Runs execute in parallel in a pool of ``spawn``-ed worker processes. The thread-count
variables are placed in the environment the workers are started with, so they are
set before NumPy or Numba load, which is the only moment they are read. The result
of a run depends on its configuration alone: the pipeline seeds everything from the
run's seed, BLAS is pinned to one thread, and the Numba kernels give bit-identical
results for any thread count, so ``--jobs`` changes the wall time and nothing else.

This module stays cheap to import (no NumPy at module level): every worker imports it
to find :func:`train_one`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import shlex
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserInputError

__all__ = ["add_arguments", "run", "StudyPlan", "RunSpec", "plan_study", "parse_seeds",
           "parse_int_list", "default_jobs", "usable_cores", "thread_env", "execute",
           "run_study", "train_one", "RunFailed", "MODELS"]

MODELS = ("mamba", "mingru", "hybrid", "gru")
#: Thread-count variables of the libraries a worker may load.
THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
#: RunConfig fields that the study sets per run instead of taking from the command line.
PER_RUN_FIELDS = ("model", "seed", "seq_len", "out")
DEFAULT_SEEDS = 3
#: Train options whose default differs for a study. A study trains 12 runs (4 models x
#: 3 seeds); on 2 shared cores, with Mamba and the hybrid at ~13 s per epoch, the study
#: took 10.5 minutes at 15 epochs; the train default of 30 doubles the budget of every
#: run that early stopping does not end.
COMPARE_DEFAULTS = {"epochs": 15}
#: Relative cost of one epoch per model, so the longest runs start first and the
#: study does not end with one core training alone (the order changes no result).
RUN_COST = {"hybrid": 14.0, "mamba": 13.0, "gru": 1.7, "mingru": 1.0}
_ROOT = Path(__file__).resolve().parent.parent


# -- parsing ---------------------------------------------------------------------------

def parse_int_list(text: str, what: str) -> list[int]:
    """``"30,60,120"`` -> ``[30, 60, 120]`` (duplicates dropped, order kept)."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise UserInputError(f"{what}: give at least one integer, e.g. 60 or 30,60,120")
    try:
        values = [int(t) for t in items]
    except ValueError:
        raise UserInputError(f"{what}: {text!r} is not a comma-separated list of integers")
    return list(dict.fromkeys(values))


def parse_seeds(text) -> list[int]:
    """Seeds from ``--seeds``: a count (``3`` -> 0, 1, 2) or a list (``7,11`` or ``5,``).

    A single number is a count, because "how many seeds" is the usual question; a
    trailing comma makes it one explicit seed.
    """
    text = str(text).strip()
    if "," not in text:
        try:
            count = int(text)
        except ValueError:
            raise UserInputError(f"--seeds: {text!r} is neither a count nor a list of seeds")
        if count < 1:
            raise UserInputError(f"--seeds: the count must be at least 1, got {count}")
        return list(range(count))
    seeds = parse_int_list(text, "--seeds")
    if any(s < 0 for s in seeds):
        raise UserInputError(f"--seeds: seeds must be non-negative, got {text!r}")
    return seeds


def parse_models(text: str) -> list[str]:
    """Model names from ``--models`` (comma-separated), validated."""
    names = list(dict.fromkeys(t.strip().lower() for t in str(text).split(",") if t.strip()))
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise UserInputError(f"--models: unknown model(s) {', '.join(unknown) or '(none)'}; "
                             f"choose from {', '.join(MODELS)}")
    return names


# -- the command line ------------------------------------------------------------------

def _run_config_class():
    from engine.pipeline import RunConfig
    return RunConfig


def _train_fields():
    """The RunConfig fields a user sets for every run of the study (name, default)."""
    cls = _run_config_class()
    out = []
    for f in dataclasses.fields(cls):
        if f.name in PER_RUN_FIELDS:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append((f.name, default))
    return out


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


def _choices() -> dict:
    """Allowed values of the train options that have a fixed set (as ``train`` has)."""
    import engine.data as data
    import engine.pipeline as pipeline
    from engine.backend import BACKENDS

    known = {"backend": BACKENDS, "fusion": getattr(pipeline, "FUSIONS", None),
             "dtype": getattr(pipeline, "DTYPES", None), "target": getattr(data, "TARGETS", None),
             "scaler": getattr(data, "SCALERS", None),
             "window_norm": getattr(data, "WINDOW_NORMS", None)}
    return {name: tuple(values) for name, values in known.items() if values}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``compare`` to its sub-parser.

    The training options mirror the fields of :class:`engine.pipeline.RunConfig` (the
    options of ``train``), so both commands accept the same spellings and defaults.
    """
    study = parser.add_argument_group("study")
    study.add_argument("--models", default=",".join(MODELS),
                       help=f"comma-separated models to compare (default: {','.join(MODELS)})")
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
    choices = _choices()
    for name, default in _train_fields():
        flag = "--" + name.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
        if name in COMPARE_DEFAULTS:
            shown = f"{COMPARE_DEFAULTS[name]} (train: {shown})"
        extra = {"choices": choices[name]} if name in choices else {}
        train.add_argument(flag, dest=name, type=_converter(default), default=None,
                           help=f"default: {shown}", **extra)


# -- planning --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)   # identity hash: a spec keys its process and timing
class RunSpec:
    """One training run of the study: its configuration and where it writes."""

    model: str
    seed: int
    seq_len: int
    config: dict          # RunConfig fields, JSON-ready
    run_dir: Path

    @property
    def label(self) -> str:
        return f"{self.model} seed {self.seed} seq_len {self.seq_len}"


@dataclass
class StudyPlan:
    """Everything ``compare`` will do, decided before anything runs."""

    out_dir: Path
    models: list
    seeds: list
    seq_lens: list
    base: dict            # RunConfig fields shared by every run
    runs: list            # RunSpec
    jobs: int
    threads: int
    backend: str


def run_dir_for(out_dir: Path, model: str, seed: int, seq_len: int, several: bool) -> Path:
    """``runs/<model>/seed<k>``, under ``runs/seq<L>/`` when several windows are compared."""
    root = Path(out_dir) / "runs"
    if several:
        root = root / f"seq{seq_len}"
    return root / model / f"seed{seed}"


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "name") and value.__class__.__module__.startswith("numpy"):
        return value.name          # a numpy dtype
    return value


def plan_study(args, cores: int | None = None) -> StudyPlan:
    """Turn parsed arguments into a validated :class:`StudyPlan`.

    Every run's RunConfig is built and validated here, so a bad option fails at once
    with one message instead of in every worker.
    """
    RunConfig = _run_config_class()
    models = parse_models(args.models)
    seeds = parse_seeds(args.seeds)
    overrides = dict(COMPARE_DEFAULTS)
    overrides.update({name: getattr(args, name) for name, _ in _train_fields()
                      if getattr(args, name, None) is not None})
    base_cfg = RunConfig(**overrides).validate()
    seq_lens = (parse_int_list(args.seq_lens, "--seq-lens") if args.seq_lens
                else [int(base_cfg.seq_len)])
    out_dir = Path(args.out)
    several = len(seq_lens) > 1
    runs = []
    for seq_len in seq_lens:
        for model in models:
            for seed in seeds:
                run_dir = run_dir_for(out_dir, model, seed, seq_len, several)
                cfg = dataclasses.replace(base_cfg, model=model, seed=seed, seq_len=seq_len,
                                          out=str(run_dir))
                cfg.validate()
                fields = {f.name: _jsonable(getattr(cfg, f.name))
                          for f in dataclasses.fields(cfg)}
                runs.append(RunSpec(model, seed, seq_len, fields, run_dir))
    backend = str(base_cfg.backend)
    cores = cores or usable_cores()
    if args.jobs is not None and args.jobs < 1:
        raise UserInputError(f"--jobs must be at least 1, got {args.jobs}")
    jobs = args.jobs or default_jobs(backend, len(runs), cores)
    jobs = max(1, min(jobs, len(runs)))
    threads = max(1, cores // jobs)
    base = {f.name: _jsonable(getattr(base_cfg, f.name)) for f in dataclasses.fields(base_cfg)
            if f.name not in PER_RUN_FIELDS}
    return StudyPlan(out_dir, models, seeds, seq_lens, base, runs, jobs, threads, backend)


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_jobs(backend: str, n_runs: int, cores: int) -> int:
    """How many runs to train at once.

    The models are small, so one run cannot keep several cores busy: a matrix product
    of a few thousand rows by 64 columns gains nothing from BLAS threads, and Numba's
    parallel loops have only ``batch x channel-chunk`` tasks. Independent runs scale
    almost perfectly instead, so both backends use one process per core. The backend
    decides what happens to cores left over when there are fewer runs than cores:
    Numba workers receive them as kernel threads (:func:`thread_env`); NumPy workers
    cannot use them.
    """
    del backend  # same process count for both; see thread_env for the difference
    return max(1, min(cores, n_runs))


def thread_env(backend: str, threads: int) -> dict:
    """Thread-count variables for a worker.

    BLAS is pinned to one thread: the gain on these small products is nil and a
    different thread count may split a sum differently, which would make results
    depend on ``--jobs``. Numba gets ``threads`` (its kernels cut work by shape, not by
    thread, so results are identical for any count).
    """
    env = {name: "1" for name in THREAD_VARS}
    env["NUMBA_NUM_THREADS"] = str(threads if backend == "numba" else 1)
    return env


# -- execution -------------------------------------------------------------------------

class RunFailed(RuntimeError):
    """A training run raised an unexpected error in its worker process."""


class _patched_environ:
    """Set environment variables for the ``with`` block, then restore the old values.

    Worker processes are spawned inside the block and inherit the variables from their
    very first instruction, before anything imports NumPy or Numba.
    """

    def __init__(self, values: dict):
        self.values = values
        self.saved: dict = {}

    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)
        return self

    def __exit__(self, *exc):
        for key, old in self.saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        return False


def _worker_env(plan: StudyPlan) -> dict:
    env = dict(thread_env(plan.backend, plan.threads))
    # Spawned workers must import this project even when it is not installed (spawn
    # also copies sys.path, but only after the interpreter has started).
    paths = [str(_ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["MPLBACKEND"] = "Agg"
    return env


def train_one(config: dict, run_dir: str) -> float:
    """Train one run into ``run_dir`` (in a worker process); return its wall time.

    Nothing here depends on which process runs it or what ran there before: the
    pipeline draws every random number from generators seeded by the run's seed.
    """
    from engine.pipeline import RunConfig, run_training

    start = time.perf_counter()
    run_training(RunConfig.from_dict(config), run_dir, progress=False)
    return time.perf_counter() - start


def execute(plan: StudyPlan, runs=None, progress=True) -> dict:
    """Train ``runs`` (default: all of the plan), ``plan.jobs`` worker processes at a time.

    Workers come from a ``spawn`` context: a fresh interpreter per worker (no forked
    copy of the parent's threads or loaded libraries), started with the thread-count
    variables of :func:`thread_env` already in its environment. Each worker trains
    several runs one after the other, so the interpreter start-up and the imports are
    paid once per worker rather than once per run.

    Returns
    -------
    dict
        ``{RunSpec: seconds}`` for every run trained.

    Raises
    ------
    UserInputError, RunFailed
        The first failure; the runs not yet started are cancelled and the workers
        are stopped.
    """
    runs = list(plan.runs if runs is None else runs)
    seconds: dict = {}
    if not runs:
        return seconds
    ctx = multiprocessing.get_context("spawn")
    width = len(str(len(runs)))
    with _patched_environ(_worker_env(plan)):
        pool = ProcessPoolExecutor(max_workers=plan.jobs, mp_context=ctx)
        try:
            futures = {pool.submit(train_one, spec.config, str(spec.run_dir)): spec
                       for spec in sorted(runs, key=_cost, reverse=True)}
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    try:
        for fut in as_completed(futures):
            spec = futures[fut]
            try:
                seconds[spec] = fut.result()
            except UserInputError as exc:
                raise UserInputError(f"{spec.label}: {exc}") from exc
            except Exception as exc:
                raise RunFailed(f"{spec.label} failed: {type(exc).__name__}: {exc}") from exc
            if progress:
                print(f"[{len(seconds):>{width}}/{len(runs)}] {spec.label}: "
                      f"{_brief(spec.run_dir)} in {seconds[spec]:.1f} s",
                      file=sys.stderr, flush=True)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)
    return seconds


def _cost(spec: RunSpec) -> float:
    """Expected training time of a run, up to a constant (longest runs go first)."""
    return RUN_COST.get(spec.model, 10.0) * spec.seq_len * int(spec.config.get("epochs", 1))


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel queued runs and end the workers still training (after a failure)."""
    # The executor has no public way to stop a running task; its process table is the
    # only handle on workers that would otherwise train for minutes to no purpose (and
    # keep this process waiting for them at exit). shutdown() drops the table, so it is
    # read first.
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        if proc.is_alive():
            proc.terminate()


def _brief(run_dir: Path) -> str:
    """``12 epochs, test RMSE 3.21`` for the progress line."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        history = json.loads((run_dir / "history.json").read_text())
        return f"{len(history)} epochs, test RMSE {float(metrics['test']['rmse']):.4g}"
    except (OSError, ValueError, KeyError, TypeError):
        return "done"


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


def command_line(plan: StudyPlan) -> str:
    """A command that repeats the study (every option spelled out that differs from default)."""
    defaults = {f.name: _jsonable(f.default) for f in dataclasses.fields(_run_config_class())
                if f.default is not dataclasses.MISSING}
    defaults.update(COMPARE_DEFAULTS)
    parts = ["python", "cli.py", "compare", "--models", ",".join(plan.models),
             "--seeds", ",".join(map(str, plan.seeds)) + ("," if len(plan.seeds) == 1 else ""),
             "--seq-lens", ",".join(map(str, plan.seq_lens)), "--jobs", str(plan.jobs)]
    for name, value in plan.base.items():
        if name in defaults and defaults[name] == value:
            continue
        text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
        parts += ["--" + name.replace("_", "-"), text]
    parts += ["--out", str(plan.out_dir)]
    return " ".join(shlex.quote(p) for p in parts)


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
    from engine.report import build_report

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
    if plan.backend == "numba" and todo:
        _warm_numba_cache(plan)
    execute(plan, todo, progress=progress)
    wall = time.perf_counter() - start
    context = {"command": command_line(plan), "environment": environment(plan),
               "wall_seconds": wall,
               "study": {"models": plan.models, "seeds": plan.seeds, "seq_lens": plan.seq_lens,
                         "runs": len(plan.runs), "reused runs": len(plan.runs) - len(todo)}}
    from engine.fileio import atomic_write_json
    atomic_write_json(out / "study.json", context)
    return build_report(out, context)


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents while they are empty, up to ``stop`` (excluded)."""
    while folder != stop and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _warm_numba_cache(plan: StudyPlan) -> None:
    """Compile the kernels once here, so the workers load them from Numba's disk cache.

    Without this every worker would compile the same kernels at the same time. The
    kernels are compiled with ``cache=True``; the cache is shared through the file
    system (``NUMBA_CACHE_DIR`` when set).
    """
    from engine.backend import BackendUnavailableError, get_kernels

    try:
        kernels = get_kernels("numba")
    except BackendUnavailableError as exc:
        raise UserInputError(str(exc)) from exc
    kernels.warmup()


def run(args) -> int:
    """Run ``compare`` from parsed arguments; returns the exit status."""
    if args.report_only:
        from engine.report import build_report
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

