"""``cli.py bench``: measure kernels, train steps, PyTorch counterparts and compile cost.

:func:`run_benchmarks` times the same work as the pytest-benchmark files in ``bench/``,
with plain :func:`time.perf_counter` medians (:mod:`bench.harness.timing`), and returns a
:class:`Report` that :mod:`bench.harness.markdown` prints or writes. Every timed pair is
first checked for agreement between the two implementations (:mod:`engine.parity`), so
a fast kernel that computes something else cannot look good.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from bench.harness.cases import (BACKENDS, DTYPES, KERNELS, MODEL_NAMES, SMOKE_TRAIN_SIZE, TRAIN_SIZE,
                                 build_forecaster, check_train_parity, kernel_share, make_exp_floor,
                                 make_kernel_args, make_optimizer, make_train_data, make_train_step,
                                 numba_available, numba_threads, sizes_for, torch_available)
from bench.harness.compile_cost import compile_run
from bench.harness.peers import make_torch_gru_pair, make_torch_mamba_pair
from bench.harness.timing import time_median, time_medians
from engine.backend import get_kernels
from engine.parity import assert_parity

__all__ = ["SECTIONS", "Report", "machine_info", "run_benchmarks"]


SECTIONS = ("kernels", "train", "torch", "compile", "study")


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
    compile: list = field(default_factory=list)
    study: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Plain-data form (e.g. for JSON)."""
        return dataclasses.asdict(self)


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


#: ``time_median`` settings per mode; a smoke run makes one call per measurement.
TIMERS = {
    "full": dict(budget=0.6, min_samples=3, max_samples=40),
    "quick": dict(budget=0.15, min_samples=3, max_samples=15),
    "smoke": dict(budget=0.0, min_samples=1, max_samples=1, min_sample_time=0.0),
}


