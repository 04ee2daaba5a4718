"""Long sequences: our layers against their PyTorch peers from L = 256 to 16,384 (issue 19 item 3).

For each pair (:data:`bench.harness.peers.PAIRS`), length (:func:`bench.harness.sizes.long_seq_sizes`:
b=4, d_model 64, d_state 16) and dtype, forward + backward as in :mod:`bench.harness.layers`:

1. the reference: the peer in the peer reference worker, our NumPy layer on its weights in
   the "ours" one; the two must agree (:func:`long_reference`);
2. our numba layer and the peer, each in a fresh worker, are checked against the reference,
   then each makes one step whose memory is measured
   (:func:`bench.harness.worker.step_peak_memory`, from Linux's ``VmHWM``): what the step
   adds to what the warm process holds, and the process's whole peak during the step
   (weights, inputs, the forward's caches, the kernels' output pool and the step's
   temporaries; the imports are the same in every worker of one side, so they cancel in
   the differences between lengths that ``long_seq_memory`` judges), beside the size the
   design avoids: one ``(b, L, d_inner, d_state)`` array for MambaBlock
   (:func:`design_avoided_bytes`);
3. the two take turns (:func:`bench.harness.timing.time_workers`).

Our NumPy layer is the reference only, never timed: at L = 16,384 its Python time loop
takes seconds per step and its selective scan stores the very ``(b, L, d_inner, d_state)``
array (1 GiB in float64) the numba backward recomputes instead.

Rounds. A pair whose slowest step exceeds :data:`LONG_STEP` seconds (mambapy needs ~7 s per
step at L = 16,384) is timed in :data:`TIMERS` ``["long"]``: 3 interleaved rounds of one
step each, without a warm-up step before each (the step is itself a loop of thousands of
time steps, so its first microseconds wake the thread pools for the rest), so its figures
are medians of 3 samples. Faster pairs get ``TIMERS["short"]``: bursts of about 0.2 s in
3 to 8 rounds. The whole section takes about 8-10 minutes at full shapes on 2 cores.

Parity at long L. minGRU-pytorch's log-space scan (a cumulative sum of log gates, then a
``logcumsumexp``) rounds with an error that grows with L. Against our float64 layer on the
same weights (measured at L = 256 / 1,024 / 4,096 / 16,384, worst output: the gate weight
gradient) it is off by 7.9e-13 / 6.7e-12 / 7.2e-11 / 1.4e-9 in float64 and by 2.6e-4 /
2.8e-3 / 3.7e-2 / 0.41 in float32, while our float32 layer stays at 5e-7 at every length.
For such a pair (:data:`PEER_ROUNDING`) the gate is: the float64 pair agrees at the usual
tolerance at the section's shortest length (the function is the same); at each row our
numba layer must agree with our NumPy layer, the timed peer with the reference peer, and the
peer's error against our NumPy layer is reported (``peer_error``), not required.
"""
from __future__ import annotations

import numpy as np

from bench.harness.cases import numba_available, peer_available, with_peers
from bench.harness.layers import PairReference, impl_spec, pair_reference, reference_outputs
from bench.harness.peers import PAIRS, default_threads
from bench.harness.sizes import Size
from bench.harness.specs import command_for
from engine.parity import ParityError, assert_parity

__all__ = ["TIMED", "LINEAR_BASE", "LONG_STEP", "TIMERS", "QUICK_TIMERS", "PEER_ROUNDING", "MEMORY_GROWTH_BAR",
           "design_avoided_bytes", "long_reference", "start_long", "long_command", "run_long_sequences",
           "long_seq_evidence"]

#: What is timed: the peer and our numba layer (our NumPy layer is the reference).
TIMED = ("peer", "ours numba")
#: Cost per step and memory per step at the longest length are compared with this length's.
LINEAR_BASE = 1024
#: A pair whose slowest step takes longer (seconds) is timed with ``TIMERS["long"]``.
LONG_STEP = 1.0
#: ``time_workers`` settings of a full run (a smoke run uses the harness's smoke timer).
TIMERS = {
    "short": dict(budget=3.0, min_rounds=3, max_rounds=8, min_burst_time=0.2, max_burst=50),
    "long": dict(probe=False, min_rounds=3, warmup=0),
}
#: ``cli.py bench --quick``: 2 rounds.
QUICK_TIMERS = {
    "short": dict(budget=1.0, min_rounds=2, max_rounds=3, min_burst_time=0.1, max_burst=20),
    "long": dict(probe=False, min_rounds=2, warmup=0),
}
#: Peers whose own rounding grows with L (see the module docstring): why, for the report.
PEER_ROUNDING = {
    "minGRU-pytorch": "its log-space scan (cumulative sum of log gates, logcumsumexp) loses precision as L "
                      "grows; ours is checked against our NumPy layer, the peer's error is reported",
}
#: From this length on, a reproducer command times 5 steps after 1 warm-up (not 30 after 2).
_FEW_STEPS_FROM = 4096


