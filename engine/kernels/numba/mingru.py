"""minGRU recurrence, forward and backward, compiled.

Mirrors the minGRU section of :mod:`engine.kernels.numpy_ref`. The fused variant
(``mingru_logits_*``) reads the gate before its sigmoid and the candidate from one packed
array ``zh = [z_logit | h_tilde]``, the output of a single product with both of the
layer's weight matrices, and writes the packed gradient the same way; the kernels take
each operand as (array, offset of its first channel) so both layouts share one kernel.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from engine.kernels.numba._jit import (JIT, as_float_arrays, check_ndim, check_shape, empty,
                                       empty_like, n_chunks)
from engine.kernels.numba._math import flush_subnormal, sigmoid, wide_vectors
from engine.threads import parallel_for


@njit(inline="always", error_model="numpy")
def _task_channels(task, H, nck):
    """``(batch row, first channel, end channel)`` of a task: tasks run over the batch
    rows and, within a row, over ``nck`` near-equal chunks of the H channels. The split
    depends on shapes only."""
    bi = task // nck
    ci = task - bi * nck
    return bi, ci * H // nck, (ci + 1) * H // nck


@njit(**JIT)
def _mingru_fwd_tasks(za, zo, ha, ho, logits, H, nck, h, lo, hi):
    """``z[b, t, j] = za[b, t, zo + j]``, ``h_tilde[b, t, j] = ha[b, t, ho + j]``."""
    wide_vectors()
    b, L = za.shape[0], za.shape[1]
    one = za.dtype.type(1)
    for task in range(lo, hi):
        bi, j0, j1 = _task_channels(task, H, nck)
        w = j1 - j0
        # Work rows allocated here: the compiler knows they do not overlap, so the loop
        # vectorises without runtime alias checks (za and ha may be one packed array).
        V = np.zeros((3, w), dtype=za.dtype)            # z, h_tilde, h[t-1] -> h[t]
        for t in range(L):
            zt = za[bi, t, zo + j0:zo + j1]
            htt = ha[bi, t, ho + j0:ho + j1]
            for j in range(w):
                V[0, j] = zt[j]
                V[1, j] = htt[j]
            for j in range(w):
                zj = sigmoid(V[0, j], one) if logits else V[0, j]
                V[2, j] = (one - zj) * V[2, j] + zj * V[1, j]
            ht = h[bi, t, j0:j1]
            for j in range(w):
                ht[j] = V[2, j]


@njit(**JIT)
def _mingru_bwd_tasks(za, zo, ha, ho, h, dh, logits, H, nck, tiny, dza, dzo, dha, dho, lo, hi):
    """Gradients into ``dza[b, t, dzo + j]`` (gate) and ``dha[b, t, dho + j]`` (candidate).

    The carried gradient and both outputs are flushed to zero below ``tiny`` (see
    :func:`flush_subnormal`): in float32 the carry, multiplied by ``1 - z`` every step,
    turns subnormal within a 60-day window, and the subnormals then slowed the
    gradient's matrix products about 5x (the float32 minGRU train step ran 11 ms against
    6 ms in float64).
    """
    wide_vectors()
    b, L = za.shape[0], za.shape[1]
    one = za.dtype.type(1)
    for task in range(lo, hi):
        bi, j0, j1 = _task_channels(task, H, nck)
        w = j1 - j0
        # rows: z, h_tilde, h[t-1], dh[t], g = dLoss/dh[t] (the future included), dz, dh_tilde
        V = np.zeros((7, w), dtype=za.dtype)
        for t in range(L - 1, -1, -1):
            zt = za[bi, t, zo + j0:zo + j1]
            htt = ha[bi, t, ho + j0:ho + j1]
            dht = dh[bi, t, j0:j1]
            for j in range(w):
                V[0, j] = zt[j]
                V[1, j] = htt[j]
                V[3, j] = dht[j]
            if t > 0:
                hpr = h[bi, t - 1, j0:j1]
                for j in range(w):
                    V[2, j] = hpr[j]
            else:
                for j in range(w):
                    V[2, j] = 0
            for j in range(w):
                gj = V[4, j] + V[3, j]
                zj = sigmoid(V[0, j], one) if logits else V[0, j]
                dzj = gj * (V[1, j] - V[2, j])
                V[5, j] = flush_subnormal(dzj * (zj * (one - zj)) if logits else dzj, tiny)
                V[6, j] = flush_subnormal(gj * zj, tiny)
                V[4, j] = flush_subnormal(gj * (one - zj), tiny)
            dzt = dza[bi, t, dzo + j0:dzo + j1]
            for j in range(w):
                dzt[j] = V[5, j]
            dhtt = dha[bi, t, dho + j0:dho + j1]
            for j in range(w):
                dhtt[j] = V[6, j]


def _tiny(a):
    """The smallest normal number of ``a``'s dtype, as a scalar of that dtype."""
    return a.dtype.type(np.finfo(a.dtype).tiny)


