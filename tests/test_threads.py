"""The numba backend owns the cores while it runs, and leaves the process as it found it.

No timing here: these tests check the mechanisms. While a numba-backend layer computes,
every BLAS library runs single-threaded (the kernels call BLAS from the backend's own
threads); afterwards each library has its own thread limit back. Importing and using the
engine changes no environment variable and no setting of Numba or PyTorch. The backend's
thread pool runs every task exactly once, whatever the thread count, and output arrays
are recycled only once nothing references them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import backend
from engine.backend import BackendUnavailableError, exclusive_cores, get_kernels

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nb():
    try:
        return get_kernels("numba")
    except BackendUnavailableError as exc:          # only a missing numba package skips
        pytest.skip(str(exc))


def _blas_limits():
    from threadpoolctl import threadpool_info

    return sorted((info["filepath"], info["num_threads"]) for info in threadpool_info()
                  if info["user_api"] == "blas")


# ----------------------------------------------------------------------------------
# Nothing process-wide changes
# ----------------------------------------------------------------------------------
_FRESH_PROCESS = r"""
import json, os, sys
import numpy as np
import numba
torch_threads = None
try:
    import torch                    # (torch itself sets KMP_DUPLICATE_LIB_OK on import)
    torch_threads = torch.get_num_threads()
except ImportError:
    pass
