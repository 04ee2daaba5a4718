"""Our layers against their PyTorch peers, every implementation in its own process.

For each pair (:data:`bench.harness.peers.PAIRS`) and dtype:

1. a reference: the peer, built with its library's defaults in the peer reference
   worker, gives its weights (under our names) and its outputs; our NumPy-backend layer
   loads those weights in the "ours" reference worker and gives its outputs; the two
   must agree (:func:`engine.parity.assert_parity`);
2. each timed implementation (the peer, our layer on numpy, on numba) is built in a
   fresh worker, answers with its outputs, and is checked against the other side of
   the reference before it is timed (:func:`check_layer_parity`);
3. the timed workers take turns (:func:`bench.harness.timing.time_workers`).

Step 2-3 are what ``bench/test_bench_torch.py`` does per implementation with
pytest-benchmark, and what :func:`run_layer_pairs` does for ``cli.py bench``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.harness.cases import numba_available, peer_available, with_peers
from bench.harness.peers import PAIRS, default_threads
from bench.harness.sizes import Size
from bench.harness.specs import command_for, layer_spec
from engine.parity import assert_parity

__all__ = ["PAIRS", "IMPLS", "impl_spec", "PairReference", "pair_reference", "reference_outputs", "check_layer_parity",
           "run_layer_pairs"]

#: The three timed implementations of a pair.
IMPLS = ("peer", "ours numpy", "ours numba")


def impl_spec(layer: str, impl: str, dtype, size: Size, threads: int | None = None) -> dict:
    """The worker spec of one implementation of a pair (``impl`` from :data:`IMPLS`)."""
    if impl == "peer":
        return layer_spec(layer, "peer", dtype, size, threads=threads or default_threads())
    return layer_spec(layer, "ours", dtype, size, backend=impl.split()[1])


@dataclass
class PairReference:
    """The peer's weights and both sides' outputs on them."""

    state: dict
    peer: tuple
    ours: tuple
    parity: float
    peer_info: dict


def pair_reference(pool, layer: str, dtype, size: Size, threads: int | None = None) -> PairReference:
    """Build the reference of a pair in the pool's reference workers (see the module docstring).

    Raises
    ------
    engine.parity.ParityError
        If our NumPy layer on the peer's weights does not compute what the peer does.
    bench.harness.protocol.WorkerError
        If a worker fails (``kind == "import"``: the peer's library is missing).
    """
    state, peer_out, ours_out, peer_info = reference_outputs(pool, layer, dtype, size, threads)
    err = assert_parity(ours_out, peer_out, PAIRS[layer].tolerance_dtype(dtype),
                        f"{layer} (numpy) vs {PAIRS[layer].peer} {np.dtype(dtype).name}")
    return PairReference(state, peer_out, ours_out, err, peer_info)


def reference_outputs(pool, layer: str, dtype, size: Size, threads: int | None = None) -> tuple:
    """The peer's weights (our names), the peer's outputs, our NumPy layer's outputs on those
    weights, and the peer worker's info, from the pool's two reference workers (unchecked)."""
    peer_w = pool.reference("peer")
    case = peer_w.setup(impl_spec(layer, "peer", dtype, size, threads))
    state = peer_w.state(case)
    peer_out = peer_w.outputs(case)
    ours_w = pool.reference("ours")
    ours_out = ours_w.outputs(ours_w.setup(impl_spec(layer, "ours numpy", dtype, size), state=state))
    return state, peer_out, ours_out, peer_w.cases[case]


def check_layer_parity(impl: str, got: tuple, ref: PairReference, dtype, layer: str) -> float:
    """A timed implementation's outputs against the other side of the reference."""
    expected = ref.ours if impl == "peer" else ref.peer
    other = "our numpy layer" if impl == "peer" else PAIRS[layer].peer
    return assert_parity(got, expected, PAIRS[layer].tolerance_dtype(dtype),
                         f"{layer}: {impl} vs {other} {np.dtype(dtype).name}")


def start_impl(pool, layer: str, impl: str, dtype, size: Size, ref: PairReference, threads=None):
    """A fresh worker with ``impl`` set up and checked; returns ``(worker, case, parity error)``."""
    side = "peer" if impl == "peer" else "ours"
    worker = pool.fresh(side, f"{layer} {impl} {np.dtype(dtype).name}")
    try:
        case = worker.setup(impl_spec(layer, impl, dtype, size, threads),
                            state=None if impl == "peer" else ref.state)
        err = check_layer_parity(impl, worker.outputs(case), ref, dtype, layer)
    except BaseException:
        pool.release(worker)
        raise
    return worker, case, err


def run_layer_pairs(report, pool, size: Size, dtypes, timer: dict, log) -> None:
    """The "torch" section of ``cli.py bench``: one row per pair and dtype in ``report.torch``."""
    from bench.harness.protocol import WorkerError
    from bench.harness.timing import time_workers, worst_other_load

    has_numba, why = numba_available()
    impls = IMPLS if has_numba else IMPLS[:2]
    threads = default_threads()
    for layer in with_peers(report, log, PAIRS, lambda name: peer_available(PAIRS[name])):
        pair = PAIRS[layer]
        for dtype in dtypes:
            dt = np.dtype(dtype).name
            try:
                ref = pair_reference(pool, layer, dtype, size, threads)
            except WorkerError as exc:
                if exc.kind != "import":
                    raise
                report.skipped.append(f"{pair.peer}: {str(exc).splitlines()[-1]}")
                break
            started, row = {}, {"layer": layer, "peer_name": pair.peer, "peer_impl": pair.label, "dtype": dt,
                                "size": f"b={size.batch}, L={size.seq_len}, d_model={size.d_model}, "
                                        f"d_state={size.d_state}",
                                "threads": threads, "parity": ref.parity,
                                "peer_default_threads": ref.peer_info.get("torch default threads"),
                                "commands": {}}
            try:
                for impl in impls:
                    worker, case, err = start_impl(pool, layer, impl, dtype, size, ref, threads)
                    started[impl] = (worker, case)
                    row["parity"] = max(row["parity"], err)
                    row["commands"][impl] = "python " + " ".join(command_for(impl_spec(layer, impl, dtype, size,
                                                                                       threads)))
                timings = time_workers(started, **timer)
            finally:
                for worker, _ in started.values():
                    pool.release(worker)
            row.update({impl.split()[-1]: timings[impl].median for impl in impls})
            row["other_load"] = worst_other_load(timings)
            row["numba"] = row.get("numba")
            row["speedup_vs_peer"] = row["peer"] / row["numba"] if row["numba"] else None
            row["numba_vs_numpy"] = row["numpy"] / row["numba"] if row["numba"] else None
            report.torch.append(row)
            log(f"{layer} {dt}: {pair.peer} {row['peer'] * 1e3:.2f} ms, numpy {row['numpy'] * 1e3:.2f} ms, "
                f"numba {row['numba'] * 1e3 if row['numba'] else float('nan'):.2f} ms")
    if not has_numba:
        report.skipped.append(why)
