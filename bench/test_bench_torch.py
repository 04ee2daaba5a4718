"""Our layers against their PyTorch peers, every implementation in a process of its own.

* mambapy's MambaBlock (parallel scan) against our MambaBlock;
* ``torch.nn.GRU`` against our GRULayer;
* minGRU-pytorch's ``minGRU`` against our MinGRULayer;

forward + backward (input and parameter gradients), float64 and float32, batch 64,
seq_len 60, d_model 64, d_state 16 (tiny in a smoke run). Each timed implementation
gets a fresh worker (:mod:`bench.harness.worker`) started without thread variables: a
peer with its library's defaults and ``torch.set_num_threads`` equal to our thread
count, our layer as a library user builds it. Before timing, the worker's outputs are
checked against the other side of the pair (our layers load the peer's weights).

pytest-benchmark times the round trip of one step request; the worker's own time of
the step goes to ``extra_info`` (``inside_median_s``), so the pipe's share is visible.
Skipped when a peer's library is not installed.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench import harness as B
from bench.conftest import cached_reference

DTYPES = [np.dtype(np.float64), np.dtype(np.float32)]


def _reference(session_cache, pool, layer, dtype, size):
    return cached_reference(session_cache, ("pair", layer, dtype.name, size),
                            lambda: B.pair_reference(pool, layer, dtype, size), B.PAIRS[layer].peer)


@pytest.mark.parametrize("impl", B.IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=[d.name for d in DTYPES])
@pytest.mark.parametrize("layer", list(B.PAIRS))
def test_layer_pair(benchmark, record, pool, session_cache, layer, dtype, impl, layer_size):
    """Forward + backward of one implementation in its own worker, after a parity check."""
    ok, why = B.peer_available(B.PAIRS[layer])
    if not ok:
        pytest.skip(why)
    if impl == "ours numba":
        ok, why = B.numba_available()
        if not ok:
            pytest.skip(why)
    ref = _reference(session_cache, pool, layer, dtype, layer_size)
    worker, case, err = B.start_impl(pool, layer, impl, dtype, layer_size, ref)
    try:
        if impl == "peer":      # the peer's process holds its own library, not ours
            assert worker.cases[case]["engine modules loaded"] == []
        benchmark.group = f"layers {layer} {dtype.name}"
        benchmark.extra_info.update({"layer": layer, "impl": impl, "peer": B.PAIRS[layer].label,
                                     "dtype": dtype.name, "parity_rel_err": err, "worker": worker.cases[case],
                                     "reproduce": "python " + " ".join(B.command_for(
                                         B.impl_spec(layer, impl, dtype, layer_size)))})
        inside = B.benchmark_worker(benchmark, pool, worker, case)
        assert all(t > 0 for t in inside)
    finally:
        pool.release(worker)
    record.add(benchmark, benchmark.group, impl)
