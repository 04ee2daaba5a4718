"""GRU recurrence (torch.nn.GRU equations), forward and backward, compiled.

Mirrors the GRU section of :mod:`engine.kernels.numpy_ref`. The hidden matmul is written
as loops over the transposed weight so the innermost loop runs over contiguous memory;
Numba's np.dot would need SciPy at run time.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.numba._jit import (JIT, as_float_arrays, check_ndim, check_shape, empty,
                                       empty_like)
from engine.kernels.numba._math import sigmoid, tanh
from engine.kernels.numba._threads import parallel_for


@njit(**JIT)
def _gru_fwd_tasks(gi, W_hhT, b_hh, h, gates, lo, hi):
    b, L, H3 = gi.shape
    H = H3 // 3
    one = gi.dtype.type(1)
    for bi in range(lo, hi):
        prev = np.zeros(H, dtype=gi.dtype)
        gh = np.empty(H3, dtype=gi.dtype)
        for t in range(L):
            for j in range(H3):
                gh[j] = 0
            for k in range(H):
                pk = prev[k]
                Wk = W_hhT[k]
                for j in range(H3):
                    gh[j] += pk * Wk[j]
            for j in range(H3):
                gh[j] += b_hh[j]
            git = gi[bi, t]
            ht = h[bi, t]
            gt = gates[bi, t]
            for j in range(H):
                r = sigmoid(git[j] + gh[j], one)
                zz = sigmoid(git[H + j] + gh[H + j], one)
                ghn = gh[2 * H + j]
                nn = tanh(git[2 * H + j] + r * ghn)
                p = (one - zz) * nn + zz * prev[j]
                prev[j] = p
                ht[j] = p
                gt[j] = r
                gt[H + j] = zz
                gt[2 * H + j] = nn
                gt[3 * H + j] = ghn


@njit(**JIT)
def _gru_bwd_tasks(W_hh, h, gates, dh, dgi, dgh, lo, hi):
    b, L, H = h.shape
    H3 = 3 * H
    one = h.dtype.type(1)
    zeros = np.zeros(H, dtype=h.dtype)                  # h[-1]
    for bi in range(lo, hi):
        g = np.zeros(H, dtype=h.dtype)
        acc = np.empty(H, dtype=h.dtype)
        for t in range(L - 1, -1, -1):
            hp = h[bi, t - 1] if t > 0 else zeros
            gt = gates[bi, t]
            dht = dh[bi, t]
            dgit = dgi[bi, t]
            dght = dgh[bi, t]
            for j in range(H):
                gj = g[j] + dht[j]
                g[j] = gj
                r = gt[j]
                zz = gt[H + j]
                nn = gt[2 * H + j]
                ghn = gt[3 * H + j]
                dn = gj * (one - zz) * (one - nn * nn)
                dz = gj * (hp[j] - nn) * zz * (one - zz)
                dr = dn * ghn * r * (one - r)
                dgit[j] = dr
                dgit[H + j] = dz
                dgit[2 * H + j] = dn
                dght[j] = dr
                dght[H + j] = dz
                dght[2 * H + j] = dn * r
            for k in range(H):
                acc[k] = 0
            for j in range(H3):
                w = dght[j]
                Wj = W_hh[j]
                for k in range(H):
                    acc[k] += w * Wj[k]
            for k in range(H):
                g[k] = g[k] * gt[H + k] + acc[k]


@njit(**JIT)
def _gru_param_grads_tasks(h, dgh, nrow, dW_hh, db_hh, lo, hi):
    """``dW_hh = sum_{b,t} dgh[b,t]^T h[b,t-1]``, ``db_hh = sum_{b,t} dgh[b,t]``.

    Each task owns ``nrow`` rows of the output, so the sum over (b, t) runs in one
    fixed order per element whatever the split.
    """
    b, L, H = h.shape
    H3 = 3 * H
    ntask = (H3 + nrow - 1) // nrow
    for task in range(lo, hi):
        j0 = task * nrow
        j1 = min(H3, j0 + nrow)
        accW = np.zeros((j1 - j0, H), dtype=h.dtype)
        accb = np.zeros(j1 - j0, dtype=h.dtype)
        for bi in range(b):
            for t in range(L):
                dght = dgh[bi, t]
                for j in range(j0, j1):
                    accb[j - j0] += dght[j]
                if t == 0:
                    continue
                hp = h[bi, t - 1]
                for j in range(j0, j1):
                    w = dght[j]
                    aw = accW[j - j0]
                    for k in range(H):
                        aw[k] += w * hp[k]
        for j in range(j0, j1):
            db_hh[j] = accb[j - j0]
            for k in range(H):
                dW_hh[j, k] = accW[j - j0, k]


def _gru_check(gi, W_hh, b_hh):
    check_ndim("gi", gi, 3)
    H3 = gi.shape[2]
    if H3 % 3:
        raise ValueError(f"gi's last axis must be 3*H (gate order r, z, n), got {H3}")
    H = H3 // 3
    check_shape("W_hh", W_hh, (H3, H))
    check_shape("b_hh", b_hh, (H3,))
    return H


def gru_fwd(gi, W_hh, b_hh):
    """GRU recurrence forward (compiled twin).

    Parameters
    ----------
    gi : ndarray, shape (b, L, 3H)
        Input projections ``x @ W_ih.T + b_ih`` in gate order r, z, n.
    W_hh : ndarray, shape (3H, H)
    b_hh : ndarray, shape (3H,)

    Returns
    -------
    h : ndarray, shape (b, L, H)
        Hidden state at every step.
    gates : ndarray, shape (b, L, 4H)
        ``r, z, n, gh_n`` per step, kept for the backward.
    """
    gi, W_hh, b_hh = as_float_arrays(["gi", "W_hh", "b_hh"], [gi, W_hh, b_hh])
    H = _gru_check(gi, W_hh, b_hh)
    b, L, _ = gi.shape
    h = empty((b, L, H), gi.dtype)
    gates = empty((b, L, 4 * H), gi.dtype)
    parallel_for(_gru_fwd_tasks, b, (gi, np.ascontiguousarray(W_hh.T), b_hh, h, gates))
    return h, gates


def gru_bwd(gi, W_hh, b_hh, h, gates, dh):
    """GRU recurrence backward (compiled twin).

    Parameters
    ----------
    gi, W_hh, b_hh
        As in :func:`gru_fwd`.
    h, gates : ndarray
        Outputs of :func:`gru_fwd`.
    dh : ndarray, shape (b, L, H)
        Gradient with respect to every ``h[t]``.

    Returns
    -------
    dgi : ndarray, shape (b, L, 3H)
    dW_hh : ndarray, shape (3H, H)
    db_hh : ndarray, shape (3H,)
    """
    gi, W_hh, b_hh, h, gates, dh = as_float_arrays(
        ["gi", "W_hh", "b_hh", "h", "gates", "dh"], [gi, W_hh, b_hh, h, gates, dh])
    H = _gru_check(gi, W_hh, b_hh)
    b, L, _ = gi.shape
    check_shape("h", h, (b, L, H))
    check_shape("gates", gates, (b, L, 4 * H))
    check_shape("dh", dh, (b, L, H))
    dgi = empty_like(gi)
    dgh = empty_like(gi)
    parallel_for(_gru_bwd_tasks, b, (W_hh, h, gates, dh, dgi, dgh))
    dW_hh = empty_like(W_hh)
    db_hh = empty_like(b_hh)
    parallel_for(_gru_param_grads_tasks, -(-3 * H // 16), (h, dgh, 16, dW_hh, db_hh))
    return dgi, dW_hh, db_hh
