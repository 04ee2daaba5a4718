"""Train steps on both backends and their machine floor, each in a process of its own.

Forward + MSE backward + Adam step of the four forecasters, one feature, at issue 9's
size (batch 64, seq_len 60, hidden 64, d_state 16) in float64 and float32 and at the
size ``cli.py train`` runs by default (hidden 16) in float64 (tiny in a smoke run). One
group per forecaster, dtype and size holds:

* ``numpy`` and ``numba``: the step in a fresh worker, checked first against the other
  backend's reference (prediction and every parameter gradient, same seed);
* ``floor``: the step's machine floor (:mod:`bench.harness.floor`): every matrix
  product of the step, read from the model, on all cores, then the exponentials it must
  evaluate with the engine's exp on all cores.
"""
from __future__ import annotations

import pytest

from bench import harness as B


def _reference(session_cache, pool, model, dtype, size):
    key = ("train", model, dtype.name, size)
    if key not in session_cache:
        session_cache[key] = B.train_reference(pool, model, dtype, size)
    return session_cache[key]


@pytest.mark.parametrize("impl", ["numpy", "numba", "floor"])
def test_train_step(benchmark, record, pool, session_cache, train_case, impl):
    """One optimisation step (or its floor) in its own worker, after a parity check."""
    size, model, dtype = train_case
    if impl != "numpy":     # the floor's exponentials use the engine's compiled exp
        ok, why = B.numba_available()
        if not ok:
            pytest.skip(why)
    group = f"train {model} {dtype.name} {size.name}"
    benchmark.group = group
    benchmark.extra_info.update({"model": model, "impl": impl, "dtype": dtype.name, "size": size.train_label()})
    if impl == "floor":
        worker, cases = B.start_floor(pool, model, dtype, size)
        try:
            account = worker.cases[cases["gemm"]]["account"]
            assert account["gemms"] > 0 and account["exps"] > 0
            benchmark.extra_info["account"] = account
            B.benchmark_worker(benchmark, pool, worker, cases.values())
        finally:
            pool.release(worker)
    else:
        ref = _reference(session_cache, pool, model, dtype, size)
        worker, case, err = B.start_step(pool, model, impl, dtype, size, ref)
        try:
            benchmark.extra_info.update({"parity_rel_err": err, "worker": worker.cases[case],
                                         "reproduce": "python " + " ".join(B.command_for(
                                             B.train_spec(model, impl, dtype, size)))})
            B.benchmark_worker(benchmark, pool, worker, case)
        finally:
            pool.release(worker)
    record.add(benchmark, group, impl)
