"""Affine maps ``y = x @ weight.T + bias`` and their gradients, compiled.

Mirrors the linear section of :mod:`engine.kernels.numpy_ref`. The products run on the
backend's thread pool: the rows of ``x`` are cut into blocks and each task hands its
block to a single-threaded BLAS (``np.dot``, SciPy's BLAS), the pattern scikit-learn's
KMeans uses. One pool then does all the parallel work of a layer, so no BLAS thread pool
spins on the cores while the kernels compute (see :mod:`engine.threads`).

The weight gradient sums over rows: each block writes its own partial product and the
partials are added in block order, so the result does not depend on the thread count.
The cut depends only on the number of rows.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.numba._jit import JIT, as_float_arrays, check_ndim, empty, empty_like
from engine.kernels.numba._sums import row_blocks, sum_partials
from engine.threads import exclusive_cores, parallel_for


@njit(**JIT)
def _linear_fwd_tasks(x, weight, bias, has_bias, rb, y, lo, hi):
    N = x.shape[0]
    wT = weight.T                                       # (in, out), a transposed view
    for blk in range(lo, hi):
        r0 = blk * rb
        r1 = min(N, r0 + rb)
        if r1 <= r0:
            continue
        yb = y[r0:r1]
        np.dot(x[r0:r1], wT, yb)                        # (rows, in) @ (in, out)
        if has_bias:
            for i in range(r1 - r0):
                row = yb[i]
                for j in range(row.shape[0]):
                    row[j] += bias[j]


@njit(**JIT)
def _linear_bwd_tasks(x, weight, dy, rb, dx, pW, pb, lo, hi):
    """``dx`` by row blocks; block ``blk``'s share of ``dW`` and ``db`` into ``pW[blk]``, ``pb[blk]``."""
    N = x.shape[0]
    zero = x.dtype.type(0)
    for blk in range(lo, hi):
        r0 = blk * rb
        r1 = min(N, r0 + rb)
        pWb = pW[blk]
        pbb = pb[blk]
        for j in range(pbb.shape[0]):
            pbb[j] = zero
        if r1 <= r0:
            for j in range(pWb.shape[0]):
                for k in range(pWb.shape[1]):
                    pWb[j, k] = zero
            continue
        dyb = dy[r0:r1]
        np.dot(dyb, weight, dx[r0:r1])                  # (rows, out) @ (out, in)
        np.dot(dyb.T, x[r0:r1], pWb)                    # (out, rows) @ (rows, in)
        for i in range(r1 - r0):
            row = dyb[i]
            for j in range(row.shape[0]):
                pbb[j] += row[j]


def _linear_check(x, weight):
    check_ndim("x", x, 2)
    check_ndim("weight", weight, 2)
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight must have shape (out, {x.shape[1]}), got {weight.shape}")


def linear_fwd(x, weight, bias=None):
    """Affine map forward (compiled twin).

    Parameters
    ----------
    x : ndarray, shape (N, in)
    weight : ndarray, shape (out, in)
    bias : ndarray, shape (out,), or None

    Returns
    -------
    y : ndarray, shape (N, out)
        ``x @ weight.T + bias``.
    """
    if bias is None:
        x, weight = as_float_arrays(["x", "weight"], [x, weight])
        bias_arr = np.zeros(1, dtype=x.dtype)
    else:
        x, weight, bias_arr = as_float_arrays(["x", "weight", "bias"], [x, weight, bias])
    _linear_check(x, weight)
    if bias is not None and bias_arr.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias_arr.shape}")
    y = empty((x.shape[0], weight.shape[0]), x.dtype)
    nb, rb = row_blocks(x.shape[0])
    with exclusive_cores():
        parallel_for(_linear_fwd_tasks, nb, (x, weight, bias_arr, bias is not None, rb, y), cost=y.size * x.shape[1])
    return y


def linear_bwd(x, weight, dy):
    """Affine map backward (compiled twin).

    Parameters
    ----------
    x : ndarray, shape (N, in)
        Forward input.
    weight : ndarray, shape (out, in)
    dy : ndarray, shape (N, out)
        Gradient with respect to the output.

    Returns
    -------
    dx : ndarray, shape (N, in)
        ``dy @ weight``.
    dweight : ndarray, shape (out, in)
        ``dy.T @ x``.
    dbias : ndarray, shape (out,)
        ``dy.sum(axis=0)``.
    """
    x, weight, dy = as_float_arrays(["x", "weight", "dy"], [x, weight, dy])
    _linear_check(x, weight)
    if dy.shape != (x.shape[0], weight.shape[0]):
        raise ValueError(f"dy must have shape {(x.shape[0], weight.shape[0])}, got {dy.shape}")
    N = x.shape[0]
    n_out, n_in = weight.shape
    nb, rb = row_blocks(N)
    dx = empty_like(x)
    pW = empty((nb, n_out, n_in), x.dtype)
    pb = empty((nb, n_out), x.dtype)
    dW = empty_like(weight)
    db = empty((n_out,), x.dtype)
    with exclusive_cores():
        parallel_for(_linear_bwd_tasks, nb, (x, weight, dy, rb, dx, pW, pb), cost=2 * dy.size * n_in)
        sum_partials(pW, dW)
        sum_partials(pb, db)
    return dx, dW, db
