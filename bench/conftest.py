"""Fixtures of the benchmark suite.

Shapes depend on the mode chosen in the root ``conftest.py``: the issue's sizes when
benchmarks are measured, tiny ones (same names) when they only run once as smoke tests.
Benchmarks marked ``bench_slow`` (whole ``cli.py`` runs, cold compiles) exist only when
measuring; a smoke run deselects them.

Train steps, layers and PyTorch peers run in worker processes (:mod:`bench.harness.client`):
a fresh one per timed implementation when measuring, one shared worker per side in a
smoke run (so it imports torch once). Parity references are computed once per session.
At the end a summary prints the ratios pytest-benchmark's own tables cannot show:
numba against numpy, against the PyTorch peer and against the machine floor (for
workers, from the step times the workers measured themselves; pytest-benchmark's
columns are request round trips, 0.1-0.5 ms more).
"""
from __future__ import annotations

import pytest

from bench import harness as B


def is_smoke(config) -> bool:
    """True unless this run measures benchmarks (see the root conftest.py)."""
    return getattr(config, "bench_smoke", True)


def _case_id(case) -> str:
    size, model, dtype = case
    return f"{model}-{dtype.name}-{size.name}"


def pytest_generate_tests(metafunc):
    # Parametrize here rather than with a decorator: the shapes depend on the mode,
    # which is only known once the command line has been parsed.
    smoke = is_smoke(metafunc.config)
    if "size" in metafunc.fixturenames:
        sizes = B.sizes_for(smoke)
        metafunc.parametrize("size", sizes, ids=[s.name for s in sizes])
    for name in ("layer_size", "model_size"):
        if name in metafunc.fixturenames:
            size = B.SMOKE_TRAIN_SIZE if smoke else B.TRAIN_SIZE
            metafunc.parametrize(name, [size], ids=[size.name])
    if "train_case" in metafunc.fixturenames:
        from bench.harness.steps import train_cases

        cases = train_cases(B.train_sizes_for(smoke))
        metafunc.parametrize("train_case", cases, ids=[_case_id(c) for c in cases])


def pytest_collection_modifyitems(config, items):
    if not is_smoke(config):
        return
    slow = [item for item in items if item.get_closest_marker("bench_slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("bench_slow")]


@pytest.fixture(scope="session")
def smoke(request) -> bool:
    """Whether this is a smoke run (benchmarks called once, tiny shapes)."""
    return is_smoke(request.config)


@pytest.fixture(scope="session")
def numba_kernels():
    """The numba kernel module, compiled; skips when it cannot be imported."""
    ok, why = B.numba_available()
    if not ok:
        pytest.skip(why)
    kernels = B.get_kernels("numba")
    # Compile everything up front so no benchmark's first round pays for it.
    kernels.warmup()
    return kernels


@pytest.fixture(scope="session")
def kernel_sets(numba_kernels):
    """``{"numpy": module, "numba": module}``."""
    return {"numpy": B.get_kernels("numpy"), "numba": numba_kernels}


@pytest.fixture(scope="session")
def session_cache() -> dict:
    """A dict shared by all benchmarks of the session (inputs, outputs, references)."""
    return {}


def skip_without_model_peer(model: str) -> None:
    """Skip a whole-model benchmark when its PyTorch model cannot be assembled or Numba is missing."""
    for ok, why in (B.model_peer_available(model), B.numba_available()):
        if not ok:
            pytest.skip(why)


def cached_reference(session_cache: dict, key, build, what: str):
    """The reference ``build()`` makes, built once per session under ``key``.

    A peer library that cannot be imported (a worker's ``import`` failure) skips every
    benchmark that needs it, saying ``what`` cannot be built; any other failure (a parity
    error above all) fails the benchmark.
    """
    from bench.harness.protocol import WorkerError

    if key not in session_cache:
        try:
            session_cache[key] = build()
        except WorkerError as exc:
            if exc.kind != "import":
                raise
            session_cache[key] = exc
    ref = session_cache[key]
    if isinstance(ref, WorkerError):
        pytest.skip(f"{what} cannot be built: {str(ref).splitlines()[-1]}")
    return ref


@pytest.fixture(scope="session")
def pool(smoke):
    """The session's worker pool; every worker ends with the session."""
    with B.WorkerPool(shared=smoke) as p:
        yield p


class Record:
    """Collects medians for the end-of-session summary."""

    def __init__(self):
        self.times: dict = {}      # (group, label) -> median seconds
        self.floor: dict = {}      # kernel group -> exp floor median seconds

    def add(self, benchmark, group: str, label: str) -> float | None:
        """Store the median of a finished benchmark (None when benchmarks are disabled).

        For a worker, the median of its own step times (``inside_median_s``): the ratios
        of the summary carry no pipe round trip, as in ``cli.py bench``.
        """
        stats = getattr(benchmark, "stats", None)
        if stats is None:
            return None
        median = benchmark.extra_info.get("inside_median_s", stats.stats.median)
        self.times[(group, label)] = median
        return median

    def lines(self) -> list[str]:
        """One line per group: numba against numpy, the peer and the floors."""
        out = []
        for group in sorted({g for g, _ in self.times}):
            t = {lab: s for (g, lab), s in self.times.items() if g == group}
            for lab in sorted(t):
                if not lab.endswith("numba"):
                    continue
                prefix = lab[: -len("numba")]
                parts = [f"{group:40s} {prefix.strip() or 'step':5s}"]
                if prefix + "numpy" in t:
                    parts.append(f"numba {t[prefix + 'numpy'] / t[lab]:6.2f}x faster than numpy")
                if "peer" in t:
                    parts.append(f"{t['peer'] / t[lab]:6.2f}x faster than the peer")
                for torch_impl in ("torch eager", "torch compile"):      # whole models
                    if torch_impl in t:
                        parts.append(f"{t[torch_impl] / t[lab]:6.2f}x faster than {torch_impl}")
                if "floor" in t:
                    parts.append(f"{t[lab] / t['floor']:5.2f}x its machine floor")
                if group in self.floor and prefix.strip() in ("fwd", "bwd"):
                    parts.append(f"exp-floor fraction {self.floor[group] / t[lab]:5.2f}")
                out.append("  ".join(parts))
        return out


_RECORD = Record()


@pytest.fixture(scope="session")
def record() -> Record:
    """The session's :class:`Record`."""
    return _RECORD


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = _RECORD.lines()
    if lines:
        terminalreporter.write_sep("-", "numba against numpy, the PyTorch peer and the machine floor (medians)")
        for line in lines:
            terminalreporter.write_line(line)
