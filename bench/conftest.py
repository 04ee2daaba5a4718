"""Fixtures of the benchmark suite.

Shapes depend on the mode chosen in the root ``conftest.py``: the issue's sizes when
benchmarks are measured, tiny ones (same names) when they only run once as smoke tests.
Inputs, reference outputs and parity results are cached for the session so the NumPy
and Numba halves of a pair share one set of inputs and the slow reference runs once.
At the end a summary prints the speed-up of every pair and each scan kernel's fraction
of the exp floor, which pytest-benchmark's own tables cannot show.
"""
from __future__ import annotations

import pytest

from bench import harness as B


def is_smoke(config) -> bool:
    """True unless this run measures benchmarks (see the root conftest.py)."""
    return getattr(config, "bench_smoke", True)


def pytest_generate_tests(metafunc):
    # Parametrize here rather than with a decorator: the shapes depend on the mode,
    # which is only known once the command line has been parsed.
    smoke = is_smoke(metafunc.config)
    if "size" in metafunc.fixturenames:
        sizes = B.sizes_for(smoke)
        metafunc.parametrize("size", sizes, ids=[s.name for s in sizes])
    if "train_size" in metafunc.fixturenames:
        size = B.SMOKE_TRAIN_SIZE if smoke else B.TRAIN_SIZE
        metafunc.parametrize("train_size", [size], ids=[size.name])


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
    """A dict shared by all benchmarks of the session (inputs, outputs, parity)."""
    return {}


class Record:
    """Collects medians of pairs for the end-of-session summary."""

    def __init__(self):
        self.times: dict = {}      # (group, label) -> median seconds
        self.floor: dict = {}      # group -> exp floor median seconds

    def add(self, benchmark, group: str, label: str) -> float | None:
        """Store the median of a finished benchmark (None when benchmarks are disabled)."""
        stats = getattr(benchmark, "stats", None)
        if stats is None:
            return None
        median = stats.stats.median
        self.times[(group, label)] = median
        return median


_RECORD = Record()


@pytest.fixture(scope="session")
def record() -> Record:
    """The session's :class:`Record`."""
    return _RECORD


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _RECORD.times:
        return
    tr = terminalreporter
    tr.write_sep("-", "pairs: numpy/numba speed-up, exp-floor fraction (floor / numba), vs PyTorch")
    for group in sorted({g for g, _ in _RECORD.times}):
        labels = {lab: t for (g, lab), t in _RECORD.times.items() if g == group}
        for lab, t in sorted(labels.items()):
            if not lab.endswith(" numba"):
                continue
            what = lab[: -len(" numba")]
            parts = [f"{group:38s} {what:5s}"]
            if what + " numpy" in labels:
                parts.append(f"numba {labels[what + ' numpy'] / t:6.1f}x faster than numpy")
            if group in _RECORD.floor and what in ("fwd", "bwd"):
                parts.append(f"floor fraction {_RECORD.floor[group] / t:5.2f}")
            if "torch" in labels:
                parts.append(f"numba {labels['torch'] / t:6.2f}x faster than torch")
            tr.write_line("  ".join(parts))
