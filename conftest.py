"""Repository-wide pytest configuration: benchmarks are opt-in.

``setup.cfg`` collects ``tests`` and ``bench``. A plain ``pytest`` must stay fast, so
unless benchmarking is asked for (``--benchmark-only`` or ``--benchmark-enable``) the
benchmark fixture is disabled, which makes every benchmark call its function exactly
once, and ``bench/`` switches to tiny "smoke" shapes. The smoke run still executes
every parity assert, so the suite doubles as a cheap cross-backend test.

``--benchmark-disable`` cannot go into ``addopts``: pytest-benchmark rejects it next to
``--benchmark-only``. Setting the option here, before the plugin reads it, avoids that.
"""
from __future__ import annotations

import pytest


def benchmarks_requested(config) -> bool:
    """Whether this run measures (``--benchmark-only`` / ``--benchmark-enable``)."""
    return bool(getattr(config.option, "benchmark_only", False)
                or getattr(config.option, "benchmark_enable", False))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # tryfirst: pytest-benchmark builds its session (and reads benchmark_disable) in its
    # own pytest_configure, marked trylast, so this always runs before it.
    measuring = benchmarks_requested(config)
    if hasattr(config.option, "benchmark_disable") and not measuring:
        config.option.benchmark_disable = True
    # bench/conftest.py and the bench modules read this to pick their shapes.
    # No thread limits are set here: the kernel benchmarks run as a library user runs
    # the kernels, and everything else runs in worker processes of its own.
    config.bench_smoke = not measuring
    config.addinivalue_line(
        "markers", "bench_slow: a benchmark that only runs when benchmarks are measured")
