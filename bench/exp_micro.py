"""The kernels' exp against NumPy's, per element on one core, and one exp-bound kernel.

Usage::

    python bench/exp_micro.py                      # float64 and float32, 65,536 to 10**7 values
    python bench/exp_micro.py --sizes 1e6 1e7 --rounds 30

Times, on one thread:

* ``np.exp(x, out=out)`` (NumPy's SIMD exp: SVML on AVX-512 for float64, its own for float32);
* the engine's vector exp (:func:`engine.kernels.numba._math.exp`) in a compiled loop
  ``out[i] = exp(x[i])`` built as the kernels build theirs (same jit options, 512-bit
  vectors);
* the fused selective scan forward (``selective_scan_gated_fwd``) at the hybrid train
  step's shape (b=64, L=60, d_inner=128, n=16: one exp per batch x step x channel x
  state), beside ``np.exp`` over as many values in cache-sized chunks, the way the
  bench's floor counts them.

Each figure is the minimum over rounds, and the alternatives are interleaved round by
round, so a machine busy with other work slows them alike and their ratio stays fair
(the absolute nanoseconds do not). Inputs are uniform on [-20, 5]: both exps are
branch-free over that range, so the values do not change the time. The largest sizes
(160 MB of float64 in and out) also measure memory bandwidth; the smallest stays in
the L2 cache.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from numba import njit  # noqa: E402

from engine.kernels.numba._jit import JIT_SCAN  # noqa: E402
from engine.kernels.numba._math import exp, wide_vectors  # noqa: E402

#: Values per np.exp call in the scan's floor (as the bench's floor streams its exps).
CHUNK = 2 ** 18
SCAN_SHAPE = (64, 60, 128, 16)          # b, L, d_inner, d_state of the hybrid train step


@njit(**JIT_SCAN)
def _exp_into(x, out):
    wide_vectors()
    for i in range(x.size):
        out[i] = exp(x[i])


def _best(fn, calls):
    best = float("inf")
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _race(fns, rounds, calls):
    """``{name: min seconds}`` over ``rounds`` rounds of ``calls`` calls each, interleaved."""
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], _best(fn, calls))
    return best


def exp_rows(dtypes, sizes, rounds):
    rows = []
    for dtype in dtypes:
        for n in sizes:
            x = np.random.default_rng(0).uniform(-20.0, 5.0, n).astype(dtype)
            out_np = np.empty_like(x)
            out_ours = np.empty_like(x)
            _exp_into(x, out_ours)                       # compile / load, fault the pages in
            np.exp(x, out=out_np)
            calls = max(1, int(2e6 // n))                # about 2 ms of work per round at least
            t = _race({"np": lambda: np.exp(x, out=out_np),
                       "ours": lambda: _exp_into(x, out_ours)}, rounds, calls)
            rows.append((np.dtype(dtype).name, n, t["np"] / n * 1e9, t["ours"] / n * 1e9))
    return rows


def scan_rows(dtypes, rounds):
    from engine.backend import get_kernels, set_num_threads

    set_num_threads(1)
    nb = get_kernels("numba")
    b, L, d, n = SCAN_SHAPE
    rows = []
    for dtype in dtypes:
        rng = np.random.default_rng(0)
        u, dt, z = (rng.standard_normal((b, L, d)).astype(dtype) for _ in range(3))
        dt -= 3                                          # softplus(dt) ~ 0.05, as at init
        A = -np.tile(np.arange(1, n + 1, dtype=dtype), (d, 1))
        B, C = (rng.standard_normal((b, L, n)).astype(dtype) for _ in range(2))
        D = np.ones(d, dtype)
        xe = -rng.uniform(1e-3, 1.6, CHUNK).astype(dtype)
        oe = np.empty_like(xe)
        reps = b * L * d * n // CHUNK

        def floor():
            for _ in range(reps):
                np.exp(xe, out=oe)

        def scan():
            nb.selective_scan_gated_fwd(u, dt, A, B, C, D, z)

        scan()
        t = _race({"floor": floor, "scan": scan}, rounds, 2)
        count = reps * CHUNK
        exps = b * L * d * n
        rows.append((np.dtype(dtype).name, exps, t["floor"] / count * 1e9, t["scan"] / exps * 1e9))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[2 ** 16, 1e6, 3e6, 1e7])
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"])
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds; the minimum is kept")
    ap.add_argument("--no-scan", action="store_true", help="skip the selective scan forward")
    args = ap.parse_args(argv)
    dtypes = [np.dtype(d).type for d in args.dtypes]
    sizes = [int(s) for s in args.sizes]

    import numba
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {cpu}; numpy {np.__version__}, numba {numba.__version__}; one thread; "
          f"load average {load:.1f} on {os.cpu_count()} CPUs; min of {args.rounds} interleaved rounds")
    print()
    print("| dtype | values | np.exp ns/value | ours ns/value | ours / np.exp |")
    print("|---|---:|---:|---:|---:|")
    for dtype, n, t_np, t_ours in exp_rows(dtypes, sizes, args.rounds):
        print(f"| {dtype} | {n:,} | {t_np:.3f} | {t_ours:.3f} | {t_ours / t_np:.2f} |")
    if not args.no_scan:
        b, L, d, n = SCAN_SHAPE
        print()
        print(f"selective_scan_gated_fwd, b={b} L={L} d_inner={d} n={n} (one exp per value), one thread:")
        print()
        print("| dtype | exps | np.exp floor ns/exp | scan fwd ns/exp | scan / floor |")
        print("|---|---:|---:|---:|---:|")
        for dtype, count, t_floor, t_scan in scan_rows(dtypes, args.rounds):
            print(f"| {dtype} | {count:,} | {t_floor:.3f} | {t_scan:.3f} | {t_scan / t_floor:.2f} |")


if __name__ == "__main__":
    main()
