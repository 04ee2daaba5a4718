"""The ``bench`` command and its harness (bench.harness), on smoke shapes.

Smoke mode times one call per measurement on tiny shapes, so these tests check the
plumbing (rows, parity checks, tables, Markdown, CLI wiring), not the speed. The
report below starts two worker processes (one imports torch); the pieces of the
harness are tested on their own in ``tests/test_bench_harness.py``.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench.harness.cases import KERNELS, MODEL_NAMES, SMOKE_SIZES, numba_available, peer_available
from bench.harness.markdown import format_table, write_markdown
from bench.harness.peers import PAIRS
from bench.harness.run import run_benchmarks
from engine.parity import ParityError, assert_parity, tolerance


@pytest.fixture(scope="module")
def report():
    return run_benchmarks(smoke=True, sections=("kernels", "train", "torch"), log=None)


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


def test_train_rows_cover_every_model_dtype_and_size(report):
    got = {(r["model"], r["dtype"], r["size_name"]) for r in report.train}
    want = {(m, d, "default") for m in MODEL_NAMES for d in ("float64", "float32")}
    want |= {(m, "float64", "cli") for m in MODEL_NAMES}
    assert got == want
    has_numba, _ = numba_available()
    for r in report.train:
        assert r["numpy"] > 0 and r["floor_gemm"] > 0 and r["floor_exp"] > 0
        assert r["floor"] == pytest.approx(r["floor_gemm"] + r["floor_exp"])
        assert r["gemms"] > 0 and r["exps"] > 0
        assert r["numpy_vs_floor"] == pytest.approx(r["numpy"] / r["floor"])
        assert (r["parity"] is not None) == has_numba
        if has_numba:
            assert r["parity"] <= tolerance(r["dtype"])
            assert r["numba_vs_floor"] == pytest.approx(r["numba"] / r["floor"])
        assert set(r["commands"]) >= {"numpy", "floor gemm", "floor exp"}


def test_layer_pair_rows(report):
    available = [layer for layer, pair in PAIRS.items() if peer_available(pair)[0]]
    assert {(r["layer"], r["dtype"]) for r in report.torch} == {
        (layer, d) for layer in available for d in ("float64", "float32")}
    for r in report.torch:
        assert r["peer"] > 0 and r["numpy"] > 0
        assert r["parity"] <= tolerance(PAIRS[r["layer"]].tolerance_dtype(r["dtype"]))
        assert r["commands"]["peer"].startswith("python -m bench.harness.worker layer ")


def test_table_has_sections_and_targets(report):
    text = format_table(report)
    for needle in ("Kernels", "selective_scan_fwd", "gru_bwd", "speed-up", "floor fraction",
                   "Train step", "hybrid", "Machine floor", "numba / floor", "Targets",
                   "MambaBlock fwd+bwd"):
        assert needle in text
    # Smoke shapes are not the target sizes: no verdict may be claimed from them.
    assert "NOT met" not in text and "  met " not in text


def test_markdown_writer(report, tmp_path):
    path = write_markdown(report, tmp_path / "BENCHMARKS.md")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks")
    assert "## Machine" in text and "| cpu |" in text and "| numba threads |" in text
    assert "python cli.py bench --write BENCHMARKS.md" in text
    assert "| kernel | size | dtype | numpy ms | numba ms | speed-up |" in text
    assert "## Targets" in text
    assert "## Reproduce one row in a process of your own" in text
    assert "`python -m bench.harness.worker train hybrid --backend numpy --dtype float64" in text


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


def test_saved_report_renders_the_same_markdown(report, tmp_path, capsys):
    # bench/bounds.md can be edited after a long run and BENCHMARKS.md rewritten from
    # the saved measurements: the Markdown must not change in any other way.
    import cli
    from bench.harness.cli import load_report, save_report

    saved = save_report(report, tmp_path / "report.json")
    assert load_report(saved) == report
    direct = write_markdown(report, tmp_path / "direct.md").read_text(encoding="utf-8")
    again = tmp_path / "again.md"
    assert cli.main(["bench", "--from", str(saved), "--write", str(again)]) == 0
    assert again.read_text(encoding="utf-8") == direct


def test_cli_bench_from_a_bad_file_is_one_line(tmp_path, capsys):
    import cli

    bad = tmp_path / "report.json"
    bad.write_text("{not json", encoding="utf-8")
    assert cli.main(["bench", "--from", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read a saved bench report") and err.count("\n") == 1
    assert cli.main(["bench", "--from", str(tmp_path / "missing.json")]) == 2


def test_update_measures_only_the_given_sections_and_keeps_the_others(report, tmp_path, capsys):
    """``--update``: the kernel rows are measured again, the train and layer rows stay as saved,
    and the page says when the re-measured section was measured."""
    import cli
    from bench.harness.cli import load_report, save_report

    saved = save_report(report, tmp_path / "report.json")
    marker = {"marker": "kept"}
    old = load_report(saved)
    old.train = [dict(r, **marker) for r in old.train]
    old.kernels = [dict(r, marker="measured before") for r in old.kernels]
    save_report(old, saved)
    page = tmp_path / "bench.md"
    assert cli.main(["bench", "--smoke", "--only", "kernels", "--update", str(saved), "--write", str(page)]) == 0
    merged = load_report(saved)                      # written back where it came from
    assert all(r["marker"] == "kept" for r in merged.train) and merged.torch == report.torch
    assert merged.kernels and not any("marker" in r for r in merged.kernels)
    assert set(merged.updated) == {"kernels"}
    assert "Section `kernels` measured again on " in page.read_text(encoding="utf-8")


def test_update_refuses_a_report_of_another_mode(report, tmp_path, capsys):
    import cli
    from bench.harness.cli import load_report, save_report

    saved = save_report(report, tmp_path / "report.json")     # a smoke report
    before = saved.read_text(encoding="utf-8")
    assert cli.main(["bench", "--quick", "--only", "kernels", "--update", str(saved)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "merge only runs of one mode" in err and err.count("\n") == 1
    assert saved.read_text(encoding="utf-8") == before
    assert load_report(saved).updated == {}
