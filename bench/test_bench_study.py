"""Study throughput: a small ``compare`` study on the local pool and on a Dask LocalCluster.

Each round is a whole ``python cli.py compare`` process (see
:mod:`bench.harness.study_rate`); ``extra_info`` keeps the study's own training time and
the runs per minute. A round takes tens of seconds, so these are marked ``bench_slow``:
they exist only when benchmarks are measured (a smoke run deselects them).
"""
from __future__ import annotations

import pytest

from bench.harness.cases import numba_available
from bench.harness.study_rate import EXECUTORS, STUDY, time_study

pytest.importorskip("distributed")
pytestmark = pytest.mark.bench_slow


@pytest.mark.parametrize("executor", list(EXECUTORS), ids=["pool", "dask-local"])
def test_study_rate(benchmark, executor):
    backend = "numba" if numba_available()[0] else "numpy"
    runs = []

    def study():
        runs.append(time_study(STUDY, EXECUTORS[executor], backend))

    benchmark.group = "study throughput"
    benchmark.pedantic(study, rounds=2, iterations=1)
    benchmark.extra_info.update({
        "runs": runs[0]["runs"],
        "training_s": [r["training"] for r in runs],
        "runs_per_min_training": [60.0 * r["runs"] / r["training"] for r in runs],
    })