def _mingru_inputs(names, arrays):
    arrs = as_float_arrays(names, arrays)
    check_ndim(names[0], arrs[0], 3)
    for name, a in zip(names[1:], arrs[1:]):
        check_shape(name, a, arrs[0].shape)
    return arrs


def _packed_inputs(zh, others):
    """Validate a packed ``zh (b, L, 2H)`` and ``(b, L, H)`` companions."""
    arrs = as_float_arrays(["zh"] + [n for n, _ in others], [zh] + [a for _, a in others])
    zh = arrs[0]
    check_ndim("zh", zh, 3)
    if zh.shape[2] % 2:
        raise ValueError(f"zh's last axis must be 2*H ([z_logit | h_tilde]), got {zh.shape[2]}")
    H = zh.shape[2] // 2
    for (name, _), a in zip(others, arrs[1:]):
        check_shape(name, a, zh.shape[:2] + (H,))
    return arrs, H


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
    b, _, H = z.shape
    nck = n_chunks(b, H)
    h = empty_like(z)
    parallel_for(_mingru_fwd_tasks, b * nck, (z, 0, h_tilde, 0, False, H, nck, h), cost=4 * z.size)
    return h


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
    b, _, H = z.shape
    nck = n_chunks(b, H)
    dz = empty_like(z)
    dh_tilde = empty_like(z)
    parallel_for(_mingru_bwd_tasks, b * nck, (z, 0, h_tilde, 0, h, dh, False, H, nck, _tiny(z), dz, 0, dh_tilde, 0),
                 cost=8 * z.size)
    return dz, dh_tilde


def mingru_logits_fwd(zh):
    """minGRU recurrence on the packed gate logits and candidate (compiled twin).

    Parameters
    ----------
    zh : ndarray, shape (b, L, 2H)
        ``[z_logit | h_tilde]``: ``zh[..., :H]`` is ``linear_z(x)`` (the gate is its
        sigmoid), ``zh[..., H:]`` is ``h_tilde``.

    Returns
    -------
    h : ndarray, shape (b, L, H)
    """
    (zh,), H = _packed_inputs(zh, [])
    b, L, _ = zh.shape
    nck = n_chunks(b, H)
    h = empty((b, L, H), zh.dtype)
    parallel_for(_mingru_fwd_tasks, b * nck, (zh, 0, zh, H, True, H, nck, h), cost=16 * h.size)
    return h


def mingru_logits_bwd(zh, h, dh):
    """Backward of :func:`mingru_logits_fwd` (compiled twin).

    Parameters
    ----------
    zh : ndarray, shape (b, L, 2H)
        As in :func:`mingru_logits_fwd`.
    h : ndarray, shape (b, L, H)
        Forward output.
    dh : ndarray, shape (b, L, H)
        Gradient with respect to every ``h[t]``.

    Returns
    -------
    dzh : ndarray, shape (b, L, 2H)
        ``[dz_logit | dh_tilde]``, packed like ``zh``.
    """
    (zh, h, dh), H = _packed_inputs(zh, [("h", h), ("dh", dh)])
    b, _, _ = zh.shape
    nck = n_chunks(b, H)
    dzh = empty_like(zh)
    parallel_for(_mingru_bwd_tasks, b * nck, (zh, 0, zh, H, h, dh, True, H, nck, _tiny(zh), dzh, 0, dzh, H),
                 cost=24 * h.size)
    return dzh
