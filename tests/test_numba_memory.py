"""Memory of the numba Mamba path grows like its inputs, not like inputs x d_state.

A MambaBlock with the numba backend runs forward + backward on one long series (batch
1, seq_len 8192, d_model 64 so d_inner 128, d_state 128, float64). Holding every hidden
state would take a (1, 8192, 128, 128) float64 array, 1 GiB; the compiled scan keeps
only checkpoints and per-task buffers, so the process's peak resident memory may rise
by less than a quarter of that.

Each measurement runs in a fresh interpreter so earlier tests do not pollute the peak.
There, the kernels are compiled (or loaded from the cache) on tiny shapes first, the
peak is reset (``/proc/self/clear_refs``; without it the earlier peak is the baseline),
and the rise of the peak over the resident size before the big call is reported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.backend import BackendUnavailableError, get_kernels

ROOT = Path(__file__).resolve().parents[1]
FULL_STATES_BYTES = 1 * 8192 * 128 * 128 * 8            # 1 GiB
LIMIT = FULL_STATES_BYTES // 4                           # 256 MiB

_HARNESS = r"""
import json, resource, sys
import numpy as np

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None

def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False

def peak():
    hwm = status("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

mode = sys.argv[1]
rng = np.random.default_rng(0)
if mode == "mamba":
    from models.mamba import MambaBlock
    block = MambaBlock(64, d_state=128, backend="numba", dtype=np.float64, seed=0)
    small = rng.standard_normal((1, 16, 64))
    block.forward(small)
    block.backward(np.ones_like(small))
    block.zero_grad()
    def work():
        x = rng.standard_normal((1, 8192, 64))
        out = block.forward(x)
        dx = block.backward(np.ones_like(out))
        assert np.isfinite(dx).all() and dx.shape == x.shape
elif mode == "kernels":                 # the scan kernels alone, same sizes
    from engine.kernels import numba as K
    K.warmup((np.float64,))
    b, L, d, n = 1, 8192, 128, 128
    u, dy = rng.standard_normal((b, L, d)), rng.standard_normal((b, L, d))
    delta = np.log1p(np.exp(rng.standard_normal((b, L, d)) - 2))
    A = -np.exp(0.1 * rng.standard_normal((d, n)))
    B, C, D = rng.standard_normal((b, L, n)), rng.standard_normal((b, L, n)), np.ones(d)
    def work():
        y = K.selective_scan_fwd(u, delta, A, B, C, D)
        grads = K.selective_scan_bwd(u, delta, A, B, C, D, dy)
        assert all(np.isfinite(g).all() for g in grads) and np.isfinite(y).all()
else:                                   # control: a known 300 MiB allocation must show
    def work():
        a = np.ones(300 * 2 ** 20 // 8)
        assert a.sum() > 0

reset_ok = reset_peak()
before_rss = status("VmRSS")
before_peak = peak()
work()
after_peak = peak()
base = before_rss if reset_ok and before_rss is not None else before_peak
print(json.dumps(dict(reset=reset_ok, before_rss=before_rss, before_peak=before_peak,
                      after_peak=after_peak, increase=after_peak - base)))
"""


def measure(mode: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", _HARNESS, mode], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def numba_ok():
    try:
        kernels = get_kernels("numba")
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))
    # Fill the on-disk cache here, so the child processes load rather than compile.
    kernels.warmup((np.float64,))


def test_measurement_sees_a_large_allocation():
    # The harness itself must be able to fail: 300 MiB of touched memory exceeds the limit.
    res = measure("control")
    assert res["increase"] > LIMIT, res


def test_numba_scan_kernels_memory_is_linear(numba_ok):
    # The kernels alone: their outputs (y, du, ddelta, dB, dC: 40 MiB) plus checkpoints
    # (L / tb states, 8 MiB here) and per-chunk buffers; nothing of size L x d x n.
    res = measure("kernels")
    assert res["increase"] < 96 * 2 ** 20, res


def test_numba_mamba_block_memory_is_linear(numba_ok):
    res = measure("mamba")
    mib = res["increase"] / 2 ** 20
    assert res["increase"] < LIMIT, (
        f"peak memory rose by {mib:.0f} MiB (limit {LIMIT / 2 ** 20:.0f} MiB): {res}")