env_before = dict(os.environ)
threads_before = numba.config.NUMBA_NUM_THREADS
layer_before = numba.config.THREADING_LAYER
import models
from engine.kernels import numba as kernels
m = models.build_model("hybrid", input_size=2, hidden_size=8, d_state=4, backend="numba", seed=0)
x = np.random.default_rng(0).standard_normal((3, 5, 2))
m.backward(np.ones_like(m.forward(x)))
g = models.GRULayer(2, 4, backend="numba")
g.backward(np.ones((3, 5, 4)) + 0 * g.forward(x))
from numba.np.ufunc import parallel as numba_parallel
print(json.dumps(dict(
    env_changed=sorted(k for k in set(env_before) | set(os.environ) if env_before.get(k) != os.environ.get(k)),
    numba_layer_started=numba_parallel._is_initialized,
    numba_threads=[threads_before, numba.config.NUMBA_NUM_THREADS],
    threading_layer=[layer_before, numba.config.THREADING_LAYER],
    torch_threads=[torch_threads, torch.get_num_threads() if torch_threads is not None else None],
)))
"""


@pytest.mark.parametrize("omp_threads", [None, "1"], ids=["defaults", "OMP_NUM_THREADS=1"])
def test_import_and_use_change_nothing_process_wide(nb, omp_threads):
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if omp_threads is not None:
        env["OMP_NUM_THREADS"] = omp_threads
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("OMP_WAIT_POLICY", None)
    proc = subprocess.run([sys.executable, "-c", _FRESH_PROCESS], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["env_changed"] == [], res                # no OMP_WAIT_POLICY, nothing else
    # Numba's threading layer is never started: starting it sets the thread count of
    # whichever OpenMP runtime it binds to, which can be PyTorch's.
    assert res["numba_layer_started"] is False
    assert res["numba_threads"][0] == res["numba_threads"][1]
    assert res["threading_layer"][0] == res["threading_layer"][1]
    assert res["torch_threads"][0] == res["torch_threads"][1]


def test_blas_limits_restored_after_numba_layers(nb):
    models = pytest.importorskip("models")
    pytest.importorskip("scipy.linalg.cython_blas")     # the BLAS the kernels call, loaded first
    before = _blas_limits()
    assert before, "threadpoolctl sees no BLAS library"
    m = models.build_model("mamba", input_size=2, hidden_size=8, d_state=4, backend="numba", seed=0)
    x = np.random.default_rng(1).standard_normal((2, 6, 2))
    m.backward(np.ones_like(m.forward(x)))
    nb.linear_bwd(x[0], np.ones((3, 2)), np.ones((6, 3)))
    assert _blas_limits() == before


def test_blas_is_single_threaded_inside_and_restored_outside(nb):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):
        outside = _blas_limits()
        with exclusive_cores():
            inside = _blas_limits()
            with exclusive_cores():                     # nesting keeps the limit
                assert _blas_limits() == inside
            assert _blas_limits() == inside
        assert _blas_limits() == outside
    assert all(n == 1 for _, n in inside)
    assert any(n == 2 for _, n in outside)


def test_numba_modules_compute_inside_exclusive_cores(nb, monkeypatch):
    from engine.module import Module

    seen = []
    real = nb.rmsnorm_fwd

    def spy(*args, **kwargs):
        seen.append(backend._EXCLUSIVE.active)
        return real(*args, **kwargs)

    monkeypatch.setattr(nb, "rmsnorm_fwd", spy)

    class UserModel(Module):                            # a user's own subclass is covered too
        def __init__(self, **kw):
            super().__init__(**kw)
            from engine.layers import RMSNorm
            self.norm = self.add_child("norm", RMSNorm(3, **kw))

        def forward(self, x):
            seen.append(backend._EXCLUSIVE.active)
            return self.norm.forward(x)

    UserModel(backend="numba").forward(np.ones((2, 3)))
    assert seen == [True, True]
    assert not backend._EXCLUSIVE.active
    seen.clear()
    UserModel(backend="numpy").forward(np.ones((2, 3)))
    assert seen == [False]


# ----------------------------------------------------------------------------------
# The backend's thread pool
# ----------------------------------------------------------------------------------
def test_parallel_for_runs_every_task_once(nb):
    from numba import njit

    from engine.kernels.numba._threads import parallel_for

    @njit(nogil=True)
    def count(out, lo, hi):
        for i in range(lo, hi):
            out[i] += 1

    saved = backend.get_num_threads()
    try:
        for threads in (1, 2, 5):
            backend.set_num_threads(threads)
            assert backend.get_num_threads() == threads
            for ntask in (0, 1, 2, 7, 64, 1001):
                out = np.zeros(ntask, dtype=np.int64)
                parallel_for(count, ntask, (out,))
                assert np.all(out == 1), (threads, ntask)
        with pytest.raises(ValueError):
            backend.set_num_threads(0)
    finally:
        backend.set_num_threads(saved)


def test_parallel_for_reraises_a_task_error(nb):
    from engine.kernels.numba._threads import parallel_for

    def boom(lo, hi):
        if lo <= 5 < hi:
            raise ZeroDivisionError("task 5")

    with pytest.raises(ZeroDivisionError, match="task 5"):
        parallel_for(boom, 32, ())
    out = np.zeros(4)
    parallel_for(lambda o, lo, hi: o.__setitem__(slice(lo, hi), 1.0), 4, (out,))   # still usable
    assert np.all(out == 1.0)


# ----------------------------------------------------------------------------------
# Recycled outputs
# ----------------------------------------------------------------------------------
def test_outputs_are_recycled_only_when_unreferenced(nb):
    from engine.kernels.numba import _jit

    shape = (512, 128)                                   # above the pool's size threshold
    a = _jit.empty(shape, np.float64)
    b = _jit.empty(shape, np.float64)
    assert a is not b                                    # a is still referenced
    view = b[:10]
    del b
    c = _jit.empty(shape, np.float64)
    assert c is not view.base                            # a live view keeps its base in use
    base_id = id(view.base)
    del view
    d = _jit.empty(shape, np.float64)
    assert id(d) == base_id                              # nothing refers to it any more: reused
    small = _jit.empty((3, 3), np.float64)
    assert small is not _jit.empty((3, 3), np.float64)   # small arrays are plain np.empty
    assert a is not c and a is not d


def test_output_pool_is_bounded(nb, monkeypatch):
    from engine.kernels.numba import _jit

    pool = _jit._OutputPool()
    monkeypatch.setattr(pool, "MAX_BYTES", 4 << 20)    # room for about two 2 MiB arrays
    kept = [pool.empty((512, 512), np.float64) for _ in range(3)]      # in use: all distinct
    assert len({id(a) for a in kept}) == 3
    for rows in range(600, 640):                        # many shapes: old ones are forgotten
        pool.empty((rows, 512), np.float64)
    assert pool._bytes <= pool.MAX_BYTES + 640 * 512 * 8
    assert len(pool._buckets) <= 2