def design_avoided_bytes(layer: str, size: Size, dtype) -> int | None:
    """Bytes of the array the Numba selective-scan backward does not store: one
    ``(b, L, d_inner, d_state)`` array of ``dtype`` for MambaBlock; None for the other layers."""
    if layer != "MambaBlock":
        return None
    return size.batch * size.seq_len * size.d_inner * size.d_state * np.dtype(dtype).itemsize


def long_reference(pool, layer: str, dtype, size: Size, threads: int | None = None,
                   lenient: bool = False) -> tuple[PairReference, str]:
    """The reference of a pair at one length, and what the timed implementations are checked against.

    Parameters
    ----------
    lenient : bool
        For a pair of :data:`PEER_ROUNDING` whose function was already checked at the
        usual tolerance: a disagreement between the peer and our NumPy layer is kept in
        ``PairReference.parity`` instead of raised.

    Returns
    -------
    tuple of (PairReference, str)
        The reference and ``"peer"`` (the usual gate, as :mod:`bench.harness.layers`) or
        ``"ours numpy"`` (lenient, and the peer disagreed).

    Raises
    ------
    engine.parity.ParityError
        If our NumPy layer does not compute what the peer does (and ``lenient`` does not apply).
    """
    if not lenient:
        return pair_reference(pool, layer, dtype, size, threads), "peer"
    state, peer_out, ours_out, peer_info = reference_outputs(pool, layer, dtype, size, threads)
    tol = PAIRS[layer].tolerance_dtype(dtype)
    what = f"{layer} (numpy) vs {PAIRS[layer].peer} {np.dtype(dtype).name} at L={size.seq_len}"
    try:
        err, against = assert_parity(ours_out, peer_out, tol, what), "peer"
    except ParityError:
        err, against = max(_rel_errors(ours_out, peer_out)), "ours numpy"
    return PairReference(state, peer_out, ours_out, err, peer_info), against


def _rel_errors(got, expected) -> list[float]:
    from engine.parity import rel_error

    return [rel_error(g, e) for g, e in zip(got, expected)]


def start_long(pool, layer: str, impl: str, dtype, size: Size, ref: PairReference, against: str,
               threads: int | None = None):
    """A fresh worker with ``impl`` set up and checked; returns ``(worker, case, parity error)``.

    ``against == "peer"``: as :func:`bench.harness.layers.start_impl` (each side against the
    other). ``"ours numpy"``: our layer against our NumPy layer, the peer against the
    reference peer (the same library on the same seed), both at the usual tolerance.
    """
    side = "peer" if impl == "peer" else "ours"
    worker = pool.fresh(side, f"{layer} {impl} {np.dtype(dtype).name} L={size.seq_len}")
    try:
        case = worker.setup(impl_spec(layer, impl, dtype, size, threads),
                            state=None if impl == "peer" else ref.state)
        got = worker.outputs(case)
        if against == "peer":
            expected, other = (ref.ours, "our numpy layer") if impl == "peer" else (ref.peer, PAIRS[layer].peer)
        else:
            expected, other = (ref.peer, "the reference peer") if impl == "peer" else (ref.ours, "our numpy layer")
        err = assert_parity(got, expected, PAIRS[layer].tolerance_dtype(dtype),
                            f"{layer} L={size.seq_len}: {impl} vs {other} {np.dtype(dtype).name}")
    except BaseException:
        pool.release(worker)
        raise
    return worker, case, err


def long_command(layer: str, impl: str, dtype, size: Size, threads: int | None = None) -> str:
    """The stand-alone command of one row's implementation (fewer steps at long lengths)."""
    argv = command_for(impl_spec(layer, impl, dtype, size, threads))
    if size.seq_len >= _FEW_STEPS_FROM:
        argv += ["--warmup", "1", "--steps", "5"]
    return "python " + " ".join(argv)


