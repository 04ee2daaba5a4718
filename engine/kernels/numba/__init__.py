"""Compiled kernels: the time loops of :mod:`engine.kernels.numpy_ref` in Numba.

Every name of :data:`engine.kernels.api.API` is defined here with the signature, output
shapes and dtypes of its twin in :mod:`engine.kernels.numpy_ref`, which stays the
definition of correct (the parity tests hold the two together). Each public function
only validates and prepares its inputs (consistent shapes, one float dtype,
C-contiguous) and hands them to a private ``_*_kernel`` compiled with
``njit(parallel=True, cache=True)``.

The kernels live by family, each file mirroring its part of the reference:
``linear`` (the layers' matrix products), ``norm`` (RMSNorm), ``scan`` (selective scan), ``mingru``, ``gru``,
``conv`` (causal depthwise convolution); ``_jit`` holds the jit options, input checks and task split they share
(and explains why results do not depend on the thread count), ``_math`` the
vectorisable exp, log1p, tanh, sigmoid and softplus.
"""
from __future__ import annotations

import time

import numpy as np

from engine.kernels.api import API, KERNELS
from engine.kernels.numba._cache import refresh_stale_cache as _refresh_stale_cache

# Before any kernel loads from Numba's disk cache: drop it if a helper module changed.
_refresh_stale_cache()

from engine.kernels.numba._jit import FLOATS  # noqa: E402
from engine.kernels.numba.conv import (causal_conv1d_bwd, causal_conv1d_fwd, causal_conv1d_silu_bwd,
                                       causal_conv1d_silu_fwd)
from engine.kernels.numba.gru import gru_bwd, gru_fwd
from engine.kernels.numba.linear import linear_bwd, linear_fwd
from engine.kernels.numba.norm import rmsnorm_bwd, rmsnorm_fwd
from engine.kernels.numba.mingru import mingru_bwd, mingru_fwd, mingru_logits_bwd, mingru_logits_fwd
from engine.kernels.numba.scan import (selective_scan_bwd, selective_scan_fwd, selective_scan_gated_bwd,
                                       selective_scan_gated_fwd)

__all__ = list(API)


def _warmup_calls(dt):
    """Tiny calls, by kernel name (a backward also runs its forward), in dtype ``dt``."""
    rng = np.random.default_rng(0)
    b, L, d, n, H, k = 2, 3, 3, 2, 2, 2

    def r(*shape):
        return rng.standard_normal(shape).astype(dt)

    u, delta, dy = r(b, L, d), np.abs(r(b, L, d)), r(b, L, d)
    A, B, C, D = -np.abs(r(d, n)), r(b, L, n), r(b, L, n), r(d)
    z, ht, dh = r(b, L, H), r(b, L, H), r(b, L, H)
    zh = np.concatenate([z, ht], axis=-1)
    gi, W_hh, b_hh = r(b, L, 3 * H), r(3 * H, H), r(3 * H)
    x2, W2, b2 = r(b * L, d), r(H, d), r(H)
    w, bias = r(d, k), r(d)
    return {
        "linear_fwd": lambda: linear_fwd(x2, W2, b2),
        "linear_bwd": lambda: linear_bwd(x2, W2, r(b * L, H)),
        "rmsnorm_fwd": lambda: rmsnorm_fwd(x2, D, 1e-5),
        "rmsnorm_bwd": lambda: rmsnorm_bwd(x2, D, np.ones(b * L, dtype=dt), x2),
        "selective_scan_fwd": lambda: selective_scan_fwd(u, delta, A, B, C, D),
        "selective_scan_bwd": lambda: selective_scan_bwd(u, delta, A, B, C, D, dy),
        "selective_scan_gated_fwd": lambda: selective_scan_gated_fwd(u, delta, A, B, C, D, dy),
        "selective_scan_gated_bwd": lambda: selective_scan_gated_bwd(u, delta, A, B, C, D, dy, dy),
        "mingru_fwd": lambda: mingru_fwd(z, ht),
        "mingru_bwd": lambda: mingru_bwd(z, ht, z, dh),
        "mingru_logits_fwd": lambda: mingru_logits_fwd(zh),
        "mingru_logits_bwd": lambda: mingru_logits_bwd(zh, z, dh),
        "gru_fwd": lambda: gru_fwd(gi, W_hh, b_hh),
        "gru_bwd": lambda: gru_bwd(gi, W_hh, b_hh, *gru_fwd(gi, W_hh, b_hh), dh),
        "causal_conv1d_fwd": lambda: causal_conv1d_fwd(u, w, bias),
        "causal_conv1d_bwd": lambda: causal_conv1d_bwd(u, w, dy),
        "causal_conv1d_silu_fwd": lambda: causal_conv1d_silu_fwd(u, w, bias),
        "causal_conv1d_silu_bwd": lambda: causal_conv1d_silu_bwd(u, w, bias, dy),
    }


def warmup(dtypes=(np.float64, np.float32), kernels=None):
    """Compile (or load from the on-disk cache) kernels ahead of their first use.

    Runs each chosen kernel once on tiny inputs. Nothing needs this: a kernel compiles
    for a dtype on its first call anyway, and only then. It is for callers that want the
    wait up front (so that later timings measure run time only). To compile exactly
    what a model uses, call the model's ``warm_up()`` instead. With a warm cache
    (``cache=True``; directory ``NUMBA_CACHE_DIR`` if set) loading takes a fraction of a
    second; a cold compile of every kernel takes tens of seconds.

    Parameters
    ----------
    dtypes : iterable of dtype
        float32 and/or float64.
    kernels : iterable of str, optional
        Names from :data:`engine.kernels.api.KERNELS`; all of them by default.

    Returns
    -------
    float
        Seconds spent.
    """
    start = time.perf_counter()
    names = KERNELS if kernels is None else tuple(kernels)
    unknown = sorted(set(names) - set(KERNELS))
    if unknown:
        raise ValueError(f"unknown kernels {unknown}; choose from {', '.join(KERNELS)}")
    for dt in dtypes:
        dt = np.dtype(dt)
        if dt not in FLOATS:
            raise ValueError(f"unsupported dtype {dt}; use float64 or float32")
        calls = _warmup_calls(dt)
        for name in names:
            calls[name]()
    return time.perf_counter() - start
