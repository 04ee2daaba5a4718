"""Causal depthwise 1-D convolution (optionally followed by SiLU), compiled.

Mirrors the convolution section of :mod:`engine.kernels.numpy_ref`. No recurrence:
tasks are (batch row, time chunk).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.numba._jit import (JIT, as_float_arrays, check_ndim, check_shape, empty,
                                       empty_like)
from engine.kernels.numba._math import sigmoid, wide_vectors
from engine.kernels.numba._sums import sum_partials
from engine.threads import parallel_for


_CONV_TIME_CHUNK = 64


@njit(inline="always", error_model="numpy")
def _task_rows(x, bi, r0, r1, d):
    """Rows ``r0 .. r1 - 1`` of ``x[bi]`` into a local ``(r1 - r0, d)`` array, zeros for
    rows before the start (the causal padding). Hot loops then touch only arrays
    allocated in the kernel, which the compiler knows do not overlap, and vectorise
    without runtime alias checks."""
    X = np.zeros((r1 - r0, d), dtype=x.dtype)
    for r in range(max(r0, 0), r1):
        xr = x[bi, r]
        Xr = X[r - r0]
        for c in range(d):
            Xr[c] = xr[c]
    return X


@njit(inline="always", error_model="numpy")
def _conv_rows(X, W, bias_l, k, n_out, Y):
    """``Y[s] = bias + sum_j W[j] * X[s + j]`` for ``s < n_out`` (all local arrays)."""
    d = X.shape[1]
    for s_ in range(n_out):
        Ys = Y[s_]
        for c in range(d):
            Ys[c] = bias_l[c]
        for j in range(k):
            Xs = X[s_ + j]
            Wj = W[j]
            for c in range(d):
                Ys[c] += Wj[c] * Xs[c]


@njit(**JIT)
def _conv_fwd_tasks(x, wT, bias, silu, tc, y, lo, hi):
    wide_vectors()
    b, L, d = x.shape
    k = wT.shape[0]
    one = x.dtype.type(1)
    ntc = (L + tc - 1) // tc
    W = wT.copy()
    bias_l = bias.copy()
    for task in range(lo, hi):
        bi = task // ntc
        t0 = (task - bi * ntc) * tc
        t1 = min(L, t0 + tc)
        X = _task_rows(x, bi, t0 - (k - 1), t1, d)       # X[s] = x[t0 - (k-1) + s]
        Y = np.empty((t1 - t0, d), dtype=x.dtype)
        _conv_rows(X, W, bias_l, k, t1 - t0, Y)
        if silu:
            for s_ in range(t1 - t0):
                Ys = Y[s_]
                for c in range(d):
                    Ys[c] = Ys[c] * sigmoid(Ys[c], one)
        for s_ in range(t1 - t0):
            yt = y[bi, t0 + s_]
            Ys = Y[s_]
            for c in range(d):
                yt[c] = Ys[c]


@njit(**JIT)
def _conv_bwd_tasks(x, wT, bias, dy, silu, tc, dx, part, lo, hi):
    """``dx`` and per-task partial sums ``part[task] = [dweight.T; dbias]`` (task = batch
    row x time chunk), for the convolution alone or followed by SiLU.

    With ``silu`` the gradient through the SiLU, ``g = dy * silu'(conv(x))``, is
    recomputed for the task's rows plus the ``k - 1`` after them (``dx[t]`` reads
    ``g[t .. t + k - 1]``) into a task-local buffer, instead of two full-size arrays.
    """
    wide_vectors()
    b, L, d = x.shape
    k = wT.shape[0]
    one = x.dtype.type(1)
    ntc = (L + tc - 1) // tc
    W = wT.copy()
    bias_l = bias.copy()
    for task in range(lo, hi):
        bi = task // ntc
        t0 = (task - bi * ntc) * tc
        t1 = min(L, t0 + tc)
        te = min(L, t1 + k - 1)                          # g is needed on [t0, te)
        n_g = te - t0
        # x rows t0 - (k-1) .. te - 1: the inputs of g's rows and of dW's products
        X = _task_rows(x, bi, t0 - (k - 1), te, d)       # X[s] = x[t0 - (k-1) + s]
        G = _task_rows(dy, bi, t0, te, d)                # G[s] = dy[t0 + s], then g
        if silu:
            P = np.empty((n_g, d), dtype=x.dtype)
            _conv_rows(X, W, bias_l, k, n_g, P)          # pre-activation
            for s_ in range(n_g):
                Ps = P[s_]
                Gs = G[s_]
                for c in range(d):
                    sg = sigmoid(Ps[c], one)
                    Gs[c] = Gs[c] * (sg * (one + Ps[c] * (one - sg)))
        # Partial sums of the task: rows 0..k-1 dweight.T, row k dbias.
        PT = np.zeros((k + 1, d), dtype=x.dtype)
        DX = np.zeros((t1 - t0, d), dtype=x.dtype)
        for s_ in range(t1 - t0):
            t = t0 + s_
            DXs = DX[s_]
            for j in range(k):
                dst = t + (k - 1) - j                    # output row that reads x[t] with weight j
                if dst >= L:
                    continue
                Gd = G[dst - t0]
                Wj = W[j]
                for c in range(d):
                    DXs[c] += Wj[c] * Gd[c]
            Gs = G[s_]
            Pb = PT[k]
            for c in range(d):
                Pb[c] += Gs[c]
            for j in range(k):
                Xs = X[s_ + j]                           # x[t - (k-1) + j] (0 before the start)
                Pj = PT[j]
                for c in range(d):
                    Pj[c] += Gs[c] * Xs[c]
        for s_ in range(t1 - t0):
            dxt = dx[bi, t0 + s_]
            DXs = DX[s_]
            for c in range(d):
                dxt[c] = DXs[c]
        pt = part[task]
        for j in range(k + 1):
            for c in range(d):
                pt[j, c] = PT[j, c]


def _conv_inputs(names, arrays):
    arrs = as_float_arrays(names, arrays)
    x, weight = arrs[0], arrs[1]
    check_ndim("x", x, 3)
    check_ndim("weight", weight, 2)
    d = x.shape[2]
    if weight.shape[0] != d or weight.shape[1] < 1:
        raise ValueError(f"weight must have shape ({d}, k) with k >= 1, got {weight.shape}")
    for name, a in zip(names[2:], arrs[2:]):
        check_shape(name, a, (d,) if name == "bias" else x.shape)
    return arrs


def _conv_fwd(x, weight, bias, silu):
    y = empty_like(x)
    b, L, _ = x.shape
    parallel_for(_conv_fwd_tasks, b * -(-L // _CONV_TIME_CHUNK),
                 (x, np.ascontiguousarray(weight.T), bias, silu, _CONV_TIME_CHUNK, y),
                 cost=x.size * (weight.shape[1] + 4))
    return y


def _conv_bwd(x, weight, bias, dy, silu):
    b, L, d = x.shape
    k = weight.shape[1]
    wT = np.ascontiguousarray(weight.T)
    dx = empty_like(x)
    ntask = b * (-(-L // _CONV_TIME_CHUNK))
    part = empty((ntask, k + 1, d), x.dtype)    # rows 0..k-1: dweight.T, row k: dbias
    parallel_for(_conv_bwd_tasks, ntask, (x, wT, bias, dy, silu, _CONV_TIME_CHUNK, dx, part), cost=x.size * (3 * k + 8))
    sums = empty((k + 1, d), x.dtype)                  # [dweight.T; dbias]
    sum_partials(part, sums)
    return dx, np.ascontiguousarray(sums[:k].T), sums[k].copy()


def causal_conv1d_fwd(x, weight, bias):
    """Causal depthwise convolution forward (compiled twin).

    Parameters
    ----------
    x : ndarray, shape (b, L, d)
    weight : ndarray, shape (d, k)
    bias : ndarray, shape (d,)

    Returns
    -------
    y : ndarray, shape (b, L, d)
    """
    x, weight, bias = _conv_inputs(["x", "weight", "bias"], [x, weight, bias])
    return _conv_fwd(x, weight, bias, False)


def causal_conv1d_bwd(x, weight, dy):
    """Causal depthwise convolution backward (compiled twin).

    Parameters
    ----------
    x : ndarray, shape (b, L, d)
        Forward input.
    weight : ndarray, shape (d, k)
    dy : ndarray, shape (b, L, d)
        Gradient with respect to the output.

    Returns
    -------
    dx : ndarray, shape (b, L, d)
    dweight : ndarray, shape (d, k)
    dbias : ndarray, shape (d,)
    """
    x, weight, dy = _conv_inputs(["x", "weight", "dy"], [x, weight, dy])
    return _conv_bwd(x, weight, np.zeros(x.shape[2], dtype=x.dtype), dy, False)


def causal_conv1d_silu_fwd(x, weight, bias):
    """Causal depthwise convolution followed by SiLU (compiled twin).

    Parameters
    ----------
    x : ndarray, shape (b, L, d)
    weight : ndarray, shape (d, k)
    bias : ndarray, shape (d,)

    Returns
    -------
    y : ndarray, shape (b, L, d)
        ``c * sigmoid(c)`` with ``c = causal_conv1d_fwd(x, weight, bias)``.
    """
    x, weight, bias = _conv_inputs(["x", "weight", "bias"], [x, weight, bias])
    return _conv_fwd(x, weight, bias, True)


def causal_conv1d_silu_bwd(x, weight, bias, dy):
    """Backward of :func:`causal_conv1d_silu_fwd`; the convolution is recomputed.

    Parameters
    ----------
    x, weight, bias
        As in :func:`causal_conv1d_silu_fwd`.
    dy : ndarray, shape (b, L, d)
        Gradient with respect to the output.

    Returns
    -------
    dx : ndarray, shape (b, L, d)
    dweight : ndarray, shape (d, k)
    dbias : ndarray, shape (d,)
    """
    x, weight, bias, dy = _conv_inputs(["x", "weight", "bias", "dy"], [x, weight, bias, dy])
    return _conv_bwd(x, weight, bias, dy, True)
