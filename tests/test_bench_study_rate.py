"""The study-throughput section of ``cli.py bench``, on its smoke study (numbers meaningless).

Both executors run the same tiny ``compare`` study as subprocesses; the rows must count
the study's runs, carry rates consistent with their own timings, and render as a table.
"""
from __future__ import annotations

import pytest

pytest.importorskip("distributed")

from bench.harness.markdown import format_table  # noqa: E402
from bench.harness.run import Report  # noqa: E402
from bench.harness.study_rate import EXECUTORS, SMOKE_STUDY, measure_study_rate  # noqa: E402


def test_study_rate_rows():
    rows = measure_study_rate("numpy", smoke=True, rounds=1)
    seeds = int(SMOKE_STUDY[SMOKE_STUDY.index("--seeds") + 1])
    assert [r["executor"] for r in rows] == list(EXECUTORS)
    for row in rows:
        assert row["runs"] == seeds and row["rounds"] == 1
        assert 0 < row["start"] < row["training"] < row["wall"]
        assert row["running"] == pytest.approx(row["training"] - row["start"])
        assert row["per_min_running"] == pytest.approx(60 * row["runs"] / row["running"])
        assert row["per_min_training"] == pytest.approx(60 * row["runs"] / row["training"])
        assert row["per_min_wall"] == pytest.approx(60 * row["runs"] / row["wall"])
    assert rows[0]["vs_pool"] == 1.0
    report = Report(machine={}, command="", quick=True, smoke=True, study=rows)
    text = format_table(report)
    assert "Study throughput" in text and "Dask LocalCluster (--scheduler local:2)" in text
