"""GRU recurrence (torch.nn.GRU equations), forward and backward, compiled.

Mirrors the GRU section of :mod:`engine.kernels.numpy_ref`.

A task is a block of batch rows taken through every time step: rows never interact, so
the recurrence needs no synchronisation between tasks. At each step the block's hidden
product ``gh = h[t-1] @ W_hh.T`` (rows x 3H) is one small matrix product, handed to a
single-threaded BLAS (its small-matrix kernels run near the core's peak, several times a
hand loop in Numba), and the gate arithmetic follows in one fused pass over the block:
no per-step framework overhead, no (b, 3H) temporaries. The backward walks the steps in
reverse the same way (``dh[t-1] += dgh @ W_hh``), keeps ``dgh`` for every step, and
after the loop forms the weight gradient from it in one product per batch row, into a
per-task partial sum; partials are added in task order.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.numba._jit import (JIT, as_float_arrays, check_ndim, check_shape, empty,
                                       empty_like)
from engine.kernels.numba._math import sigmoid, tanh, wide_vectors
from engine.kernels.numba._sums import sum_partials
from engine.threads import exclusive_cores, parallel_for

# Batch rows per task: 8-row products are already efficient, and a batch of 64 gives 8
# tasks to share between the threads.
_ROWS = 8


def _row_tasks(b):
    """``(tasks, rows per task)``: a function of the batch size only."""
    rb = min(_ROWS, max(b, 1))
    return -(-b // rb), rb


@njit(**JIT)
def _gru_fwd_tasks(gi, W_hhT, b_hh, rb, h, gates, lo, hi):
    wide_vectors()
    b, L, H3 = gi.shape
    H = H3 // 3
    one = gi.dtype.type(1)
    for task in range(lo, hi):
        r0 = task * rb
        nr = min(b, r0 + rb) - r0
        P = np.zeros((nr, H), dtype=gi.dtype)            # h[t-1] of the block's rows
        GH = np.empty((nr, H3), dtype=gi.dtype)          # h[t-1] @ W_hh.T
        for t in range(L):
            np.dot(P, W_hhT, GH)
            for r in range(nr):
                git = gi[r0 + r, t]
                ght = GH[r]
                pr = P[r]
                ht = h[r0 + r, t]
                gt = gates[r0 + r, t]
                for j in range(H):
                    rr = sigmoid(git[j] + (ght[j] + b_hh[j]), one)
                    zz = sigmoid(git[H + j] + (ght[H + j] + b_hh[H + j]), one)
                    ghn = ght[2 * H + j] + b_hh[2 * H + j]
                    nn = tanh(git[2 * H + j] + rr * ghn)
                    p = (one - zz) * nn + zz * pr[j]
                    ht[j] = p
                    gt[j] = rr
                    gt[H + j] = zz
                    gt[2 * H + j] = nn
                    gt[3 * H + j] = ghn
                for j in range(H):
                    pr[j] = ht[j]


@njit(**JIT)
def _gru_bwd_tasks(W_hh, h, gates, dh, rb, dgi, dgh, pW, pb, lo, hi):
    """``dgi``, ``dgh`` for the block's rows; the block's share of ``dW_hh`` and ``db_hh``
    into ``pW[task]``, ``pb[task]``."""
    wide_vectors()
    b, L, H = h.shape
    H3 = 3 * H
    one = h.dtype.type(1)
    zero = h.dtype.type(0)
    for task in range(lo, hi):
        r0 = task * rb
        nr = min(b, r0 + rb) - r0
        G = np.zeros((nr, H), dtype=h.dtype)             # dLoss/dh[t], the future included
        DGH = np.empty((nr, H3), dtype=h.dtype)          # dLoss/dgh at step t
        GW = np.empty((nr, H), dtype=h.dtype)            # DGH @ W_hh
        for t in range(L - 1, -1, -1):
            for r in range(nr):
                gr = G[r]
                gt = gates[r0 + r, t]
                dht = dh[r0 + r, t]
                dgit = dgi[r0 + r, t]
                dgr = DGH[r]
                for j in range(H):
                    gj = gr[j] + dht[j]
                    gr[j] = gj
                    rr = gt[j]
                    zz = gt[H + j]
                    nn = gt[2 * H + j]
                    ghn = gt[3 * H + j]
                    hp = h[r0 + r, t - 1, j] if t > 0 else zero
                    dn = gj * (one - zz) * (one - nn * nn)          # through tanh
                    dz = gj * (hp - nn) * zz * (one - zz)           # through sigmoid
                    dr = dn * ghn * rr * (one - rr)
                    dgit[j] = dr
                    dgit[H + j] = dz
                    dgit[2 * H + j] = dn
                    dgr[j] = dr
                    dgr[H + j] = dz
                    dgr[2 * H + j] = dn * rr
                dghr = dgh[r0 + r, t]
                for j in range(H3):                      # a loop, not dghr[:] = dgr: an array
                    dghr[j] = dgr[j]                     # assignment compiles Numba's shape-error text
            np.dot(DGH, W_hh, GW)                        # (nr, 3H) @ (3H, H)
            for r in range(nr):
                gr = G[r]
                gw = GW[r]
                gt = gates[r0 + r, t]
                for j in range(H):
                    gr[j] = gr[j] * gt[H + j] + gw[j]
        # Weight and bias gradients of the block: dW_hh = sum_t dgh[t].T @ h[t-1].
        pWt = pW[task]
        pbt = pb[task]
        for j in range(H3):
            pbt[j] = zero
            for k in range(H):
                pWt[j, k] = zero
        if L > 1:
            tmp = np.empty((H3, H), dtype=h.dtype)
            for r in range(nr):
                np.dot(dgh[r0 + r, 1:].T, h[r0 + r, :L - 1], tmp)
                for j in range(H3):
                    for k in range(H):
                        pWt[j, k] += tmp[j, k]
        for r in range(nr):
            for t in range(L):
                dgt = dgh[r0 + r, t]
                for j in range(H3):
                    pbt[j] += dgt[j]


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
    ntask, rb = _row_tasks(b)
    with exclusive_cores():                               # the tasks call BLAS
        parallel_for(_gru_fwd_tasks, ntask, (gi, np.ascontiguousarray(W_hh.T), b_hh, rb, h, gates),
                     cost=gi.size * (H + 10))
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
    ntask, rb = _row_tasks(b)
    dgi = empty_like(gi)
    dgh = empty_like(gi)
    pW = empty((ntask, 3 * H, H), gi.dtype)
    pb = empty((ntask, 3 * H), gi.dtype)
    dW_hh = empty_like(W_hh)
    db_hh = empty_like(b_hh)
    with exclusive_cores():                               # the tasks call BLAS
        parallel_for(_gru_bwd_tasks, ntask, (W_hh, h, gates, dh, rb, dgi, dgh, pW, pb), cost=gi.size * (2 * H + 10))
        sum_partials(pW, dW_hh)
        sum_partials(pb, db_hh)
    return dgi, dW_hh, db_hh
