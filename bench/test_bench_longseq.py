"""Long sequences: our numba layers and their PyTorch peers at L = 256 to 16,384 (issue 19 item 3).

MambaBlock / mambapy, GRULayer / ``torch.nn.GRU``, MinGRULayer / minGRU-pytorch, forward +
backward, float64 and float32, b=4, d_model 64, d_state 16 (tiny widths and L = 16 to 64
in a smoke run). As ``bench/test_bench_torch.py``: each implementation in a fresh worker,
checked against the pair's reference first (:func:`bench.harness.longseq.long_reference`,
which explains the check of minGRU-pytorch, whose rounding grows with L), then timed by
pytest-benchmark as the round trip of one step request; ``extra_info`` holds the worker's
own step time, time per step (``us_per_step``) and the peak memory of one step
(``peak_step_bytes``). The full shapes are ``bench_slow`` (mambapy takes ~7 s per step at
L = 16,384): ``pytest --benchmark-only -m bench_slow -k longseq`` runs them alone.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench import harness as B
from bench.conftest import cached_reference, is_smoke
from bench.harness.longseq import PEER_ROUNDING, TIMED, long_command, long_reference, start_long
from bench.harness.sizes import long_seq_sizes

DTYPES = [np.dtype(np.float64), np.dtype(np.float32)]


def pytest_generate_tests(metafunc):
    # the shapes depend on the mode, known once the command line has been parsed
    if "long_size" in metafunc.fixturenames:
        smoke = is_smoke(metafunc.config)
        marks = () if smoke else (pytest.mark.bench_slow,)
        metafunc.parametrize("long_size", [pytest.param(s, marks=marks, id=f"L{s.seq_len}")
                                           for s in long_seq_sizes(smoke)])


def _reference(session_cache, pool, layer, dtype, size, smoke):
    """The pair's reference at ``size``; for a peer of PEER_ROUNDING, after the float64 check
    at the shortest length (as the section does)."""
    lenient = B.PAIRS[layer].peer in PEER_ROUNDING

    def build():
        if lenient and ("long f64", layer) not in session_cache:
            # raises unless the float64 pair agrees at the usual tolerance at the shortest length
            session_cache[("long f64", layer)] = long_reference(pool, layer, np.float64, long_seq_sizes(smoke)[0])
        return long_reference(pool, layer, dtype, size, lenient=lenient)

    return cached_reference(session_cache, ("long pair", layer, dtype.name, size), build, B.PAIRS[layer].peer)


@pytest.mark.parametrize("impl", TIMED)
@pytest.mark.parametrize("dtype", DTYPES, ids=[d.name for d in DTYPES])
@pytest.mark.parametrize("layer", list(B.PAIRS))
def test_long_sequence(benchmark, record, pool, session_cache, smoke, layer, dtype, impl, long_size):
    """Forward + backward of one implementation at one length, in its own worker, after a parity check."""
    ok, why = B.peer_available(B.PAIRS[layer])
    if not ok:
        pytest.skip(why)
    ok, why = B.numba_available()
    if not ok:
        pytest.skip(why)
    ref, against = _reference(session_cache, pool, layer, dtype, long_size, smoke)
    worker, case, err = start_long(pool, layer, impl, dtype, long_size, ref, against)
    try:
        peak, _ = worker.memory(case)
        benchmark.group = f"longseq {layer} {dtype.name} L={long_size.seq_len}"
        benchmark.extra_info.update({"layer": layer, "impl": impl, "peer": B.PAIRS[layer].label,
                                     "dtype": dtype.name, "seq_len": long_size.seq_len, "parity_rel_err": err,
                                     "checked_against": against, "peak_step_bytes": peak,
                                     "worker": worker.cases[case],
                                     "reproduce": long_command(layer, impl, dtype, long_size)})
        inside = B.benchmark_worker(benchmark, pool, worker, case)
        assert all(t > 0 for t in inside)
        benchmark.extra_info["us_per_step"] = np.median(inside) / long_size.seq_len * 1e6
    finally:
        pool.release(worker)
    record.add(benchmark, benchmark.group, impl)