def run_long_sequences(report, pool, sizes, dtypes, smoke: bool, log, timers: dict | None = None) -> None:
    """The "longseq" section of ``cli.py bench``: one row per pair, length and dtype in ``report.longseq``.

    Parameters
    ----------
    sizes : sequence of Size
        Shortest first (:func:`bench.harness.sizes.long_seq_sizes`).
    smoke : bool
        Tiny shapes, one sample each (``timers`` then defaults to the smoke timer).
    timers : dict, optional
        ``{"short": ..., "long": ...}`` keyword arguments of
        :func:`bench.harness.timing.time_workers` (default :data:`TIMERS`).
    """
    from bench.harness.protocol import WorkerError
    from bench.harness.timing import time_workers, worst_other_load

    has_numba, why = numba_available()
    if not has_numba:
        report.skipped.append("long sequences: " + why)
        return
    timers = timers or ({"short": dict(min_rounds=1, probe=False), "long": dict(min_rounds=1, probe=False)}
                        if smoke else TIMERS)
    threads = default_threads()
    # float64 first: a lenient pair's function is checked in float64 at the shortest length
    dtypes = sorted((np.dtype(d) for d in dtypes), key=lambda d: d != np.float64)
    for layer in with_peers(report, log, PAIRS, lambda name: peer_available(PAIRS[name])):
        pair = PAIRS[layer]
        function_checked = False
        try:
            for size in sizes:
                for dtype in dtypes:
                    lenient = pair.peer in PEER_ROUNDING and function_checked
                    ref, against = long_reference(pool, layer, dtype, size, threads, lenient=lenient)
                    if dtype == np.float64 and size is sizes[0] and against == "peer":
                        function_checked = True
                    report.longseq.append(_measure_row(pool, layer, dtype, size, ref, against, threads,
                                                       smoke, timers, time_workers, worst_other_load))
                    log(_line(report.longseq[-1]))
        except WorkerError as exc:
            if exc.kind != "import":
                raise
            report.skipped.append(f"{pair.peer}: {str(exc).splitlines()[-1]}")


def _measure_row(pool, layer, dtype, size, ref, against, threads, smoke, timers, time_workers,
                 worst_other_load) -> dict:
    pair = PAIRS[layer]
    steps = size.batch * size.seq_len
    row = {"layer": layer, "peer_name": pair.peer, "peer_impl": pair.label, "dtype": np.dtype(dtype).name,
           "batch": size.batch, "seq_len": size.seq_len, "d_model": size.d_model, "d_state": size.d_state,
           "threads": threads, "checked_against": against, "peer_error": ref.parity,
           "parity": ref.parity if against == "peer" else 0.0,
           "note": PEER_ROUNDING[pair.peer] if against != "peer" else None,
           "design_avoided_bytes": design_avoided_bytes(layer, size, dtype), "commands": {}}
    started, memory, first, peaks = {}, {}, {}, {}
    try:
        for impl in TIMED:
            worker, case, err = start_long(pool, layer, impl, dtype, size, ref, against, threads)
            started[impl] = (worker, case)
            row["parity"] = max(row["parity"], err)
            row["commands"][impl] = long_command(layer, impl, dtype, size, threads)
            # in the same fresh worker, after the parity step: what one more step needs
            memory[impl], first[impl], peaks[impl] = worker.memory(case, with_peak=True)
        timer = timers["long" if max(first.values()) > LONG_STEP else "short"]
        timings = time_workers(started, **timer)
    finally:
        for worker, _ in started.values():
            pool.release(worker)
    ours, peer = timings["ours numba"], timings["peer"]
    row.update({"numba": ours.median, "peer": peer.median, "samples": {"numba": ours.samples, "peer": peer.samples},
                "speedup_vs_peer": peer.median / ours.median,
                "numba_per_step_us": ours.median / size.seq_len * 1e6,
                "mem_numba": memory["ours numba"], "mem_peer": memory["peer"],
                "rss_numba": peaks["ours numba"], "rss_peer": peaks["peer"],
                "mem_numba_per_step": None if memory["ours numba"] is None else memory["ours numba"] / steps,
                "mem_peer_per_step": None if memory["peer"] is None else memory["peer"] / steps,
                "other_load": worst_other_load(timings)})
    return row


def _line(r) -> str:
    mib = (lambda b: "n/a" if b is None else f"{b / 2 ** 20:.1f} MiB")
    return (f"{r['layer']} {r['dtype']} L={r['seq_len']}: {r['peer_name']} {r['peer'] * 1e3:.1f} ms, "
            f"numba {r['numba'] * 1e3:.2f} ms ({r['speedup_vs_peer']:.1f}x, {r['numba_per_step_us']:.2f} us/step); "
            f"memory numba {mib(r['mem_numba'])}, peer {mib(r['mem_peer'])}")


# ----------------------------------------------------------------------------------
# What the targets of bench.harness.targets judge
# ----------------------------------------------------------------------------------
#: How much faster than linearly the footprint may grow (ours): the whole-process peak's growth
#: per added step of L over the upper lengths, at most this many times its growth over the lower
#: ones (``long_seq_memory``; its other bar is in :data:`bench.harness.targets.TARGETS`).
MEMORY_GROWTH_BAR = 1.3


def _ends(rows) -> list[tuple[dict, dict]]:
    """Per layer and dtype, the row at :data:`LINEAR_BASE` and the longest row (if longer)."""
    out = []
    for key in dict.fromkeys((r["layer"], r["dtype"]) for r in rows):
        mine = [r for r in rows if (r["layer"], r["dtype"]) == key]
        base = [r for r in mine if r["seq_len"] == LINEAR_BASE]
        top = max(mine, key=lambda r: r["seq_len"])
        if base and top["seq_len"] > LINEAR_BASE:
            out.append((base[0], top))
    return out


