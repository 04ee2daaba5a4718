"""``cli.py bench``: measure kernels, train steps, layer pairs, whole runs, compile cost, studies.

:func:`run_benchmarks` measures the same work as the pytest-benchmark files in ``bench/``
and returns a :class:`Report` that :mod:`bench.harness.markdown` prints or writes.
Kernels are timed in this process (:mod:`bench.harness.timing`); every train step, layer
and PyTorch peer runs in a worker process of its own (:mod:`bench.harness.steps`,
:mod:`bench.harness.layers`; whole models against PyTorch, :mod:`bench.harness.wholemodel`),
and whole ``cli.py`` runs are timed from outside
(:mod:`bench.harness.wholeprocess`, :mod:`bench.harness.study_rate`). Every timed pair is first checked for agreement
between the two implementations (:mod:`engine.parity`), so a fast implementation that
computes something else cannot look good.

A section is a name in :data:`SECTIONS`, a list in :class:`Report` and a runner in
:data:`RUNNERS`.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bench.harness.cases import KERNELS, make_exp_floor, make_kernel_args, numba_available, numba_threads
from bench.harness.client import THREAD_ENV, OtherLoad, WorkerPool
from bench.harness.compile_cost import compile_run
from bench.harness.layers import run_layer_pairs
from bench.harness.peers import default_threads
from bench.harness.sizes import DTYPES, TRAIN_SIZE, SMOKE_TRAIN_SIZE, sizes_for, train_sizes_for
from bench.harness.steps import run_train_steps
from bench.harness.timing import time_median, time_medians
from bench.harness.wholemodel import MODEL_IMPLS, run_model_pairs
from bench.harness.wholeprocess import README_ARGS, SMOKE_ARGS, compile_wait, readme_runs, train_command
from engine.backend import get_kernels
from engine.parity import assert_parity

__all__ = ["SECTIONS", "RUNNERS", "Report", "Settings", "machine_info", "run_benchmarks"]


SECTIONS = ("kernels", "train", "torch", "models", "e2e", "compile", "study", "ltsf", "longseq")


@dataclass
class Report:
    """Everything one run of :func:`run_benchmarks` measured."""

    machine: dict
    command: str
    quick: bool
    smoke: bool
    kernels: list = field(default_factory=list)
    train: list = field(default_factory=list)
    torch: list = field(default_factory=list)
    models: list = field(default_factory=list)
    e2e: list = field(default_factory=list)
    compile: list = field(default_factory=list)
    study: list = field(default_factory=list)
    ltsf: list = field(default_factory=list)       # long-horizon steps and epochs (bench.harness.ltsf_steps)
    longseq: list = field(default_factory=list)    # layer pairs at L = 256 ... 16,384 (bench.harness.longseq)
    skipped: list = field(default_factory=list)
    seconds: float = 0.0
    measured: str = ""          # when the run started, "YYYY-MM-DD HH:MM" (local time)
    # Sections measured by a later run and merged in (``cli.py bench --update``):
    # section -> {"measured": "YYYY-MM-DD HH:MM", "seconds": s, "load average": "..."}
    updated: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-data form (e.g. for JSON)."""
        return dataclasses.asdict(self)


@dataclass
class Settings:
    """What the section runners share: the mode, the workers, the timers, the log."""

    quick: bool
    smoke: bool
    dtypes: tuple
    has_numba: bool
    why_no_numba: str
    timer: dict
    worker_timer: dict
    pool: WorkerPool
    log: Callable[[str], None]


def machine_info() -> dict:
    """CPU model, core counts, threads and library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "logical cores": os.cpu_count(),
        "usable cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "numba threads": numba_threads(),
        "threads given to PyTorch peers": default_threads(),
        "thread variables set when the bench started (workers start without them)": ", ".join(
            sorted(k for k in os.environ if any(k.startswith(p) if p.endswith("_") else k == p
                                                 for p in THREAD_ENV))) or "none",
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load average at start (1/5/15 min)": _loadavg(),
    }
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = "not installed"
    # Versions from the installed metadata: importing torch costs seconds.
    info["torch"] = _dist_version("torch") or "not installed"
    info["mambapy"] = _dist_version("mambapy") or "not installed"
    info["minGRU-pytorch"] = _dist_version("minGRU-pytorch") or "not installed"
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                for p in threadpool_info() if p.get("user_api") == "blas"]
        if blas:
            info["BLAS"] = "; ".join(blas)
    except Exception:  # informational only
        pass
    return info


def _loadavg() -> str:
    """The load average: on a shared machine it says how much the numbers can be trusted."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "unknown"


