"""minGRU recurrence, forward and backward, compiled.

Mirrors the minGRU section of :mod:`engine.kernels.numpy_ref`. ``logits`` switches on the
fused variant: ``z`` then holds the gate before its sigmoid.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.numba._jit import (JIT, as_float_arrays, check_ndim, check_shape, empty,
                                       empty_like, n_chunks)
from engine.kernels.numba._math import sigmoid
from engine.kernels.numba._threads import parallel_for


@njit(**JIT)
def _mingru_fwd_tasks(z, h_tilde, logits, nck, h, lo, hi):
    b, L, H = z.shape
    one = z.dtype.type(1)
    for task in range(lo, hi):
        bi = task // nck
        ci = task - bi * nck
        j0 = ci * H // nck
        j1 = (ci + 1) * H // nck
        prev = np.zeros(j1 - j0, dtype=z.dtype)
        for t in range(L):
            zt = z[bi, t]
            htt = h_tilde[bi, t]
            ht = h[bi, t]
            for j in range(j0, j1):
                zj = sigmoid(zt[j], one) if logits else zt[j]
                p = (one - zj) * prev[j - j0] + zj * htt[j]
                prev[j - j0] = p
                ht[j] = p


@njit(**JIT)
def _mingru_bwd_tasks(z, h_tilde, h, dh, logits, nck, dz, dh_tilde, lo, hi):
    b, L, H = z.shape
    one = z.dtype.type(1)
    zeros = np.zeros(H, dtype=z.dtype)                  # h[-1]
    for task in range(lo, hi):
        bi = task // nck
        ci = task - bi * nck
        j0 = ci * H // nck
        j1 = (ci + 1) * H // nck
        g = np.zeros(j1 - j0, dtype=z.dtype)            # dLoss/dh[t] including the future
        for t in range(L - 1, -1, -1):
            hp = h[bi, t - 1] if t > 0 else zeros
            zt = z[bi, t]
            htt = h_tilde[bi, t]
            dht = dh[bi, t]
            dzt = dz[bi, t]
            dhtt = dh_tilde[bi, t]
            for j in range(j0, j1):
                gj = g[j - j0] + dht[j]
                zj = sigmoid(zt[j], one) if logits else zt[j]
                dzj = gj * (htt[j] - hp[j])
                dzt[j] = dzj * (zj * (one - zj)) if logits else dzj
                dhtt[j] = gj * zj
                g[j - j0] = gj * (one - zj)


def _mingru_inputs(names, arrays):
    arrs = as_float_arrays(names, arrays)
    check_ndim(names[0], arrs[0], 3)
    for name, a in zip(names[1:], arrs[1:]):
        check_shape(name, a, arrs[0].shape)
    return arrs


def _mingru_fwd(z, h_tilde, logits):
    h = empty_like(z)
    nck = n_chunks(z.shape[0], z.shape[2])
    parallel_for(_mingru_fwd_tasks, z.shape[0] * nck, (z, h_tilde, logits, nck, h))
    return h


def _mingru_bwd(z, h_tilde, h, dh, logits):
    dz = empty_like(z)
    dh_tilde = empty_like(z)
    nck = n_chunks(z.shape[0], z.shape[2])
    parallel_for(_mingru_bwd_tasks, z.shape[0] * nck, (z, h_tilde, h, dh, logits, nck, dz, dh_tilde))
    return dz, dh_tilde


def mingru_fwd(z, h_tilde):
    """minGRU recurrence forward (compiled twin).

    Parameters
    ----------
    z : ndarray, shape (b, L, H)
        Update gate, already through the sigmoid.
    h_tilde : ndarray, shape (b, L, H)
        Candidate state.

    Returns
    -------
    h : ndarray, shape (b, L, H)
        Hidden state at every step.
    """
    z, h_tilde = _mingru_inputs(["z", "h_tilde"], [z, h_tilde])
    return _mingru_fwd(z, h_tilde, False)


def mingru_bwd(z, h_tilde, h, dh):
    """minGRU recurrence backward (compiled twin).

    Parameters
    ----------
    z, h_tilde : ndarray, shape (b, L, H)
        Forward inputs.
    h : ndarray, shape (b, L, H)
        Forward output.
    dh : ndarray, shape (b, L, H)
        Gradient with respect to every ``h[t]``.

    Returns
    -------
    dz, dh_tilde : ndarray, shape (b, L, H)
    """
    z, h_tilde, h, dh = _mingru_inputs(["z", "h_tilde", "h", "dh"], [z, h_tilde, h, dh])
    return _mingru_bwd(z, h_tilde, h, dh, False)


def mingru_logits_fwd(z_logit, h_tilde):
    """minGRU recurrence taking the update gate before its sigmoid (compiled twin).

    Parameters
    ----------
    z_logit : ndarray, shape (b, L, H)
        ``linear_z(x)``; the gate is ``sigmoid(z_logit)``.
    h_tilde : ndarray, shape (b, L, H)

    Returns
    -------
    h : ndarray, shape (b, L, H)
    """
    z_logit, h_tilde = _mingru_inputs(["z_logit", "h_tilde"], [z_logit, h_tilde])
    return _mingru_fwd(z_logit, h_tilde, True)


def mingru_logits_bwd(z_logit, h_tilde, h, dh):
    """Backward of :func:`mingru_logits_fwd` (compiled twin).

    Returns
    -------
    dz_logit, dh_tilde : ndarray, shape (b, L, H)
    """
    z_logit, h_tilde, h, dh = _mingru_inputs(
        ["z_logit", "h_tilde", "h", "dh"], [z_logit, h_tilde, h, dh])
    return _mingru_bwd(z_logit, h_tilde, h, dh, True)
