"""The long-sequence section of ``cli.py bench`` (bench.harness.longseq), on smoke shapes.

No speed is asserted: the section runs end to end on tiny shapes, the memory op is
checked to see a step's allocation, and the three targets are judged on hand-made rows.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench.harness.cases import numba_available, peer_available
from bench.harness.client import Worker
from bench.harness.longseq import LINEAR_BASE, design_avoided_bytes, long_command, long_seq_evidence
from bench.harness.markdown import to_markdown
from bench.harness.peers import PAIRS
from bench.harness.protocol import WorkerError, ok, parse_reply
from bench.harness.run import Report, run_benchmarks
from bench.harness.sizes import LONG_SEQ_LENGTHS, Size, long_seq_sizes
from bench.harness.specs import layer_spec, spec_from_args
from bench.harness.targets import evaluate_targets
from bench.harness.worker import _parser


@pytest.fixture(scope="module")
def report():
    ok_numba, why = numba_available()
    if not ok_numba:
        pytest.skip(why)
    return run_benchmarks(smoke=True, sections=("longseq",), log=None)


def test_section_rows_cover_every_pair_length_and_dtype(report):
    want = {(layer, n, dt) for layer, pair in PAIRS.items() if peer_available(pair)[0]
            for n in (s.seq_len for s in long_seq_sizes(True)) for dt in ("float32", "float64")}
    assert {(r["layer"], r["seq_len"], r["dtype"]) for r in report.longseq} == want
    for r in report.longseq:
        assert r["numba"] > 0 and r["peer"] > 0
        assert r["speedup_vs_peer"] == pytest.approx(r["peer"] / r["numba"])
        assert r["numba_per_step_us"] == pytest.approx(r["numba"] / r["seq_len"] * 1e6)
        assert r["mem_numba"] is None or r["mem_numba"] >= 0
        assert set(r["commands"]) == {"peer", "ours numba"}
        assert (r["design_avoided_bytes"] is not None) == (r["layer"] == "MambaBlock")


def test_section_table_and_targets_on_smoke_shapes(report):
    md = to_markdown(report)
    assert "## Long sequences" in md and "long sequence L=64" in md
    t = {x["id"]: x for x in evaluate_targets(report)}
    for tid in ("long_seq_linear", "long_seq_vs_peer", "long_seq_memory"):
        assert t[tid]["status"] in ("n/a (smoke shapes)", "not measured")


def test_memory_op_sees_a_steps_allocation():
    # GRULayer on numpy at b=4, L=2048, H=64 float64 keeps (b, L, 3H) gate arrays: megabytes
    size = Size("mem", batch=4, seq_len=2048, d_model=64, d_state=4)
    with Worker("memory test worker") as w:
        case = w.setup(layer_spec("GRULayer", "ours", np.float64, size, backend="numpy"))
        w.step(case)
        peak, seconds = w.memory(case)
    assert seconds > 0
    if peak is None:
        pytest.skip("peak resident memory cannot be read on this platform")
    assert peak > 2 ** 20


def test_memory_reply_is_checked():
    assert parse_reply(ok("memory", bytes=None, seconds=0.1), "memory")["bytes"] is None
    with pytest.raises(WorkerError, match="bytes"):
        parse_reply(ok("memory", bytes=-5, seconds=0.1), "memory")
    with pytest.raises(WorkerError, match="lacks"):
        parse_reply(ok("memory", seconds=0.1), "memory")


@pytest.mark.parametrize("impl", ["ours numba", "peer"])
@pytest.mark.parametrize("layer", list(PAIRS))
def test_long_commands_round_trip(layer, impl):
    size = long_seq_sizes(False)[-1]
    cmd = long_command(layer, impl, np.float32, size, threads=2).split()
    assert cmd[:3] == ["python", "-m", "bench.harness.worker"]
    assert "--seq-len" in cmd and cmd[cmd.index("--seq-len") + 1] == str(LONG_SEQ_LENGTHS[-1])
    spec = spec_from_args(_parser().parse_args(cmd[3:]))
    want = layer_spec(layer, "ours" if impl != "peer" else "peer", np.float32, size,
                      backend="numba" if impl != "peer" else None, threads=2 if impl == "peer" else None)
    drop = (lambda s: {**s, "size": {k: v for k, v in s["size"].items() if k != "name"}})
    assert drop(spec) == drop(want)


def test_design_avoided_bytes():
    size = Size("x", batch=4, seq_len=16384, d_model=64, d_state=16)
    assert design_avoided_bytes("MambaBlock", size, np.float32) == 4 * 16384 * 128 * 16 * 4 == 512 * 2 ** 20
    assert design_avoided_bytes("GRULayer", size, np.float32) is None


# ----------------------------------------------------------------------------------
# Targets on hand-made rows
# ----------------------------------------------------------------------------------
#: The whole-process peak of a worker before any length-dependent array (imports, weights).
BASE_RSS = 200 * 2 ** 20


def _row(layer, dtype, L, numba, peer, mem, load=None):
    """``mem``: the footprint's length-dependent part (bytes), on top of :data:`BASE_RSS`."""
    size = Size("x", batch=4, seq_len=L, d_model=64, d_state=16)
    return {"layer": layer, "peer_name": PAIRS[layer].peer, "dtype": dtype, "seq_len": L, "batch": 4,
            "numba": numba, "peer": peer, "speedup_vs_peer": peer / numba,
            "numba_per_step_us": numba / L * 1e6, "mem_numba": mem // 10, "mem_numba_per_step": mem / 10 / (4 * L),
            "rss_numba": BASE_RSS + mem,
            "design_avoided_bytes": design_avoided_bytes(layer, size, dtype), "other_load": load}