def _dist_version(name: str) -> str | None:
    """Installed version of a distribution, None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _log_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


#: ``time_median`` settings per mode (kernels, in this process); a smoke run makes one call.
TIMERS = {
    "full": dict(budget=0.6, min_samples=3, max_samples=40),
    "quick": dict(budget=0.15, min_samples=3, max_samples=15),
    "smoke": dict(budget=0.0, min_samples=1, max_samples=1, min_sample_time=0.0),
}
#: ``time_workers`` settings per mode (train steps, layer pairs: one worker each). A full
#: run's bursts last 0.2 s however short the step (up to 200 steps): a training loop runs
#: steps back to back, and a burst of a few milliseconds after an idle wait times the
#: cores waking up more than the step (measured: MinGRULayer 3.3 ms in 10-step bursts,
#: 2.1-2.3 ms back to back, numba float32).
WORKER_TIMERS = {
    "full": dict(budget=6.0, min_rounds=4, max_rounds=12, min_burst_time=0.2, max_burst=200),
    "quick": dict(budget=1.5, min_rounds=2, max_rounds=4, min_burst_time=0.1, max_burst=5),
    "smoke": dict(min_rounds=1, probe=False),
}


def run_benchmarks(quick: bool = False, smoke: bool = False, sections=SECTIONS,
                   dtypes=None, log: Callable[[str], None] | None = _log_default,
                   timer: dict | None = None, worker_timer: dict | None = None) -> Report:
    """Measure kernels, train steps, layer pairs, whole runs and compile cost.

    Parameters
    ----------
    quick : bool
        Fewer and shorter samples, float64 kernels only, no cold compiles: a few
        minutes instead of tens. Numbers are noisier but the rows are the same.
    smoke : bool
        Tiny shapes (as the pytest smoke run): checks the harness end to end, numbers
        mean nothing and no target is judged.
    sections : iterable of str
        Any of :data:`SECTIONS`.
    dtypes : iterable of numpy dtypes, optional
        Kernel and layer-pair dtypes; default float64 and float32 (float64 kernels only
        with ``quick`` or ``smoke``).
    log : callable or None
        Progress messages (stderr by default).
    timer, worker_timer : dict, optional
        Keyword arguments of :func:`time_median` (kernels) and of
        :func:`bench.harness.timing.time_workers`, overriding the mode's defaults.

    Returns
    -------
    Report
    """
    log = log or (lambda msg: None)
    sections = tuple(sections)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    started = time.perf_counter()
    argv = ["python", "cli.py", "bench"] + (["--quick"] if quick else []) + (["--smoke"] if smoke else [])
    report = Report(machine=machine_info(), command=" ".join(argv), quick=quick, smoke=smoke,
                    measured=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    mode = "smoke" if smoke else "quick" if quick else "full"
    has_numba, why = numba_available()
    if not has_numba:
        report.skipped.append(why)
        log(why)
    with WorkerPool(shared=smoke) as pool:
        settings = Settings(quick=quick, smoke=smoke, dtypes=tuple(dtypes) if dtypes else DTYPES,
                            has_numba=has_numba, why_no_numba=why, timer=timer or TIMERS[mode],
                            worker_timer=worker_timer or WORKER_TIMERS[mode], pool=pool, log=log)
        for name in SECTIONS:
            if name in sections:
                RUNNERS[name](report, settings)
    report.seconds = time.perf_counter() - started
    report.machine["load average at end (1/5/15 min)"] = _loadavg()
    loads = [r["other_load"] for r in report.kernels + report.train + report.torch + report.models + report.e2e
             + report.ltsf + report.longseq if r.get("other_load") is not None]
    if loads:
        report.machine["other processes' CPU share while rows were measured (median / worst row)"] = (
            f"{100 * statistics.median(loads):.0f}% / {100 * max(loads):.0f}%")
    return report


def _section_kernels(report, st: Settings) -> None:
    if st.has_numba and not st.smoke:
        # Compile (or load from the cache) outside every timed region. A smoke run
        # skips this: its parity calls precede all timing and load what they need.
        t0 = time.perf_counter()
        get_kernels("numba").warmup()
        st.log(f"numba warmup: {time.perf_counter() - t0:.1f} s")
    dtypes = st.dtypes if not (st.quick or st.smoke) else st.dtypes[:1]
    _run_kernels(report, sizes_for(st.smoke), dtypes, st.has_numba, st.timer, st.log)


def _section_train(report, st: Settings) -> None:
    run_train_steps(report, st.pool, train_sizes_for(st.smoke), st.worker_timer, st.log)


def _section_torch(report, st: Settings) -> None:
    size = SMOKE_TRAIN_SIZE if st.smoke else TRAIN_SIZE
    run_layer_pairs(report, st.pool, size, st.dtypes, st.worker_timer, st.log)


def _section_models(report, st: Settings) -> None:
    size = SMOKE_TRAIN_SIZE if st.smoke else TRAIN_SIZE
    impls = MODEL_IMPLS
    if st.smoke:
        # torch.compile takes 10 s to a minute per model even on tiny shapes
        impls = tuple(i for i in MODEL_IMPLS if i != "torch compile")
        report.skipped.append("whole models: torch.compile not run on smoke shapes (it compiles for 10-60 s "
                              "per model)")
    run_model_pairs(report, st.pool, size, st.dtypes, st.worker_timer, st.log, impls=impls)


def _section_e2e(report, st: Settings) -> None:
    args = README_ARGS
    if st.smoke:
        args = ("--model", "hybrid", "--epochs", "1", "--patience", "0") + SMOKE_ARGS
    if not st.has_numba:
        report.skipped.append("README's first command: " + st.why_no_numba)
        return
    command = "python " + " ".join(train_command(None, args, "OUT"))
    st.log(f"the README's first command, empty Numba cache then warm: {command} ...")
    runs = readme_runs(rounds=1 if (st.quick or st.smoke) else 2, args=args)
    wall, load = runs["first"]
    report.e2e.append({"what": "first run after installing (empty Numba cache: compiles the kernels it uses)",
                       "wall": wall, "runs": [wall], "other_load": load, "command": command})
    walls = [w for w, _ in runs["warm"]]
    loads = [x for _, x in runs["warm"] if x is not None]
    report.e2e.append({"what": "the same run, warm cache (every later run)", "wall": statistics.median(walls),
                       "runs": walls, "other_load": max(loads) if loads else None, "command": command})
    st.log(f"README's first command: first run {wall:.1f} s, warm {statistics.median(walls):.1f} s")


def _section_compile(report, st: Settings) -> None:
    if not st.has_numba:
        report.skipped.append("compile cost: " + st.why_no_numba)
        return
    cold = not (st.quick or st.smoke)
    _run_compile(report, cold=cold, rounds=1 if st.smoke else 3, log=st.log)
    if cold:
        st.log("first cli.py train --backend numba on an empty cache, then warm (takes a while)...")
        w = compile_wait()
        for what, key, note in (
                ("first train: empty cache", "cold", "cli.py train --backend numba --epochs 1, fresh NUMBA_CACHE_DIR"),
                ("first train: warm cache", "warm", "the same run on the filled directory (median of 2)"),
                ("first train: compile wait", "wait", "empty cache minus warm cache, whole process")):
            report.compile.append({"what": what, "wall": w[key], "in_process": None, "rounds": 1, "note": note,
                                   "other_load": w["other_load"]})
        st.log(f"first-train compile wait: {w['wait']:.1f} s (cold {w['cold']:.1f} s, warm {w['warm']:.1f} s)")
    else:
        report.skipped.append("first-train compile wait: skipped in quick/smoke mode (a cold compile takes "
                              "a minute); run without --quick")


def _section_study(report, st: Settings) -> None:
    _run_study(report, "numba" if st.has_numba else "numpy", st.quick or st.smoke, st.smoke, st.log)


def _section_ltsf(report, st: Settings) -> None:
    from bench.harness.ltsf_steps import run_ltsf

    impls = MODEL_IMPLS
    if st.smoke:
        # as in the models section: torch.compile takes 10-60 s per row even on tiny shapes
        impls = tuple(i for i in MODEL_IMPLS if i != "torch compile")
        report.skipped.append("long-horizon workload: torch.compile not run on smoke shapes")
    # Its own timers (bench.harness.ltsf_steps.LTSF_TIMERS): 40 rows of fresh workers and
    # compiles; a worker_timer given to run_benchmarks does not apply here.
    run_ltsf(report, st.pool, "smoke" if st.smoke else "quick" if st.quick else "full", st.log, impls)


def _section_longseq(report, st: Settings) -> None:
    from bench.harness.longseq import QUICK_TIMERS, run_long_sequences
    from bench.harness.sizes import long_seq_sizes

    # Its own timers (bench.harness.longseq.TIMERS: 3 rounds of one step where a step takes
    # seconds); a worker_timer given to run_benchmarks does not apply here.
    run_long_sequences(report, st.pool, long_seq_sizes(st.smoke), st.dtypes, st.smoke, st.log,
                       timers=QUICK_TIMERS if st.quick and not st.smoke else None)


#: Section name -> runner(report, settings).
RUNNERS = {"kernels": _section_kernels, "train": _section_train, "torch": _section_torch,
           "models": _section_models, "e2e": _section_e2e, "compile": _section_compile, "study": _section_study,
           "ltsf": _section_ltsf, "longseq": _section_longseq}


def _run_kernels(report, sizes, dtypes, has_numba, timer, log):
    ref = get_kernels("numpy")
    jit = get_kernels("numba") if has_numba else None
    for size in sizes:
        for dtype in dtypes:
            floor_fn = make_exp_floor(size, dtype)
            for kernel in KERNELS:
                args = make_kernel_args(kernel, size, dtype)
                row = {"kernel": kernel, "size": size.label(kernel), "dtype": np.dtype(dtype).name,
                       "numpy": None, "numba": None, "numba_1t": None, "speedup": None, "floor": None,
                       "floor_fraction": None, "parity": None}
                fns = {"numpy": lambda: getattr(ref, kernel)(*args)}
                if jit is not None:
                    expected = getattr(ref, kernel)(*args)
                    row["parity"] = assert_parity(getattr(jit, kernel)(*args), expected, dtype,
                                                  f"{kernel} {size.name} {np.dtype(dtype).name}")
                    fns["numba"] = lambda: getattr(jit, kernel)(*args)
                if kernel.startswith("selective_scan"):
                    fns["floor"] = floor_fn
                with OtherLoad([]) as load:
                    timings = time_medians(fns, **timer)
                for name, timing in timings.items():
                    row[name] = timing.median
                row["other_load"] = load.share
                if jit is not None:
                    row["speedup"] = row["numpy"] / row["numba"]
                    row["numba_1t"] = _one_thread(lambda: time_median(fns["numba"], **timer).median)
                    if row["floor"]:
                        row["floor_fraction"] = row["floor"] / row["numba"]
                report.kernels.append(row)
                log(_kernel_line(row))


def _one_thread(fn):
    """Run ``fn()`` with Numba limited to one thread.

    Parallel kernels wait at a barrier for every thread; on a busy machine one
    descheduled thread costs a whole scheduler tick. The one-thread time is immune to
    that, so the pair of columns tells kernel cost from thread-scheduling noise.
    """
    from engine.backend import get_num_threads, set_num_threads

    before = get_num_threads()
    set_num_threads(1)
    try:
        return fn()
    finally:
        set_num_threads(before)


def _kernel_line(row) -> str:
    nb = f"{row['numba'] * 1e3:9.3f} ms" if row["numba"] else "      n/a"
    return f"{row['kernel']:20s} {row['size']:45s} {row['dtype']:8s} numpy {row['numpy'] * 1e3:9.3f} ms  numba {nb}"


def _run_study(report, backend: str, once: bool, smoke: bool, log):
    """Runs per minute of a small study, local pool against a 2-worker Dask LocalCluster."""
    import importlib.util

    from bench.harness.study_rate import measure_study_rate

    if importlib.util.find_spec("distributed") is None:
        report.skipped.append("study throughput: Dask distributed is not installed "
                              "(pip install -e '.[dask]')")
        return
    report.study = measure_study_rate(backend, smoke=smoke, rounds=1 if once else 3, log=log)


def _run_compile(report, cold: bool, rounds: int, log):
    """Cold compile (one round: it takes minutes on a busy two-core machine) and start-ups.

    Without ``cold`` the cached start-up uses the normal cache location, which the
    warm-up of this very run has just filled.
    """
    rows = []
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as tmp:
        cache = tmp if cold else None
        if cold:
            log("cold compile of the numba kernel set in a fresh interpreter (takes a while)...")
            rows.append(("cold compile (empty cache)", [compile_run(cache)],
                         "fresh NUMBA_CACHE_DIR: import + warmup() compile every kernel"))
        rows.append(("cached start-up", [compile_run(cache) for _ in range(rounds)],
                     "kernels load from the on-disk cache (cache=True)"))
        rows.append(("baseline: python + import numpy, numba", [compile_run(cache, baseline=True) for _ in range(rounds)],
                     "fixed cost of any start-up"))
    for what, runs, note in rows:
        row = {"what": what, "wall": statistics.median(r["wall"] for r in runs),
               "in_process": statistics.median(r["import"] + r["warmup"] for r in runs),
               "rounds": len(runs), "note": note}
        report.compile.append(row)
        log(f"{what}: {row['wall']:.2f} s wall, {row['in_process']:.2f} s import+warmup")
    if not cold:
        report.skipped.append("cold compile: skipped in quick/smoke mode (it takes minutes); run without --quick")
