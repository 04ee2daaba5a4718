"""The ``bench`` command and its harness (bench.harness), on smoke shapes.

Smoke mode times one call per measurement on tiny shapes, so these tests check the
plumbing (rows, parity checks, tables, Markdown, CLI wiring), not the speed.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench.harness.cases import KERNELS, MODEL_NAMES, SMOKE_SIZES, numba_available
from bench.harness.markdown import evaluate_targets, format_table, write_markdown
from bench.harness.run import Report, run_benchmarks
from engine.parity import ParityError, assert_parity, tolerance


@pytest.fixture(scope="module")
def report():
    return run_benchmarks(smoke=True, sections=("kernels", "train"), log=None)


def test_kernel_rows_cover_every_kernel_and_size(report):
    got = {(r["kernel"], r["size"].split()[0], r["dtype"]) for r in report.kernels}
    want = {(k, s.name, "float64") for k in KERNELS for s in SMOKE_SIZES}
    assert got == want
    has_numba, _ = numba_available()
    for row in report.kernels:
        assert row["numpy"] > 0
        if has_numba:
            assert row["numba"] > 0 and row["speedup"] == pytest.approx(row["numpy"] / row["numba"])
            assert row["parity"] <= tolerance(np.float64)
        if row["kernel"].startswith("selective_scan"):
            assert row["floor"] > 0
            assert (row["floor_fraction"] is not None) == has_numba


def test_train_rows_cover_every_model_and_dtype(report):
    got = {(r["model"], r["dtype"]) for r in report.train}
    assert got == {(m, d) for m in MODEL_NAMES for d in ("float64", "float32")}
    assert all(r["numpy"] > 0 for r in report.train)


def test_table_has_sections_and_targets(report):
    text = format_table(report)
    for needle in ("Kernels", "selective_scan_fwd", "gru_bwd", "speed-up", "floor fraction",
                   "Train step", "hybrid", "Targets", "MambaBlock fwd+bwd"):
        assert needle in text
    # Smoke shapes are not the target sizes: no verdict may be claimed from them.
    assert "NOT met" not in text and "| met" not in text


def test_markdown_writer(report, tmp_path):
    path = write_markdown(report, tmp_path / "BENCHMARKS.md")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks")
    assert "## Machine" in text and "| cpu |" in text and "| numba threads |" in text
    assert "python cli.py bench --write BENCHMARKS.md" in text
    assert "| kernel | size | dtype | numpy ms | numba ms | speed-up |" in text
    assert "## Targets" in text


def test_targets_are_judged_against_thresholds():
    rep = Report(machine={}, command="", quick=False, smoke=False)
    rep.train = [{"model": "hybrid", "dtype": "float64", "speedup": 6.0},
                 {"model": "hybrid", "dtype": "float32", "speedup": 2.0}]
    rep.kernels = [
        {"kernel": "selective_scan_fwd", "size": "single (b=1)", "dtype": "float64", "speedup": 25.0,
         "floor_fraction": 0.6},
        {"kernel": "selective_scan_bwd", "size": "single (b=1)", "dtype": "float64", "speedup": 12.0,
         "floor_fraction": 0.3},
    ]
    rep.torch = [{"layer": "MambaBlock", "speedup_vs_torch": 4.0, "torch": 0.02, "numba": 0.005},
                 {"layer": "GRULayer", "speedup_vs_torch": 1.2, "torch": 0.012, "numba": 0.01}]
    status = {t["target"].split()[0]: t["status"] for t in evaluate_targets(rep)}
    assert status == {"hybrid": "met", "single": "NOT met", "scan": "met",
                      "MambaBlock": "NOT met", "GRULayer": "met"}
    empty = evaluate_targets(Report(machine={}, command="", quick=False, smoke=False))
    assert {t["status"] for t in empty} == {"not measured"}


def test_parity_check_fails_on_a_real_difference():
    a = np.linspace(-1, 1, 50)
    assert assert_parity(a + 1e-13, a, np.float64) < 1e-10
    with pytest.raises(ParityError):
        assert_parity(a + 1e-8, a, np.float64)
    with pytest.raises(ParityError):
        assert_parity(a.astype(np.float32), a, np.float64)


def test_cli_bench_prints_and_writes(tmp_path, capsys):
    import cli

    out = tmp_path / "bench.md"
    assert cli.main(["bench", "--smoke", "--only", "kernels", "--write", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "selective_scan_bwd" in printed and "Targets" in printed
    assert out.read_text(encoding="utf-8").startswith("# Benchmarks")


def test_cli_bench_rejects_unknown_section(capsys):
    import cli

    assert cli.main(["bench", "--only", "kernels,warp-drive"]) == 2
    assert "warp-drive" in capsys.readouterr().err
