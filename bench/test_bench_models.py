"""Whole models: each forecaster's train step against the same model assembled in PyTorch.

Forward + MSE + backward + Adam of the four forecasters (batch 64, seq_len 60, hidden 64,
d_state 16; tiny in a smoke run), float64 and float32, against the same model built from
the peers (mambapy's ResidualBlock, minGRU-pytorch's minGRU, torch.nn.GRU, torch.nn.Linear,
mambapy's RMSNorm; :mod:`bench.harness.torch_models`), eager and ``torch.compile``. Each
implementation runs in a fresh worker and is checked first against one float64 reference
(our NumPy-backend model on the PyTorch model's weights, itself checked against the
PyTorch model; :mod:`bench.harness.wholemodel`). One group per model and dtype.

``torch.compile`` takes 10 s to a minute per model, even on tiny shapes: it is
``bench_slow`` (measured runs only). Skipped when a peer library is not installed.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench import harness as B
from bench.conftest import cached_reference, skip_without_model_peer

DTYPES = [np.dtype(np.float64), np.dtype(np.float32)]
IMPLS = [pytest.param(impl, marks=pytest.mark.bench_slow) if impl == "torch compile" else impl
         for impl in B.MODEL_IMPLS]


def _reference(session_cache, pool, model, dtype, size):
    return cached_reference(session_cache, ("model", model, dtype.name, size),
                            lambda: B.model_reference(pool, model, dtype, size), f"the {model} model in PyTorch")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=[d.name for d in DTYPES])
@pytest.mark.parametrize("model", ["mamba", "mingru", "gru", "hybrid"])
def test_model_train_step(benchmark, record, pool, session_cache, model, dtype, impl, model_size):
    """One train step of one implementation in its own worker, after a parity check."""
    skip_without_model_peer(model)
    from bench.harness.peers import default_threads

    ref = _reference(session_cache, pool, model, dtype, model_size)
    threads = default_threads()
    worker, case, err = B.start_model(pool, model, impl, dtype, model_size, ref, threads)
    try:
        if impl != "ours":      # a PyTorch model's process holds its own libraries, not ours
            assert worker.cases[case]["engine modules loaded"] == []
        benchmark.group = f"models {model} {dtype.name}"
        benchmark.extra_info.update({"model": model, "impl": impl, "dtype": dtype.name, "parity_rel_err": err,
                                     "reference_parity_rel_err": ref.parity, "worker": worker.cases[case],
                                     "reproduce": "python " + " ".join(B.command_for(
                                         B.impl_model_spec(model, impl, dtype, model_size, threads)))})
        inside = B.benchmark_worker(benchmark, pool, worker, case)
        assert all(t > 0 for t in inside)
    finally:
        pool.release(worker)
    record.add(benchmark, benchmark.group, "ours numba" if impl == "ours" else impl)