def _mib(b) -> str:
    return f"{b / 2 ** 20:.0f} MiB" if b >= 2 ** 24 else f"{b / 2 ** 20:.1f} MiB"


def long_seq_evidence(report) -> dict:
    """What the long-sequence targets are judged on, from ``report.longseq``.

    Returns
    -------
    dict
        Target id to ``(measured text, values, rows)``, as the ``judge`` of
        :func:`bench.harness.targets.evaluate_targets` takes them:

        * ``long_seq_linear``: per layer and dtype, ours' time per step at the longest
          length over that at :data:`LINEAR_BASE` (lower is better);
        * ``long_seq_vs_peer``: every row's speed-up over the peer;
        * ``long_seq_memory``: per layer and dtype, from the whole-process peak during a
          step (``rss_numba``) at :data:`LINEAR_BASE`, the next length and the longest: the
          footprint's growth per added step from the middle to the longest length over its
          growth from the base to the middle (1 when linear), divided by
          :data:`MEMORY_GROWTH_BAR`; and for MambaBlock, the footprint's growth from the base
          to the longest length over the growth of the ``(b, L, d_inner, d_state)`` array the
          design avoids (what storing the states would add on top): the larger of the two,
          at most 1 (lower is better).
    """
    rows = [r for r in getattr(report, "longseq", []) if r.get("numba")]
    ends = _ends(rows)
    lin = [(b, t, t["numba_per_step_us"] / b["numba_per_step_us"]) for b, t in ends]
    linear = ("; ".join(f"{t['layer']} {t['dtype']}: {_ratio(v)} ({b['numba_per_step_us']:.2f} us/step at "
                        f"L={b['seq_len']:,}, {t['numba_per_step_us']:.2f} at {t['seq_len']:,})" for b, t, v in lin),
              [v for _, _, v in lin], [r for b, t, _ in lin for r in (b, t)])
    peer = [r for r in rows if r.get("speedup_vs_peer")]
    parts = []
    for layer in dict.fromkeys(r["layer"] for r in peer):
        mine = [r for r in peer if r["layer"] == layer]
        worst = min(mine, key=lambda r: r["speedup_vs_peer"])
        parts.append(f"{layer} vs {worst['peer_name']}: worst {_ratio(worst['speedup_vs_peer'])} ({worst['dtype']} "
                     f"L={worst['seq_len']:,}), best {_ratio(max(r['speedup_vs_peer'] for r in mine))}")
    vs_peer = ("; ".join(parts), [r["speedup_vs_peer"] for r in peer], peer)
    mem_parts, mem_values, mem_rows = [], [], []
    for b, t in ends:
        mine = [r for r in rows if (r["layer"], r["dtype"]) == (b["layer"], b["dtype"])
                and b["seq_len"] < r["seq_len"] < t["seq_len"]]
        if not mine:
            continue
        m = min(mine, key=lambda r: r["seq_len"])
        if any(r.get("rss_numba") is None for r in (b, m, t)):
            continue
        low = (m["rss_numba"] - b["rss_numba"]) / (m["seq_len"] - b["seq_len"])
        high = (t["rss_numba"] - m["rss_numba"]) / (t["seq_len"] - m["seq_len"])
        growth = high / low if low > 0 else float("inf")
        score = growth / MEMORY_GROWTH_BAR
        grown = t["rss_numba"] - b["rss_numba"]
        itemsize = np.dtype(t["dtype"]).itemsize
        text = (f"{t['layer']} {t['dtype']}: peak {_mib(t['rss_numba'])} at L={t['seq_len']:,}, "
                f"{_mib(grown)} more than at {b['seq_len']:,} "
                f"({grown / ((t['seq_len'] - b['seq_len']) * t['batch'] * itemsize):,.0f} values per added "
                f"(b*L) step); growth per step {_ratio(growth)} that at {b['seq_len']:,}-{m['seq_len']:,}")
        if t.get("design_avoided_bytes") and b.get("design_avoided_bytes"):
            avoided = t["design_avoided_bytes"] - b["design_avoided_bytes"]
            share = grown / avoided
            score = max(score, share)
            text += (f"; {share:.2f} of what storing the (b, L, d_inner, d_state) states would add "
                     f"({_mib(avoided)})")
        mem_parts.append(text)
        mem_values.append(score)
        mem_rows += [b, m, t]
    memory = ("; ".join(mem_parts), mem_values, mem_rows)
    return {"long_seq_linear": linear, "long_seq_vs_peer": vs_peer, "long_seq_memory": memory}


def _ratio(v) -> str:
    return f"{v:.1f}x" if v >= 10 else f"{v:.2f}x"
