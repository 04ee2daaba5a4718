"""RMS normalisation over the last axis, forward and backward, compiled.

Mirrors the RMSNorm section of :mod:`engine.kernels.numpy_ref`. Rows are independent:
tasks are blocks of rows. The only sum across rows, the gain's gradient, goes through
one partial per block, added in block order.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.numba._jit import (JIT, as_float_arrays, check_ndim, check_shape, empty,
                                       empty_like)
from engine.kernels.numba._sums import row_blocks, sum_partials
from engine.threads import parallel_for


@njit(**JIT)
def _rmsnorm_fwd_tasks(x, weight, eps, rb, y, rstd, lo, hi):
    N, d = x.shape
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    for blk in range(lo, hi):
        for i in range(blk * rb, min(N, blk * rb + rb)):
            xi = x[i]
            ss = zero
            for j in range(d):
                ss += xi[j] * xi[j]
            r = one / np.sqrt(ss / d + eps)
            rstd[i] = r
            yi = y[i]
            for j in range(d):
                yi[j] = (xi[j] * r) * weight[j]


@njit(**JIT)
def _rmsnorm_bwd_tasks(x, weight, rstd, dy, rb, dx, pw, lo, hi):
    N, d = x.shape
    zero = x.dtype.type(0)
    for blk in range(lo, hi):
        pwb = pw[blk]
        for j in range(d):
            pwb[j] = zero
        for i in range(blk * rb, min(N, blk * rb + rb)):
            xi = x[i]
            dyi = dy[i]
            dxi = dx[i]
            r = rstd[i]
            # xhat = x * r; dxhat = dy * w; dx = r * (dxhat - xhat * mean(dxhat * xhat))
            proj = zero
            for j in range(d):
                xh = xi[j] * r
                pwb[j] += dyi[j] * xh
                proj += (dyi[j] * weight[j]) * xh
            proj = proj / d
            for j in range(d):
                dxi[j] = r * (dyi[j] * weight[j] - (xi[j] * r) * proj)


def rmsnorm_fwd(x, weight, eps):
    """RMS normalisation forward (compiled twin).

    Parameters
    ----------
    x : ndarray, shape (N, d)
    weight : ndarray, shape (d,)
        Gain.
    eps : float
        Added to the mean square before the square root.

    Returns
    -------
    y : ndarray, shape (N, d)
        ``x * rstd[:, None] * weight``.
    rstd : ndarray, shape (N,)
        ``1 / sqrt(mean(x**2, axis=-1) + eps)``, kept for the backward.
    """
    x, weight = as_float_arrays(["x", "weight"], [x, weight])
    check_ndim("x", x, 2)
    check_shape("weight", weight, (x.shape[1],))
    y = empty_like(x)
    rstd = np.empty(x.shape[0], dtype=x.dtype)
    nb, rb = row_blocks(x.shape[0])
    parallel_for(_rmsnorm_fwd_tasks, nb, (x, weight, x.dtype.type(eps), rb, y, rstd), cost=4 * x.size)
    return y, rstd


def rmsnorm_bwd(x, weight, rstd, dy):
    """RMS normalisation backward (compiled twin).

    Parameters
    ----------
    x, weight
        As in :func:`rmsnorm_fwd`.
    rstd : ndarray, shape (N,)
        From :func:`rmsnorm_fwd`.
    dy : ndarray, shape (N, d)
        Gradient with respect to ``y``.

    Returns
    -------
    dx : ndarray, shape (N, d)
    dweight : ndarray, shape (d,)
    """
    x, weight, rstd, dy = as_float_arrays(["x", "weight", "rstd", "dy"], [x, weight, rstd, dy])
    check_ndim("x", x, 2)
    check_shape("weight", weight, (x.shape[1],))
    check_shape("rstd", rstd, (x.shape[0],))
    check_shape("dy", dy, x.shape)
    nb, rb = row_blocks(x.shape[0])
    dx = empty_like(x)
    pw = empty((nb, x.shape[1]), x.dtype)
    parallel_for(_rmsnorm_bwd_tasks, nb, (x, weight, rstd, dy, rb, dx, pw), cost=8 * x.size)
    dweight = empty_like(weight)
    sum_partials(pw, dweight)
    return dx, dweight
