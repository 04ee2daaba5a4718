"""Causal depthwise 1-D convolution (optionally followed by SiLU), compiled.

Mirrors the convolution section of :mod:`engine.kernels.numpy_ref`. No recurrence:
tasks are (batch row, time chunk).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.numba._jit import (JIT, as_float_arrays, check_ndim, check_shape, empty,
                                       empty_like)
from engine.kernels.numba._math import sigmoid
from engine.kernels.numba._threads import parallel_for


_CONV_TIME_CHUNK = 64


@njit(**JIT)
def _conv_fwd_tasks(x, wT, bias, silu, tc, y, lo, hi):
    b, L, d = x.shape
    k = wT.shape[0]
    one = x.dtype.type(1)
    ntc = (L + tc - 1) // tc
    for task in range(lo, hi):
        bi = task // ntc
        t0 = (task - bi * ntc) * tc
        t1 = min(L, t0 + tc)
        for t in range(t0, t1):
            yt = y[bi, t]
            for c in range(d):
                yt[c] = bias[c]
            for j in range(k):
                src = t - (k - 1) + j
                if src < 0:
                    continue
                xs = x[bi, src]
                wj = wT[j]
                for c in range(d):
                    yt[c] += wj[c] * xs[c]
            if silu:
                for c in range(d):
                    yt[c] = yt[c] * sigmoid(yt[c], one)


@njit(**JIT)
def _conv_bwd_tasks(x, wT, bias, dy, silu, tc, dx, part, lo, hi):
    """``dx`` and per-task partial sums ``part[task] = [dweight.T; dbias]`` (task = batch
    row x time chunk), for the convolution alone or followed by SiLU.

    With ``silu`` the gradient through the SiLU, ``g = dy * silu'(conv(x))``, is
    recomputed for the task's rows plus the ``k - 1`` after them (``dx[t]`` reads
    ``g[t .. t + k - 1]``) into a task-local buffer, instead of two full-size arrays.
    """
    b, L, d = x.shape
    k = wT.shape[0]
    one = x.dtype.type(1)
    zero = x.dtype.type(0)
    ntc = (L + tc - 1) // tc
    for task in range(lo, hi):
        bi = task // ntc
        t0 = (task - bi * ntc) * tc
        t1 = min(L, t0 + tc)
        te = min(L, t1 + k - 1)                          # g is needed on [t0, te)
        g = np.empty((te - t0, d), dtype=x.dtype)
        for t in range(t0, te):
            gt = g[t - t0]
            dyt = dy[bi, t]
            if silu:
                for c in range(d):
                    gt[c] = bias[c]
                for j in range(k):
                    src = t - (k - 1) + j
                    if src < 0:
                        continue
                    xs = x[bi, src]
                    wj = wT[j]
                    for c in range(d):
                        gt[c] += wj[c] * xs[c]
                for c in range(d):
                    pre = gt[c]
                    sg = sigmoid(pre, one)
                    gt[c] = dyt[c] * (sg * (one + pre * (one - sg)))
            else:
                for c in range(d):
                    gt[c] = dyt[c]
        pt = part[task]
        pb = pt[k]
        for j in range(k + 1):
            for c in range(d):
                pt[j, c] = zero
        for t in range(t0, t1):
            dxt = dx[bi, t]
            for c in range(d):
                dxt[c] = zero
            for j in range(k):
                dst = t + (k - 1) - j                    # output row that reads x[t] with weight j
                if dst >= L:
                    continue
                gs = g[dst - t0]
                wj = wT[j]
                for c in range(d):
                    dxt[c] += wj[c] * gs[c]
            gt = g[t - t0]
            for c in range(d):
                pb[c] += gt[c]
            for j in range(k):
                src = t - (k - 1) + j
                if src < 0:
                    continue
                xs = x[bi, src]
                pj = pt[j]
                for c in range(d):
                    pj[c] += gt[c] * xs[c]


@njit(**JIT)
def _sum_parts_tasks(part, dwT, dbias, lo, hi):
    """Add the per-task partial sums in task order."""
    ntask, k1, d = part.shape
    k = k1 - 1
    zero = part.dtype.type(0)
    for c in range(lo, hi):
        for j in range(k + 1):
            acc = zero
            for task in range(ntask):
                acc += part[task, j, c]
            if j < k:
                dwT[j, c] = acc
            else:
                dbias[c] = acc


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
    dwT = empty_like(wT)
    dbias = np.empty(d, dtype=x.dtype)
    parallel_for(_sum_parts_tasks, d, (part, dwT, dbias), cost=part.size)
    return dx, np.ascontiguousarray(dwT.T), dbias


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
