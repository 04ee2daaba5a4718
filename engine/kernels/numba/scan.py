"""Selective scan (Mamba's S6 recurrence), forward and backward, compiled.

Mirrors the scan section of :mod:`engine.kernels.numpy_ref`. ``gated`` switches on the
fused variant: ``dt`` then holds the step sizes before the softplus and ``z`` the gate
branch before the SiLU.

Layout: channels are the vector axis
------------------------------------
A task is one batch row and a chunk of ``CW`` channels. Its states are held as
``(n, CW)``: for each state ``k`` the innermost loop runs over ``CW`` contiguous
channels, so every sum over states (``y``; in the backward the step-size and input
gradients) is an elementwise accumulation across ``k``. No loop carries a horizontal
reduction, which LLVM would not vectorise without reassociating float sums. Only ``dB``
and ``dC`` sum over channels; :func:`_fold` does that once per (step, state).

Each task first copies its slice of every input into zero-padded ``CW``-wide rows of
small work arrays, and copies its results out at the end of each step. The inner loops
then have a constant trip count and touch few distinct arrays at constant distances,
which is what lets LLVM vectorise them with cheap (or no) runtime alias checks; a
padded lane decays from a zero state and stays 0.

Memory of the backward
----------------------
No ``(b, L, d, n)`` array is ever held. Time is walked backwards in blocks of ``tb``
steps (one block for a training window of up to 64 steps with ``n = 16``). For each
block every task recomputes the block's states and decays from a checkpoint into a
``(tb + 1, n, CW)`` buffer, then runs the block backwards. The checkpoints (the state
entering each block) come from one forward pass, made only when there is more than one
block. Memory grows like the inputs plus ``L / tb`` states per task and a few block
buffers per thread, not like inputs x ``n``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from engine.kernels.numba._jit import (JIT_SCAN, as_float_arrays, check_ndim, check_shape, empty,
                                       empty_like)
from engine.kernels.numba._math import exp, sigmoid, softplus, softplus_sigmoid, wide_vectors
from engine.threads import parallel_for

#: Channels per task: the length of every inner loop (4 AVX2 vectors of float64).
CW = 32
# Elements of one backward block buffer ((tb + 1) * n * 2 * CW): 512 KiB in float64, so
# a task's buffers stay in a 2 MiB L2 cache.
_SCAN_BLOCK_ELEMS = 65536

# Rows of the per-step channel vectors SV[s, row, :]: the task's inputs, zero-padded to
# CW channels, and what is derived from them.
_U, _DT, _Z, _DY, _DL, _DBU, _DYV, _YS, _SDT, _SZ = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
_NSV = 10
# Rows of the per-step accumulators and outputs ACC[row, :].
_GB, _GAA, _TB, _TC, _DD, _DU, _DDT, _DZ, _D = 0, 1, 2, 3, 4, 5, 6, 7, 8


@njit(inline="always", error_model="numpy")
def _fold(t):
    """``sum(t[:CW])`` in a fixed order (t's entries past the task's width are 0):
    eight lane sums ``t[c] + t[c + 8] + ...``, then those eight as a balanced tree."""
    for c in range(8):
        acc = t[c]
        for j in range(8, CW, 8):
            acc += t[c + j]
        t[c] = acc
    return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]))


@njit(inline="always", error_model="numpy")
def _load_chunk(dst, src, c0, w):
    """``dst[:w] = src[c0:c0 + w]``; the rest of ``dst`` keeps its zeros."""
    # Slice first: an index c0 + c could be negative as far as the compiler knows, and
    # the wraparound it would add turns the copy into gathers.
    part = src[c0:c0 + w]
    for c in range(w):
        dst[c] = part[c]


@njit(inline="always", error_model="numpy")
def _store_chunk(dst, src, c0, w):
    """``dst[c0:c0 + w] = src[:w]``."""
    part = dst[c0:c0 + w]
    for c in range(w):
        part[c] = src[c]


@njit(inline="always", error_model="numpy")
def _task_chunk(task, d):
    """``(batch row, chunk index, first channel, width)`` of a task: tasks run over the
    batch rows and, within a row, over consecutive chunks of CW channels (the last one
    narrower when CW does not divide d). The split depends on shapes only."""
    nck = (d + CW - 1) // CW
    bi = task // nck
    ci = task - bi * nck
    c0 = ci * CW
    return bi, ci, c0, min(d, c0 + CW) - c0


@njit(inline="always", error_model="numpy")
def _task_A(AT, c0, w):
    """The task's columns of ``A.T``, zero-padded to ``(n, CW)`` (padded lanes then
    decay by exp(0) = 1 from a zero state and stay 0)."""
    n = AT.shape[0]
    Ap = np.zeros((n, CW), dtype=AT.dtype)
    for k in range(n):
        _load_chunk(Ap[k], AT[k], c0, w)
    return Ap


@njit(inline="always", error_model="numpy")
def _step_inputs(sv, u, dt, bi, t, c0, w, gated, with_sigmoid, zero, one):
    """``delta`` and ``delta * u`` of one step into ``sv`` (all CW lanes), and
    ``sigmoid(dt)`` (the softplus's derivative) if ``gated and with_sigmoid``."""
    _load_chunk(sv[_U], u[bi, t], c0, w)
    _load_chunk(sv[_DT], dt[bi, t], c0, w)
    if gated and with_sigmoid:
        for c in range(CW):
            sp, sg = softplus_sigmoid(sv[_DT, c], zero, one)
            sv[_DL, c] = sp
            sv[_SDT, c] = sg
    elif gated:
        for c in range(CW):
            sv[_DL, c] = softplus(sv[_DT, c], zero, one)
    else:
        for c in range(CW):
            sv[_DL, c] = sv[_DT, c]
    for c in range(CW):
        sv[_DBU, c] = sv[_DL, c] * sv[_U, c]


@njit(**JIT_SCAN)
def _scan_fwd_tasks(u, dt, AT, B, C, D, z, gated, y, lo, hi):
    b, L, d = u.shape
    n = AT.shape[0]
    zero = u.dtype.type(0)
    one = u.dtype.type(1)
    wide_vectors()
    for task in range(lo, hi):
        bi, _, c0, w = _task_chunk(task, d)
        Ap = _task_A(AT, c0, w)
        h = np.zeros((n, CW), dtype=u.dtype)               # the running state
        sv = np.zeros((_NSV, CW), dtype=u.dtype)
        Dp = np.zeros(CW, dtype=u.dtype)
        _load_chunk(Dp, D, c0, w)
        for t in range(L):
            _step_inputs(sv, u, dt, bi, t, c0, w, gated, False, zero, one)
            for c in range(CW):
                sv[_YS, c] = zero
            Bt = B[bi, t]
            Ct = C[bi, t]
            for k in range(n):
                Bk = Bt[k]
                Ck = Ct[k]
                hk = h[k]
                Ak = Ap[k]
                for c in range(CW):
                    hv = exp(sv[_DL, c] * Ak[c]) * hk[c] + sv[_DBU, c] * Bk
                    hk[c] = hv
                    sv[_YS, c] += Ck * hv
            for c in range(CW):
                sv[_YS, c] += Dp[c] * sv[_U, c]
            if gated:
                _load_chunk(sv[_Z], z[bi, t], c0, w)
                for c in range(CW):
                    zc = sv[_Z, c]
                    sv[_YS, c] *= zc * sigmoid(zc, one)
            _store_chunk(y[bi, t], sv[_YS], c0, w)


@njit(**JIT_SCAN)
def _scan_checkpoints_tasks(u, dt, AT, B, gated, tb, ck, lo, hi):
    """``ck[m, task] = h[m * tb - 1]``: the state entering block ``m`` (``ck[0] = 0``)."""
    b, L, d = u.shape
    n = AT.shape[0]
    zero = u.dtype.type(0)
    one = u.dtype.type(1)
    nblk = ck.shape[0]
    wide_vectors()
    for task in range(lo, hi):
        bi, _, c0, w = _task_chunk(task, d)
        Ap = _task_A(AT, c0, w)
        h = np.zeros((n, CW), dtype=u.dtype)
        sv = np.zeros((_NSV, CW), dtype=u.dtype)
        for k in range(n):
            for c in range(CW):
                ck[0, task, k, c] = zero
        for t in range((nblk - 1) * tb):
            _step_inputs(sv, u, dt, bi, t, c0, w, gated, False, zero, one)
            Bt = B[bi, t]
            for k in range(n):
                Bk = Bt[k]
                hk = h[k]
                Ak = Ap[k]
                for c in range(CW):
                    hk[c] = exp(sv[_DL, c] * Ak[c]) * hk[c] + sv[_DBU, c] * Bk
            if (t + 1) % tb == 0:
                ckm = ck[(t + 1) // tb, task]
                for k in range(n):
                    for c in range(CW):
                        ckm[k, c] = h[k, c]


@njit(inline="always", error_model="numpy")
def _copy_state(dst, src, n):
    """``dst[:] = src`` for ``(n, CW)`` arrays, element by element."""
    for k in range(n):
        for c in range(CW):
            dst[k, c] = src[k, c]


@njit(**JIT_SCAN)
def _scan_bwd_block_tasks(u, dt, AT, B, C, D, z, dy, gated, t0, tl, h0, last, G, DA, DD, du, ddt, dz,
                          pB, pC, lo, hi):
    """Steps ``t0 .. t0 + tl - 1`` backwards, every task in parallel.

    ``h0 (ntask, n, CW)`` holds the state entering the block (ignored for the first
    block, ``t0 == 0``, which starts from 0). Carried from block to block (later blocks
    first): ``G`` (dLoss/dh) and the task's sums ``DA (ntask, n, CW)`` (dA.T) and
    ``DD (ntask, CW)`` (dD); ``last`` marks the block that ends the sequence, where they
    start from 0. The block's sums over channels go to one slot per chunk,
    ``pB, pC (nck, b, tl, n)``, added in order by :func:`_scan_merge_bc_tasks`.
    """
    b, L, d = u.shape
    n = AT.shape[0]
    zero = u.dtype.type(0)
    one = u.dtype.type(1)
    wide_vectors()
    for task in range(lo, hi):
        bi, ci, c0, w = _task_chunk(task, d)
        Ap = _task_A(AT, c0, w)
        HS = np.empty((tl + 1, n, CW), dtype=u.dtype)      # HS[s] = h[t0 + s - 1]
        AA = np.empty((tl, n, CW), dtype=u.dtype)          # AA[s] = exp(delta[t0 + s] * A)
        SV = np.zeros((tl, _NSV, CW), dtype=u.dtype)       # per-step channel vectors
        ACC = np.zeros((9, CW), dtype=u.dtype)             # per-step sums and outputs
        _load_chunk(ACC[_D], D, c0, w)
        if not last:
            for c in range(CW):
                ACC[_DD, c] = DD[task, c]
        # Local copies of the carried state: arrays allocated here are known not to
        # overlap, so the hot loops vectorise without runtime alias checks.
        Gt = np.zeros((n, CW), dtype=u.dtype)              # dLoss/dh, carried back in time
        DAt = np.zeros((n, CW), dtype=u.dtype)
        if not last:
            # Element loops, not Gt[:] = G[task]: assigning an array to a slice makes Numba
            # compile its shape-mismatch message (string formatting), seconds of a first run.
            _copy_state(Gt, G[task], n)
            _copy_state(DAt, DA[task], n)

        # Channel vectors of the block: delta, delta * u, sigmoid(dt) and the gradient
        # reaching the ungated y (through the gate when gated).
        for s in range(tl):
            t = t0 + s
            sv = SV[s]
            _step_inputs(sv, u, dt, bi, t, c0, w, gated, True, zero, one)
            _load_chunk(sv[_DY], dy[bi, t], c0, w)
            if gated:
                _load_chunk(sv[_Z], z[bi, t], c0, w)
                for c in range(CW):
                    zc = sv[_Z, c]
                    sg = sigmoid(zc, one)
                    sv[_SZ, c] = sg
                    sv[_DYV, c] = sv[_DY, c] * (zc * sg)
            else:
                for c in range(CW):
                    sv[_DYV, c] = sv[_DY, c]
        # The block's states and decays, from its checkpoint; y before the gate.
        for k in range(n):
            for c in range(CW):
                HS[0, k, c] = h0[task, k, c] if t0 > 0 else zero
        for s in range(tl):
            t = t0 + s
            Bt = B[bi, t]
            Ct = C[bi, t]
            sv = SV[s]
            for k in range(n):
                Bk = Bt[k]
                Ck = Ct[k]
                Ak = Ap[k]
                hp = HS[s, k]
                hn = HS[s + 1, k]
                ak = AA[s, k]
                for c in range(CW):
                    a = exp(sv[_DL, c] * Ak[c])
                    ak[c] = a
                    hv = a * hp[c] + sv[_DBU, c] * Bk
                    hn[c] = hv
                    sv[_YS, c] += Ck * hv
        # Backwards through the block.
        for s in range(tl - 1, -1, -1):
            t = t0 + s
            Bt = B[bi, t]
            Ct = C[bi, t]
            sv = SV[s]
            for c in range(CW):
                ACC[_GB, c] = zero
                ACC[_GAA, c] = zero
            for k in range(n):
                Bk = Bt[k]
                Ck = Ct[k]
                Ak = Ap[k]
                g = Gt[k]
                da = DAt[k]
                hp = HS[s, k]
                hn = HS[s + 1, k]
                ak = AA[s, k]
                for c in range(CW):
                    # h[t] = a * h[t-1] + delta * B * u with a = exp(delta * A)
                    gk = g[c] + sv[_DYV, c] * Ck               # dLoss/dh[t]
                    a = ak[c]
                    ga = gk * hp[c] * a                        # dLoss/da * a
                    ACC[_GAA, c] += ga * Ak[c]
                    da[c] += ga * sv[_DL, c]
                    ACC[_GB, c] += gk * Bk
                    ACC[_TB, c] = gk * sv[_DBU, c]             # summed over c into dB
                    ACC[_TC, c] = sv[_DYV, c] * hn[c]          # ... and into dC
                    g[c] = gk * a                              # carried to h[t-1]
                pB[ci, bi, s, k] = _fold(ACC[_TB])
                pC[ci, bi, s, k] = _fold(ACC[_TC])
            for c in range(CW):
                ACC[_DDT, c] = ACC[_GAA, c] + ACC[_GB, c] * sv[_U, c]
                ACC[_DU, c] = sv[_DYV, c] * ACC[_D, c] + ACC[_GB, c] * sv[_DL, c]
                ACC[_DD, c] += sv[_DYV, c] * sv[_U, c]
            if gated:
                for c in range(CW):
                    zc = sv[_Z, c]
                    sg = sv[_SZ, c]
                    yv = sv[_YS, c] + ACC[_D, c] * sv[_U, c]
                    ACC[_DZ, c] = sv[_DY, c] * yv * (sg * (one + zc * (one - sg)))
                    ACC[_DDT, c] *= sv[_SDT, c]
                _store_chunk(dz[bi, t], ACC[_DZ], c0, w)
            _store_chunk(ddt[bi, t], ACC[_DDT], c0, w)
            _store_chunk(du[bi, t], ACC[_DU], c0, w)
        for c in range(CW):
            DD[task, c] = ACC[_DD, c]
        _copy_state(G[task], Gt, n)
        _copy_state(DA[task], DAt, n)


@njit(**JIT_SCAN)
def _scan_merge_bc_tasks(pB, pC, t0, dB, dC, lo, hi):
    """``dB[:, t0 + s] = sum over chunks of pB[:, :, s]`` in chunk order (and dC)."""
    nck, b, tl, n = pB.shape
    for bi in range(lo, hi):
        for s in range(tl):
            for k in range(n):
                sB = pB[0, bi, s, k]
                sC = pC[0, bi, s, k]
                for ci in range(1, nck):
                    sB += pB[ci, bi, s, k]
                    sC += pC[ci, bi, s, k]
                dB[bi, t0 + s, k] = sB
                dC[bi, t0 + s, k] = sC


@njit(**JIT_SCAN)
def _scan_merge_ad_tasks(DA, DD, b, dA, dD, lo, hi):
    """``dA[c, k] = sum over batch rows of DA[task, k, c]`` in row order (and dD)."""
    ntask, n, _ = DA.shape
    d = dA.shape[0]
    nck = ntask // b
    zero = dA.dtype.type(0)
    for c in range(lo, hi):
        ci = c // CW
        cc = c - ci * CW
        for k in range(n):
            acc = zero
            for bi in range(b):
                acc += DA[bi * nck + ci, k, cc]
            dA[c, k] = acc
        acc = zero
        for bi in range(b):
            acc += DD[bi * nck + ci, cc]
        dD[c] = acc


def _scan_inputs(names, arrays):
    """Validate ``u, delta|dt, A, B, C, D`` and any further ``(b, L, d)`` arrays."""
    arrs = as_float_arrays(names, arrays)
    u, _, A = arrs[0], arrs[1], arrs[2]
    check_ndim("u", u, 3)
    check_ndim("A", A, 2)
    b, L, d = u.shape
    n = A.shape[1]
    check_shape(names[1], arrs[1], (b, L, d))
    check_shape("A", A, (d, n))
    check_shape("B", arrs[3], (b, L, n))
    check_shape("C", arrs[4], (b, L, n))
    check_shape("D", arrs[5], (d,))
    for name, a in zip(names[6:], arrs[6:]):
        check_shape(name, a, (b, L, d))
    return arrs


def _scan_block_len(L, n):
    """Steps per backward block: the block buffer stays cache-sized, and for long series
    at least sqrt(L) steps, so that the checkpoints (L / tb states per task) stay small too."""
    return max(1, min(max(L, 1), max(16, _SCAN_BLOCK_ELEMS // (2 * CW * max(n, 1)), math.isqrt(L))))


def _scan_fwd(u, dt, A, B, C, D, z, gated):
    y = empty_like(u)
    b, _, d = u.shape
    parallel_for(_scan_fwd_tasks, b * -(-d // CW), (u, dt, np.ascontiguousarray(A.T), B, C, D, z, gated, y),
                 cost=u.size * (30 * A.shape[1] + 60))
    return y


def _scan_bwd(u, dt, A, B, C, D, z, dy, gated):
    b, L, d = u.shape
    n = A.shape[1]
    nck = -(-d // CW)
    ntask = b * nck
    AT = np.ascontiguousarray(A.T)
    tb = _scan_block_len(L, n)
    nblk = -(-L // tb)
    # Checkpoints only when there is more than one block (a 1-element stand-in otherwise).
    ck = empty((nblk, ntask, n, CW) if nblk > 1 else (1, 1, 1, 1), u.dtype)
    if nblk > 1:
        parallel_for(_scan_checkpoints_tasks, ntask, (u, dt, AT, B, gated, tb, ck), cost=u.size * 30 * n)
    du = empty_like(u)
    ddt = empty_like(u)
    dz = empty_like(u) if gated else empty((1, 1, 1), u.dtype)
    dB = empty_like(B)
    dC = empty_like(C)
    G = empty((ntask, n, CW), u.dtype)           # carried between blocks
    DA = empty((ntask, n, CW), u.dtype)
    DD = empty((ntask, CW), u.dtype)
    for blk in range(nblk - 1, -1, -1):
        t0 = blk * tb
        tl = min(L, t0 + tb) - t0
        pB = empty((nck, b, tl, n), u.dtype)              # the block's sums, per chunk
        pC = empty_like(pB)
        parallel_for(_scan_bwd_block_tasks, ntask, (u, dt, AT, B, C, D, z, dy, gated, t0, tl, ck[blk],
                                                     blk == nblk - 1, G, DA, DD, du, ddt, dz, pB, pC),
                     cost=b * tl * d * (60 * n + 100))
        parallel_for(_scan_merge_bc_tasks, b, (pB, pC, t0, dB, dC), cost=pB.size)
    dA = empty_like(A)
    dD = empty_like(D)
    parallel_for(_scan_merge_ad_tasks, d, (DA, DD, b, dA, dD), cost=DA.size)
    return du, ddt, dA, dB, dC, dD, dz


def selective_scan_fwd(u, delta, A, B, C, D):
    """Selective scan forward (compiled twin of the reference).

    Parameters
    ----------
    u : ndarray, shape (b, L, d)
        Input sequence (after the causal convolution and SiLU).
    delta : ndarray, shape (b, L, d)
        Positive step sizes (after softplus).
    A : ndarray, shape (d, n)
        State matrix (negative: ``-exp(A_log)``).
    B, C : ndarray, shape (b, L, n)
        Input and output projections, shared across channels.
    D : ndarray, shape (d,)
        Skip connection.

    Returns
    -------
    y : ndarray, shape (b, L, d)
        In the common float dtype of the inputs.

    Raises
    ------
    ValueError
        If the shapes do not fit together.
    TypeError
        If an input is not real numeric.
    """
    u, delta, A, B, C, D = _scan_inputs(["u", "delta", "A", "B", "C", "D"], [u, delta, A, B, C, D])
    return _scan_fwd(u, delta, A, B, C, D, empty((1, 1, 1), u.dtype), False)


def selective_scan_bwd(u, delta, A, B, C, D, dy):
    """Selective scan backward: gradients of ``sum(dy * y)`` (compiled twin).

    Hidden states are recomputed block by block per (batch row, channel chunk); no
    ``(b, L, d, n)`` array is ever held.

    Parameters
    ----------
    u, delta, A, B, C, D
        As in :func:`selective_scan_fwd`.
    dy : ndarray, shape (b, L, d)
        Gradient with respect to ``y``.

    Returns
    -------
    du, ddelta : ndarray, shape (b, L, d)
    dA : ndarray, shape (d, n)
    dB, dC : ndarray, shape (b, L, n)
    dD : ndarray, shape (d,)
    """
    u, delta, A, B, C, D, dy = _scan_inputs(
        ["u", "delta", "A", "B", "C", "D", "dy"], [u, delta, A, B, C, D, dy])
    return _scan_bwd(u, delta, A, B, C, D, empty((1, 1, 1), u.dtype), dy, False)[:6]


def selective_scan_gated_fwd(u, dt, A, B, C, D, z):
    """Mamba's scan with its elementwise neighbours fused (compiled twin).

    ``delta = softplus(dt)`` is computed inside the time loop and the output is gated
    by ``silu(z)``, so no full-size ``delta``, gate or pre-gate array is made.

    Parameters
    ----------
    u : ndarray, shape (b, L, d)
    dt : ndarray, shape (b, L, d)
        Step sizes before the softplus (``dt_proj`` output, bias included).
    A, B, C, D
        As in :func:`selective_scan_fwd`.
    z : ndarray, shape (b, L, d)
        Gate branch before the SiLU.

    Returns
    -------
    out : ndarray, shape (b, L, d)
        ``selective_scan_fwd(u, softplus(dt), A, B, C, D) * z * sigmoid(z)``.
    """
    u, dt, A, B, C, D, z = _scan_inputs(["u", "dt", "A", "B", "C", "D", "z"], [u, dt, A, B, C, D, z])
    return _scan_fwd(u, dt, A, B, C, D, z, True)


def selective_scan_gated_bwd(u, dt, A, B, C, D, z, dout):
    """Backward of :func:`selective_scan_gated_fwd` (compiled twin).

    Parameters
    ----------
    u, dt, A, B, C, D, z
        As in :func:`selective_scan_gated_fwd`.
    dout : ndarray, shape (b, L, d)
        Gradient with respect to the gated output.

    Returns
    -------
    du, ddt : ndarray, shape (b, L, d)
        ``ddt`` is with respect to ``dt`` (through the softplus).
    dA : ndarray, shape (d, n)
    dB, dC : ndarray, shape (b, L, n)
    dD : ndarray, shape (d,)
    dz : ndarray, shape (b, L, d)
    """
    u, dt, A, B, C, D, z, dout = _scan_inputs(
        ["u", "dt", "A", "B", "C", "D", "z", "dout"], [u, dt, A, B, C, D, z, dout])
    return _scan_bwd(u, dt, A, B, C, D, z, dout, True)
