"""Causal depthwise 1-D convolution (optionally followed by SiLU), compiled.

Mirrors the convolution section of :mod:`engine.kernels.numpy_ref`. No recurrence:
tasks are (batch row, time chunk).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.kernels.numba._jit import JIT, as_float_arrays, check_ndim, check_shape
from engine.kernels.numba._math import sigmoid


_CONV_TIME_CHUNK = 64


@njit(**JIT)
def _conv_fwd_kernel(x, wT, bias, silu, tc, y):
    b, L, d = x.shape
    k = wT.shape[0]
    one = x.dtype.type(1)
    ntc = (L + tc - 1) // tc
    for task in prange(b * ntc):
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
def _silu_grad_kernel(pre, dy, g):
    """``g = dy * silu'(pre)`` elementwise, rows in parallel."""
    b, L, d = pre.shape
    one = pre.dtype.type(1)
    for row in prange(b * L):
        bi = row // L
        t = row - bi * L
        pr = pre[bi, t]
        dyr = dy[bi, t]
        gr = g[bi, t]
        for c in range(d):
            s = sigmoid(pr[c], one)
            gr[c] = dyr[c] * (s * (one + pr[c] * (one - s)))


@njit(**JIT)
def _conv_dx_kernel(wT, dy, tc, dx):
    b, L, d = dy.shape
    k = wT.shape[0]
    ntc = (L + tc - 1) // tc
    for task in prange(b * ntc):
        bi = task // ntc
        t0 = (task - bi * ntc) * tc
        t1 = min(L, t0 + tc)
        for t in range(t0, t1):
            dxt = dx[bi, t]
            for c in range(d):
                dxt[c] = 0
            for j in range(k):
                src = t + (k - 1) - j
                if src >= L:
                    continue
                dys = dy[bi, src]
                wj = wT[j]
                for c in range(d):
                    dxt[c] += wj[c] * dys[c]


@njit(**JIT)
def _conv_dw_kernel(x, dy, k, tc, dwT, dbias):
    """Per-task partial sums (task = batch row x time chunk), added in task order."""
    b, L, d = x.shape
    zero = x.dtype.type(0)
    ntc = (L + tc - 1) // tc
    ntask = b * ntc
    part = np.zeros((ntask, k + 1, d), dtype=x.dtype)   # rows 0..k-1: dweight.T, row k: dbias
    for task in prange(ntask):
        bi = task // ntc
        t0 = (task - bi * ntc) * tc
        t1 = min(L, t0 + tc)
        pt = part[task]
        pb = pt[k]
        for t in range(t0, t1):
            dyt = dy[bi, t]
            for c in range(d):
                pb[c] += dyt[c]
            for j in range(k):
                src = t - (k - 1) + j
                if src < 0:
                    continue
                xs = x[bi, src]
                pj = pt[j]
                for c in range(d):
                    pj[c] += dyt[c] * xs[c]
    for c in prange(d):
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
    y = np.empty_like(x)
    _conv_fwd_kernel(x, np.ascontiguousarray(weight.T), bias, silu, _CONV_TIME_CHUNK, y)
    return y


def _conv_bwd(x, weight, dy):
    wT = np.ascontiguousarray(weight.T)
    dx = np.empty_like(x)
    _conv_dx_kernel(wT, dy, _CONV_TIME_CHUNK, dx)
    dwT = np.empty_like(wT)
    dbias = np.empty(x.shape[2], dtype=x.dtype)
    _conv_dw_kernel(x, dy, weight.shape[1], _CONV_TIME_CHUNK, dwT, dbias)
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
    return _conv_bwd(x, weight, dy)


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
    pre = _conv_fwd(x, weight, bias, False)
    # A separate output: in place, LLVM's overlap check would pick the scalar loop.
    g = np.empty_like(pre)
    _silu_grad_kernel(pre, dy, g)
    return _conv_bwd(x, weight, g)