def _report(rows, smoke=False):
    rep = Report(machine={}, command="", quick=False, smoke=smoke)
    rep.longseq = rows
    return rep


def _linear_rows(layer="MambaBlock", dtype="float32", per_us=10.0, growth=1.0, mem_growth=1.0, peer_x=20.0,
                 base_mem=16 * 2 ** 20):
    rows = []
    for L in LONG_SEQ_LENGTHS:
        scale = growth if L == LONG_SEQ_LENGTHS[-1] else 1.0
        mscale = mem_growth if L == LONG_SEQ_LENGTHS[-1] else 1.0
        t = per_us * 1e-6 * L * scale
        rows.append(_row(layer, dtype, L, t, t * peer_x, int(base_mem * L / LINEAR_BASE * mscale)))
    return rows


def _targets(rows, smoke=False):
    return {x["id"]: x for x in evaluate_targets(_report(rows, smoke))}


def test_linear_costs_meet_every_long_sequence_target():
    t = _targets(_linear_rows() + _linear_rows("GRULayer", "float64", peer_x=6.0))
    assert t["long_seq_linear"]["status"] == "met"
    assert "MambaBlock float32: 1.00x" in t["long_seq_linear"]["measured"]
    assert t["long_seq_vs_peer"]["status"] == "met" and "worst 6.00x" in t["long_seq_vs_peer"]["measured"]
    assert t["long_seq_memory"]["status"] == "met"
    # 16 MiB per 1,024 steps: 240 MiB from L=1,024 to 16,384, against 480 MiB of float32 states
    assert "0.50 of what storing the (b, L, d_inner, d_state) states would add (480 MiB)" in \
        t["long_seq_memory"]["measured"]
    assert "growth per step 1.00x" in t["long_seq_memory"]["measured"]


def test_superlinear_time_is_not_met_and_the_worst_layer_counts():
    t = _targets(_linear_rows() + _linear_rows("GRULayer", "float64", growth=1.5))
    assert t["long_seq_linear"]["status"] == "NOT met"
    assert "GRULayer float64: 1.50x" in t["long_seq_linear"]["measured"]
    # just inside the bar
    assert _targets(_linear_rows(growth=1.29))["long_seq_linear"]["status"] == "met"


def test_a_peer_less_than_5x_behind_at_one_length_is_not_met():
    rows = _linear_rows()
    rows[0] = _row("MambaBlock", "float32", rows[0]["seq_len"], 1e-3, 4e-3, 2 ** 20)
    t = _targets(rows)
    assert t["long_seq_vs_peer"]["status"] == "NOT met" and "worst 4.00x (float32 L=256)" in \
        t["long_seq_vs_peer"]["measured"]


def test_memory_growing_faster_than_l_or_above_the_array_is_not_met():
    # the footprint at L=16,384 1.6x a linear one: growth per step from 4,096 on about 1.8x that before
    t = _targets(_linear_rows("GRULayer", mem_growth=1.6))
    assert t["long_seq_memory"]["status"] == "NOT met"
    assert _targets(_linear_rows("GRULayer", mem_growth=1.2))["long_seq_memory"]["status"] == "met"
    # linear growth, and MambaBlock's growth from 1,024 to 16,384 against the float32 states'
    # growth (480 MiB):
    t = _targets(_linear_rows(base_mem=30 * 2 ** 20))
    assert t["long_seq_memory"]["status"] == "met"          # 450 MiB below it ...
    t = _targets(_linear_rows(base_mem=40 * 2 ** 20))
    assert t["long_seq_memory"]["status"] == "NOT met"      # ... 600 MiB: 1.25 of it
    assert "1.25 of what storing the (b, L, d_inner, d_state) states would add" in \
        t["long_seq_memory"]["measured"]


def test_long_sequence_verdicts_disturbed_and_smoke():
    rows = _linear_rows()
    rows[-1]["other_load"] = 0.5
    assert _targets(rows)["long_seq_linear"]["status"] == "met (disturbed)"
    t = _targets(_linear_rows(growth=2.0), smoke=True)
    assert {t[k]["status"] for k in ("long_seq_linear", "long_seq_vs_peer", "long_seq_memory")} == {
        "n/a (smoke shapes)"}
    # no row at the base length: nothing to compare the longest length with
    no_base = [r for r in _linear_rows() if r["seq_len"] != LINEAR_BASE]
    assert long_seq_evidence(_report(no_base))["long_seq_linear"][1] == []
