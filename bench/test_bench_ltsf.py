"""The long-horizon workload (issue 19, item 2): the long-horizon forecaster's train step and
one epoch of ETTh1, ours against the same model assembled in PyTorch.

The same rows as ``cli.py bench --only ltsf`` (:mod:`bench.harness.ltsf_steps`): train steps
at lookback 96/336/720 x horizon 96/720 (7 channels, channel-independent; the mixed layout
at lookback 96), float32, plus float64 at the protocol's shape; one epoch of ETTh1 at the
protocol's shape. Each implementation runs in a fresh worker after a parity check against
one float64 reference. On smoke shapes only the tiny rows run; ``torch.compile`` and the
long shapes are ``bench_slow`` (measured runs only). Skipped when a peer library is not
installed.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench import harness as B
from bench.harness.ltsf_data import EPOCH_SHAPE, SMOKE_EPOCH_SHAPE, SMOKE_STEP_SHAPES, STEP_SHAPES
from bench.conftest import cached_reference, skip_without_model_peer

IMPLS = [pytest.param(impl, marks=pytest.mark.bench_slow) if impl == "torch compile" else impl
         for impl in B.MODEL_IMPLS]


def _rows():
    """(workload, smoke shape, full shape, dtype): smoke shapes stand in for the full ones."""
    def row(workload, smoke_shape, shape, dtype):
        marks = () if smoke_shape is not None else (pytest.mark.bench_slow,)
        return pytest.param(workload, smoke_shape, shape, dtype, marks=marks,
                            id=f"{workload}-{shape.lookback}-{shape.horizon}-{shape.layout}-{dtype}")

    rows = [row("step", SMOKE_STEP_SHAPES[0], STEP_SHAPES[0], "float32"),
            row("step", SMOKE_STEP_SHAPES[0], STEP_SHAPES[0], "float64"),
            row("step", SMOKE_STEP_SHAPES[1], STEP_SHAPES[-2], "float32"),
            row("epoch", SMOKE_EPOCH_SHAPE, EPOCH_SHAPE, "float32")]
    return rows + [row("step", None, s, "float32") for s in STEP_SHAPES[1:-2] + STEP_SHAPES[-1:]]


def _reference(session_cache, pool, model, dtype, shape, workload):
    from bench.harness.ltsf_steps import ltsf_reference

    return cached_reference(session_cache, ("ltsf", model, dtype, shape, workload),
                            lambda: ltsf_reference(pool, model, np.dtype(dtype), shape, workload),
                            f"the {model} long-horizon model in PyTorch")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("workload, smoke_shape, shape, dtype", _rows())
@pytest.mark.parametrize("model", ["mamba", "mingru", "gru", "hybrid"])
def test_ltsf(benchmark, record, pool, session_cache, smoke, model, workload, smoke_shape, shape, dtype, impl):
    """One train step (or epoch) of one implementation in its own worker, after a parity check."""
    from bench.harness.ltsf_steps import spec_builder
    from bench.harness.peers import default_threads

    skip_without_model_peer(model)
    if smoke:
        shape = smoke_shape
    spec = spec_builder(workload)
    ref = _reference(session_cache, pool, model, dtype, shape, workload)
    threads = default_threads()
    worker, case, err = B.start_model(pool, model, impl, np.dtype(dtype), shape, ref, threads, spec)
    try:
        if impl != "ours":      # a PyTorch model's process holds its own libraries, not ours
            assert worker.cases[case]["engine modules loaded"] == []
        benchmark.group = f"ltsf {model} {workload} {shape.lookback}->{shape.horizon} {shape.layout} {dtype}"
        benchmark.extra_info.update({"model": model, "impl": impl, "dtype": dtype, "workload": workload,
                                     "shape": shape.label(), "parity_rel_err": err,
                                     "reference_parity_rel_err": ref.parity, "worker": worker.cases[case],
                                     "reproduce": "python " + " ".join(B.command_for(
                                         B.impl_model_spec(model, impl, np.dtype(dtype), shape, threads, spec)))})
        if workload == "epoch":     # a whole epoch per call: a couple of rounds, no calibration
            benchmark.pedantic(lambda: worker.step(case), rounds=1 if smoke else 2, iterations=1)
        else:
            inside = B.benchmark_worker(benchmark, pool, worker, case)
            assert all(t > 0 for t in inside)
    finally:
        pool.release(worker)
    record.add(benchmark, benchmark.group, "ours numba" if impl == "ours" else impl)