def run_benchmarks(quick: bool = False, smoke: bool = False, sections=SECTIONS,
                   dtypes=None, log: Callable[[str], None] | None = _log_default,
                   timer: dict | None = None) -> Report:
    """Measure kernels, train steps, PyTorch counterparts and compile cost.

    Parameters
    ----------
    quick : bool
        Fewer and shorter samples and float64 kernels only; about a minute instead of
        several. Numbers are noisier but the rows are the same.
    smoke : bool
        Tiny shapes (as the pytest smoke run): checks the harness, numbers mean nothing.
    sections : iterable of str
        Any of ``"kernels", "train", "torch", "compile", "study"``.
    dtypes : iterable of numpy dtypes, optional
        Kernel dtypes; default float64 and float32 (float64 only with ``quick``).
    log : callable or None
        Progress messages (stderr by default).
    timer : dict, optional
        Keyword arguments of :func:`time_median`, overriding the mode's :data:`TIMERS`.

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
    report = Report(machine=machine_info(), command=" ".join(argv), quick=quick, smoke=smoke)
    if timer is None:
        timer = TIMERS["smoke" if smoke else "quick" if quick else "full"]
    if dtypes is None:
        dtypes = (np.float64,) if quick or smoke else DTYPES
    has_numba, why = numba_available()
    if not has_numba:
        report.skipped.append(why)
        log(why)
    if has_numba and not smoke:
        # Compile (or load from the cache) outside every timed region. A smoke run
        # skips this: its parity calls precede all timing and load what they need.
        t0 = time.perf_counter()
        get_kernels("numba").warmup()
        log(f"numba warmup: {time.perf_counter() - t0:.1f} s")
    if "kernels" in sections:
        _run_kernels(report, sizes_for(smoke), dtypes, has_numba, timer, log)
    if "train" in sections:
        _run_train(report, SMOKE_TRAIN_SIZE if smoke else TRAIN_SIZE, has_numba, timer, log)
    if "torch" in sections:
        ok, why_t = torch_available()
        if ok:
            _run_torch(report, SMOKE_TRAIN_SIZE if smoke else TRAIN_SIZE, has_numba, timer, log)
        else:
            report.skipped.append(why_t)
            log(why_t)
    if "compile" in sections:
        if has_numba:
            _run_compile(report, cold=not (quick or smoke), rounds=1 if smoke else 3, log=log)
        else:
            report.skipped.append("compile cost: " + why)
    if "study" in sections:
        _run_study(report, "numba" if has_numba else "numpy", quick or smoke, smoke, log)
    report.seconds = time.perf_counter() - started
    report.machine["load average at end (1/5/15 min)"] = _loadavg()
    return report


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
                for name, timing in time_medians(fns, **timer).items():
                    row[name] = timing.median
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
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return fn()
    finally:
        numba.set_num_threads(before)


def _kernel_line(row) -> str:
    nb = f"{row['numba'] * 1e3:9.3f} ms" if row["numba"] else "      n/a"
    return f"{row['kernel']:20s} {row['size']:45s} {row['dtype']:8s} numpy {row['numpy'] * 1e3:9.3f} ms  numba {nb}"


def _run_train(report, size, has_numba, timer, log):
    import models  # noqa: F401  (fail here, with a clear message, if models are missing)

    for name in MODEL_NAMES:
        for dtype in DTYPES:
            row = {"model": name, "dtype": np.dtype(dtype).name, "numpy": None, "numba": None,
                   "speedup": None, "parity": None, "optimizer": None,
                   "share_numpy": None, "share_numba": None, "ceiling": None,
                   "size": f"b={size.batch}, L={size.seq_len}, hidden={size.d_model}, n={size.d_state}"}
            if has_numba:
                row["parity"] = check_train_parity(name, size, dtype)
            steps = {}
            for backend in BACKENDS if has_numba else ("numpy",):
                model = build_forecaster(name, size, backend, dtype)
                x, y = make_train_data(size, dtype)
                opt, row["optimizer"] = make_optimizer(model)
                steps[backend] = make_train_step(model, x, y, opt)
            for backend, timing in time_medians(steps, **timer).items():
                row[backend] = timing.median
                row["share_" + backend] = kernel_share(steps[backend], backend,
                                                       calls=1 if timer.get("budget", 1) == 0 else 3)
            if row["numba"]:
                row["speedup"] = row["numpy"] / row["numba"]
            if row["share_numpy"] is not None and row["share_numpy"] < 1:
                row["ceiling"] = 1 / (1 - row["share_numpy"])
            report.train.append(row)
            log(f"train step {name:7s} {row['dtype']:8s} numpy {row['numpy'] * 1e3:8.2f} ms  "
                f"numba {row['numba'] * 1e3 if row['numba'] else float('nan'):8.2f} ms")


def _run_torch(report, size, has_numba, timer, log):
    backends = BACKENDS if has_numba else ("numpy",)
    pairs = (("MambaBlock", "mambapy MambaBlock (pscan=True)", make_torch_mamba_pair),
             ("GRULayer", "torch.nn.GRU", make_torch_gru_pair))
    dtype = np.float32
    for layer, tname, make in pairs:
        row = {"layer": layer, "torch_impl": tname, "dtype": np.dtype(dtype).name,
               "size": f"b={size.batch}, L={size.seq_len}, d_model={size.d_model}",
               "torch": None, "numpy": None, "numba": None, "parity": None}
        fns = {}
        for backend in backends:
            torch_step, ours_step = make(size, backend, dtype)
            expected = torch_step()
            row["parity"] = max(row["parity"] or 0.0,
                                assert_parity(ours_step(), expected, dtype, f"{layer} vs {tname} ({backend})"))
            fns.setdefault("torch", torch_step)
            fns[backend] = ours_step
        for name, timing in time_medians(fns, **timer).items():
            row[name] = timing.median
        row["speedup_vs_torch"] = row["torch"] / row["numba"] if row["numba"] else None
        report.torch.append(row)
        log(f"{layer}: torch {row['torch'] * 1e3:.2f} ms, numpy {row['numpy'] * 1e3:.2f} ms, "
            f"numba {row['numba'] * 1e3 if row['numba'] else float('nan'):.2f} ms")


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
