"""Selective scan (Mamba's S6 recurrence), forward and backward, compiled.

Mirrors the scan section of :mod:`engine.kernels.numpy_ref`. ``gated`` switches on the
fused variant: ``dt`` then holds the step sizes before the softplus and ``z`` the gate
branch before the SiLU.

The backward keeps no ``(b, L, d, n)`` array. It walks time backwards in blocks of
``tb`` steps; per (batch row, channel) it recomputes the block's hidden states from a
checkpoint into a small local ``(tb + 1, n)`` buffer. Its memory grows like the inputs
(plus checkpoints of ``L / tb`` states), not like inputs x ``n``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine.kernels.numba._jit import JIT_SCAN, as_float_arrays, check_ndim, check_shape, n_chunks
from engine.kernels.numba._math import dot, exp, sigmoid, softplus


# Elements of one backward block buffer (tb * n): two such buffers per task (states
# and decays) stay in the L2 cache.
_SCAN_BLOCK_ELEMS = 16384


@njit(**JIT_SCAN)
def _scan_fwd_kernel(u, dt, A, B, C, D, z, gated, nck, y):
    b, L, d = u.shape
    n = A.shape[1]
    zero = u.dtype.type(0)
    one = u.dtype.type(1)
    for task in prange(b * nck):
        bi = task // nck
        ci = task - bi * nck
        c0 = ci * d // nck
        c1 = (ci + 1) * d // nck
        h = np.zeros((c1 - c0, n), dtype=u.dtype)        # only the running state
        dl = np.empty(c1 - c0, dtype=u.dtype)            # delta of this step, per channel
        gate = np.empty(c1 - c0, dtype=u.dtype)
        for t in range(L):
            # The softplus and the gate run over contiguous channels, so they vectorise.
            dtr = dt[bi, t]
            if gated:
                zr = z[bi, t]
                for c in range(c0, c1):
                    dl[c - c0] = softplus(dtr[c], zero, one)
                    gate[c - c0] = zr[c] * sigmoid(zr[c], one)
            else:
                for c in range(c0, c1):
                    dl[c - c0] = dtr[c]
            Bt = B[bi, t]
            Ct = C[bi, t]
            for c in range(c0, c1):
                dlt = dl[c - c0]
                dbu = dlt * u[bi, t, c]
                hc = h[c - c0]
                Ac = A[c]
                # Separate from the sum below so that this loop vectorises.
                for k in range(n):
                    hc[k] = exp(dlt * Ac[k]) * hc[k] + dbu * Bt[k]
                yv = dot(Ct, hc, n, zero) + D[c] * u[bi, t, c]
                y[bi, t, c] = yv * gate[c - c0] if gated else yv


@njit(**JIT_SCAN)
def _scan_checkpoints(u, dt, A, B, gated, nck, tb, ck):
    """``ck[m, b, c] = h[m * tb - 1]``: the state entering block ``m`` (``ck[0] = 0``)."""
    b, L, d = u.shape
    n = A.shape[1]
    zero = u.dtype.type(0)
    one = u.dtype.type(1)
    for task in prange(b * nck):
        bi = task // nck
        ci = task - bi * nck
        c0 = ci * d // nck
        c1 = (ci + 1) * d // nck
        h = np.zeros((c1 - c0, n), dtype=u.dtype)
        dl = np.empty(c1 - c0, dtype=u.dtype)
        for t in range(L):
            if t > 0 and t % tb == 0:
                for c in range(c0, c1):
                    for k in range(n):
                        ck[t // tb, bi, c, k] = h[c - c0, k]
            dtr = dt[bi, t]
            if gated:
                for c in range(c0, c1):
                    dl[c - c0] = softplus(dtr[c], zero, one)
            else:
                for c in range(c0, c1):
                    dl[c - c0] = dtr[c]
            Bt = B[bi, t]
            for c in range(c0, c1):
                dlt = dl[c - c0]
                dbu = dlt * u[bi, t, c]
                hc = h[c - c0]
                Ac = A[c]
                for k in range(n):
                    hc[k] = exp(dlt * Ac[k]) * hc[k] + dbu * Bt[k]


@njit(**JIT_SCAN)
def _scan_bwd_kernel(u, dt, A, B, C, D, z, dy, gated, nck, tb, du, ddt, dA, dB, dC, dD, dz):
    b, L, d = u.shape
    n = A.shape[1]
    zero = u.dtype.type(0)
    one = u.dtype.type(1)
    nblk = (L + tb - 1) // tb
    ck = np.zeros((max(nblk, 1), b, d, n), dtype=u.dtype)
    if nblk > 1:
        _scan_checkpoints(u, dt, A, B, gated, nck, tb, ck)
    g = np.zeros((b, d, n), dtype=u.dtype)              # dLoss/dh, carried across blocks
    dA_b = np.zeros((b, d, n), dtype=u.dtype)           # per batch row, summed at the end
    dD_b = np.zeros((b, d), dtype=u.dtype)
    tbl = min(tb, L)
    pB = np.empty((nck, b, tbl, n), dtype=u.dtype)      # per channel chunk, for one block
    pC = np.empty((nck, b, tbl, n), dtype=u.dtype)
    for blk in range(nblk - 1, -1, -1):
        t0 = blk * tb
        tl = min(L, t0 + tb) - t0
        for task in prange(b * nck):
            bi = task // nck
            ci = task - bi * nck
            c0 = ci * d // nck
            c1 = (ci + 1) * d // nck
            hs = np.empty((tl + 1, n), dtype=u.dtype)   # hs[s] = h[t0 + s - 1]
            aa = np.empty((tl, n), dtype=u.dtype)       # aa[s] = exp(delta[t0 + s] * A)
            ys = np.empty(tl, dtype=u.dtype)            # y[t0 + s] before the gate
            # delta, sigmoid(dt) and sigmoid(z) of the block for the chunk's channels,
            # computed over contiguous channels so that they vectorise
            cw = c1 - c0
            dlb = np.empty((tl, cw), dtype=u.dtype)
            sdb = np.empty((tl, cw) if gated else (0, 0), dtype=u.dtype)
            szb = np.empty((tl, cw) if gated else (0, 0), dtype=u.dtype)
            for s in range(tl):
                dtr = dt[bi, t0 + s]
                dls = dlb[s]
                if gated:
                    zr = z[bi, t0 + s]
                    sds = sdb[s]
                    szs = szb[s]
                    for c in range(c0, c1):
                        dls[c - c0] = softplus(dtr[c], zero, one)
                        sds[c - c0] = sigmoid(dtr[c], one)
                        szs[c - c0] = sigmoid(zr[c], one)
                else:
                    for c in range(c0, c1):
                        dls[c - c0] = dtr[c]
            pBt = pB[ci, bi]
            pCt = pC[ci, bi]
            for s in range(tl):
                for k in range(n):
                    pBt[s, k] = zero
                    pCt[s, k] = zero
            for c in range(c0, c1):
                Ac = A[c]
                gc = g[bi, c]
                dAc = dA_b[bi, c]
                for k in range(n):
                    hs[0, k] = ck[blk, bi, c, k]
                for s in range(tl):
                    t = t0 + s
                    dlt = dlb[s, c - c0]
                    dbu = dlt * u[bi, t, c]
                    Bt = B[bi, t]
                    hp = hs[s]
                    hn = hs[s + 1]
                    a_s = aa[s]
                    for k in range(n):
                        a = exp(dlt * Ac[k])
                        a_s[k] = a
                        hn[k] = a * hp[k] + dbu * Bt[k]
                    if gated:
                        ys[s] = dot(C[bi, t], hn, n, zero) + D[c] * u[bi, t, c]
                for s in range(tl - 1, -1, -1):
                    t = t0 + s
                    dlt = dlb[s, c - c0]
                    uu = u[bi, t, c]
                    dbu = dlt * uu
                    if gated:
                        zv = z[bi, t, c]
                        sg = szb[s, c - c0]
                        dov = dy[bi, t, c]
                        dz[bi, t, c] = dov * ys[s] * (sg * (one + zv * (one - sg)))
                        dyv = dov * (zv * sg)
                    else:
                        dyv = dy[bi, t, c]
                    Bt = B[bi, t]
                    Ct = C[bi, t]
                    hp = hs[s]
                    hn = hs[s + 1]
                    a_s = aa[s]
                    pBs = pBt[s]
                    pCs = pCt[s]
                    gB = zero
                    gaA = zero
                    for k in range(n):
                        gk = gc[k] + dyv * Ct[k]
                        ga = gk * hp[k] * a_s[k]
                        gaA += ga * Ac[k]
                        dAc[k] += ga * dlt
                        gB += gk * Bt[k]
                        pBs[k] += gk * dbu
                        pCs[k] += dyv * hn[k]
                        gc[k] = gk * a_s[k]
                    ddv = gaA + gB * uu
                    if gated:
                        ddv = ddv * sdb[s, c - c0]
                    ddt[bi, t, c] = ddv
                    du[bi, t, c] = dyv * D[c] + gB * dlt
                    dD_b[bi, c] += dyv * uu
        for bi in prange(b):
            for s in range(tl):
                for k in range(n):
                    accB = pB[0, bi, s, k]
                    accC = pC[0, bi, s, k]
                    for ci in range(1, nck):
                        accB += pB[ci, bi, s, k]
                        accC += pC[ci, bi, s, k]
                    dB[bi, t0 + s, k] = accB
                    dC[bi, t0 + s, k] = accC
    for c in prange(d):
        for k in range(n):
            acc = zero
            for bi in range(b):
                acc += dA_b[bi, c, k]
            dA[c, k] = acc
        acc = zero
        for bi in range(b):
            acc += dD_b[bi, c]
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
    """Steps per backward block: two (tb, n) buffers per task stay cache-sized."""
    return max(1, min(max(L, 1), max(16, _SCAN_BLOCK_ELEMS // max(n, 1))))


def _scan_fwd(u, dt, A, B, C, D, z, gated):
    b, _, d = u.shape
    y = np.empty_like(u)
    _scan_fwd_kernel(u, dt, A, B, C, D, z, gated, n_chunks(b, d), y)
    return y


def _scan_bwd(u, dt, A, B, C, D, z, dy, gated):
    b, L, d = u.shape
    du = np.empty_like(u)
    ddt = np.empty_like(u)
    dA = np.empty_like(A)
    dB = np.empty_like(B)
    dC = np.empty_like(C)
    dD = np.empty_like(D)
    dz = np.empty_like(u) if gated else np.empty((1, 1, 1), dtype=u.dtype)
    _scan_bwd_kernel(u, dt, A, B, C, D, z, dy, gated, n_chunks(b, d), _scan_block_len(L, A.shape[1]),
                     du, ddt, dA, dB, dC, dD, dz)
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
    return _scan_fwd(u, delta, A, B, C, D, np.empty((1, 1, 1), dtype=u.dtype), False)


def selective_scan_bwd(u, delta, A, B, C, D, dy):
    """Selective scan backward: gradients of ``sum(dy * y)`` (compiled twin).

    Hidden states are recomputed block by block per (batch row, channel); no
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
    return _scan_bwd(u, delta, A, B, C, D, np.empty((1, 1, 1), dtype=u.dtype), dy, False)[:6]


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
