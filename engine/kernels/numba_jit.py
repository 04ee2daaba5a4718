"""Compiled kernels: the time loops of :mod:`engine.kernels.numpy_ref` in Numba.

Every public function here has the name, signature, output shapes and dtypes of its
twin in :mod:`engine.kernels.numpy_ref`, which stays the definition of correct (the
parity tests hold the two together). Each public function only validates and prepares
its inputs (consistent shapes, one float dtype, C-contiguous) and hands them to a
private ``_*_kernel`` compiled with ``njit(parallel=True, cache=True)``.

How the work is split
---------------------
* Batch rows and channel chunks run in parallel (``prange``); the recurrence over time
  stays sequential inside each task.
* A sum across the parallel axis (``dA`` over the batch, ``dB``/``dC`` over channels,
  ``dD``, ``dW_hh``, ``db_hh``, ``dweight``, ``dbias``) is never a shared ``+=``: each
  task writes its own slot of a buffer indexed by task (not by thread), and the slots
  are added afterwards in a fixed order, or the task owns the output outright. How the
  work is cut into tasks depends only on the shapes, never on the thread count, so the
  results are bit-identical run after run and for any number of threads.
* The selective-scan backward keeps no ``(b, L, d, n)`` array. It walks time backwards
  in blocks of ``tb`` steps; per (batch row, channel) it recomputes the block's hidden
  states from a checkpoint into a small local ``(tb + 1, n)`` buffer. Its memory grows
  like the inputs (plus checkpoints of ``L / tb`` states), not like inputs x ``n``.
* Exponentials (the scan's ``exp(delta * A)``, softplus, sigmoids, GRU's tanh) go
  through a branch-free exp that LLVM vectorises (``_exp``, below), within a few ulp of
  libm.

The only fast-math flag is ``contract`` (fused multiply-add) in the scan kernels; NaN
and inf propagate as in NumPy. Float32 inputs stay float32 all the way through
(constants are made with the input's dtype, since a bare ``1.0`` would promote float32
arithmetic to float64 inside a kernel).
"""
from __future__ import annotations

import math
import os
import time

# Numba's OpenMP thread pool spins between parallel regions by default. On a machine
# shared with other busy processes (2 cores here) the spinning workers steal the time
# slices the working ones need, and a 3 ms kernel took 40 ms; sleeping workers cost a
# few microseconds per region instead. Set before the pool starts; a value given in the
# environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic, overload

__all__ = [
    "selective_scan_fwd",
    "selective_scan_bwd",
    "mingru_fwd",
    "mingru_bwd",
    "gru_fwd",
    "gru_bwd",
    "causal_conv1d_fwd",
    "causal_conv1d_bwd",
    "selective_scan_gated_fwd",
    "selective_scan_gated_bwd",
    "mingru_logits_fwd",
    "mingru_logits_bwd",
    "causal_conv1d_silu_fwd",
    "causal_conv1d_silu_bwd",
    "warmup",
]

# error_model="numpy": a float division by zero gives inf/NaN instead of raising, as in
# NumPy. nogil lets other Python threads run while a kernel works.
_JIT = dict(parallel=True, cache=True, error_model="numpy", nogil=True)
# The selective scan may fuse multiply-adds (FMA): "contract" changes rounding by at
# most an ulp and never touches NaN/inf handling, unlike the other fast-math flags.
_JIT_SCAN = dict(_JIT, fastmath={"contract"})

# Enough tasks to keep a few threads busy when the batch is small. The split is a
# function of the shapes only: it fixes the order of every cross-task sum.
_MIN_TASKS = 16
# Elements of one selective-scan backward block buffer (tb * n): two such buffers per
# task (states and decays) stay in the L2 cache.
_SCAN_BLOCK_ELEMS = 16384
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------------
# Input preparation
# ----------------------------------------------------------------------------------
def _as_float_arrays(names, arrays):
    """Return C-contiguous arrays of one common float dtype.

    The common dtype is what NumPy promotion gives for the inputs, floored at float32
    (mixing float32 and float64 gives float64, integers give float64).
    """
    arrs = [np.asarray(a) for a in arrays]
    for name, a in zip(names, arrs):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    dtype = np.result_type(*arrs, np.float32)
    if dtype not in _FLOATS:
        raise TypeError(f"inputs promote to {dtype}; only float32 and float64 are supported")
    dtype = np.dtype(dtype.name)                       # native byte order
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrs]


def _check_shape(name, a, shape):
    """Raise ``ValueError`` unless ``a.shape == shape``."""
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")


def _check_ndim(name, a, ndim):
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")


def _n_chunks(b, d):
    """Channel chunks per batch row so that ``b * chunks >= _MIN_TASKS`` where possible."""
    if b <= 0 or d <= 0:
        return 1
    return max(1, min(d, -(-_MIN_TASKS // b)))


# ----------------------------------------------------------------------------------
# A vectorisable exp
# Without Intel's SVML, LLVM calls libm's scalar exp once per element, which caps the
# selective scan (b*L*d*n exps). This exp is branch-free arithmetic that LLVM turns into
# AVX2 code: exp(x) = 2**k * e**r with k = round(x / ln 2), |r| <= ln(2) / 2, e**r by
# its Taylor polynomial (degree 13 for float64, 7 for float32: truncation below half an
# ulp), 2**k assembled in the exponent bits. Within 2 ulp of libm; NaN stays NaN,
# overflow gives inf, underflow goes through subnormals to 0.
# ----------------------------------------------------------------------------------
@intrinsic
def _bitcast(typingctx, value):
    """Reinterpret the bits of a float64/int64 (float32/int32) as the other type."""
    pairs = {
        types.int64: (types.float64, ir.DoubleType()),
        types.int32: (types.float32, ir.FloatType()),
        types.float64: (types.int64, ir.IntType(64)),
        types.float32: (types.int32, ir.IntType(32)),
    }
    if value not in pairs:
        return None
    ret, llvm_type = pairs[value]

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_type)

    return ret(value), codegen


def _exp(x):
    """``exp(x)`` for a float scalar inside compiled code (see the overload)."""
    return math.exp(x)


@overload(_exp)
def _exp_overload(x):
    if x == types.float64:
        def exp64(x):
            # Clamping keeps k inside the exponent's range; the tails are rescaled.
            xc = x if x > -746.0 else -746.0
            xc = xc if xc < 710.0 else 710.0
            # Adding then subtracting 1.5 * 2**52 rounds to the nearest integer and
            # leaves that integer in the low bits of the sum.
            shift = 6755399441055744.0
            kf = (xc * 1.4426950408889634 + shift) - shift
            # ln 2 split in two so that kf * ln2_hi is exact
            r = (xc - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10
            p = 1.0 / 6227020800.0
            p = p * r + 1.0 / 479001600.0
            p = p * r + 1.0 / 39916800.0
            p = p * r + 1.0 / 3628800.0
            p = p * r + 1.0 / 362880.0
            p = p * r + 1.0 / 40320.0
            p = p * r + 1.0 / 5040.0
            p = p * r + 1.0 / 720.0
            p = p * r + 1.0 / 120.0
            p = p * r + 1.0 / 24.0
            p = p * r + 1.0 / 6.0
            p = p * r + 0.5
            p = p * r + 1.0
            p = p * r + 1.0
            # 2**k alone would leave the normal range near the ends: move 100 powers
            # of two into a constant factor there, so one final rounding remains.
            lo = xc < -700.0
            hi = xc > 700.0
            adj = 100.0 if lo else (-100.0 if hi else 0.0)
            scale = 2.0 ** -100 if lo else (2.0 ** 100 if hi else 1.0)
            bits = _bitcast((kf + adj) + shift)
            res = p * _bitcast((bits + 1023) << 52) * scale
            return res if x == x else x
        return exp64
    if x == types.float32:
        def exp32(x):
            f = np.float32
            xc = x if x > f(-104.0) else f(-104.0)
            xc = xc if xc < f(89.0) else f(89.0)
            shift = f(12582912.0)                      # 1.5 * 2**23
            kf = (xc * f(1.44269504) + shift) - shift
            r = (xc - kf * f(0.693359375)) - kf * f(-2.12194440e-4)
            p = f(1.0 / 5040.0)
            p = p * r + f(1.0 / 720.0)
            p = p * r + f(1.0 / 120.0)
            p = p * r + f(1.0 / 24.0)
            p = p * r + f(1.0 / 6.0)
            p = p * r + f(0.5)
            p = p * r + f(1.0)
            p = p * r + f(1.0)
            lo = xc < f(-80.0)
            hi = xc > f(80.0)
            adj = f(40.0) if lo else (f(-40.0) if hi else f(0.0))
            scale = f(2.0 ** -40) if lo else (f(2.0 ** 40) if hi else f(1.0))
            bits = _bitcast((kf + adj) + shift)
            res = p * _bitcast(np.int32((bits + np.int32(127)) << np.int32(23))) * scale
            return res if x == x else x
        return exp32
    return None


def _log1p01(e):
    """``log1p(e)`` for ``0 <= e <= 1`` inside compiled code (see the overload)."""
    return math.log1p(e)


@overload(_log1p01)
def _log1p01_overload(e):
    # log1p(e) = 2 atanh(s) with s = e / (2 + e) in [0, 1/3]: the odd series of atanh
    # converges by s**2 <= 1/9 per term and keeps full relative accuracy for tiny e
    # (where 1 + e would round to 1). Branch-free, so softplus vectorises too.
    if e == types.float64:
        def log1p64(e):
            s = e / (2.0 + e)
            q = s * s
            p = 1.0 / 33.0
            p = p * q + 1.0 / 31.0
            p = p * q + 1.0 / 29.0
            p = p * q + 1.0 / 27.0
            p = p * q + 1.0 / 25.0
            p = p * q + 1.0 / 23.0
            p = p * q + 1.0 / 21.0
            p = p * q + 1.0 / 19.0
            p = p * q + 1.0 / 17.0
            p = p * q + 1.0 / 15.0
            p = p * q + 1.0 / 13.0
            p = p * q + 1.0 / 11.0
            p = p * q + 1.0 / 9.0
            p = p * q + 1.0 / 7.0
            p = p * q + 1.0 / 5.0
            p = p * q + 1.0 / 3.0
            p = p * q + 1.0
            return 2.0 * s * p
        return log1p64
    if e == types.float32:
        def log1p32(e):
            f = np.float32
            s = e / (f(2.0) + e)
            q = s * s
            p = f(1.0 / 15.0)
            p = p * q + f(1.0 / 13.0)
            p = p * q + f(1.0 / 11.0)
            p = p * q + f(1.0 / 9.0)
            p = p * q + f(1.0 / 7.0)
            p = p * q + f(1.0 / 5.0)
            p = p * q + f(1.0 / 3.0)
            p = p * q + f(1.0)
            return f(2.0) * s * p
        return log1p32
    return None


def _tanh(x):
    """``tanh(x)`` inside compiled code (see the overload)."""
    return math.tanh(x)


@overload(_tanh)
def _tanh_overload(x):
    # sign(x) * (1 - 2 / (e^{2|x|} + 1)) through the vectorisable exp (libm's tanh is a
    # scalar call and dominated the GRU kernels). Near 0 that difference loses relative
    # accuracy, so tiny |x| take the series x - x^3/3 + 2x^5/15 instead; the worst
    # relative error is then ~3e-14 (float64) / ~4e-7 (float32), right at the switch.
    if x == types.float64:
        def tanh64(x):
            ax = abs(x)
            big = 1.0 - 2.0 / (_exp(2.0 * ax) + 1.0)
            q = x * x
            small = x * (1.0 + q * (-1.0 / 3.0 + q * (2.0 / 15.0)))
            t = big if x >= 0.0 else -big
            return small if ax < 0.004 else t
        return tanh64
    if x == types.float32:
        def tanh32(x):
            f = np.float32
            ax = abs(x)
            big = f(1.0) - f(2.0) / (_exp(f(2.0) * ax) + f(1.0))
            q = x * x
            small = x * (f(1.0) + q * (f(-1.0 / 3.0) + q * f(2.0 / 15.0)))
            t = big if x >= f(0.0) else -big
            return small if ax < f(0.15) else t
        return tanh32
    return None


@njit(**_JIT_SCAN)
def _elementwise_kernel(x, which, out):
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    for i in prange(x.size):
        if which == 0:
            out[i] = _exp(x[i])
        elif which == 1:
            out[i] = _softplus(x[i], zero, one)
        elif which == 2:
            out[i] = _sigmoid(x[i], one)
        else:
            out[i] = _tanh(x[i])


def _vector_math(x, fn):
    """The compiled ``"exp"``, ``"softplus"``, ``"sigmoid"`` or ``"tanh"`` over an array (for tests)."""
    (x,) = _as_float_arrays(["x"], [x])
    flat = np.ascontiguousarray(x.ravel())
    out = np.empty_like(flat)
    _elementwise_kernel(flat, ("exp", "softplus", "sigmoid", "tanh").index(fn), out)
    return out.reshape(x.shape)


# Scalar helpers, inlined (at Numba IR level) so the loops that call them vectorise.
# ``one``/``zero`` carry the dtype: a literal 1.0 would be float64.
@njit(inline="always", error_model="numpy")
def _sigmoid(x, one):
    # _exp(-x) -> inf for very negative x gives 0, -> 0 for large x gives 1: no overflow
    return one / (one + _exp(-x))


@njit(inline="always", error_model="numpy")
def _softplus(x, zero, one):
    # max(x, 0) + log1p(e^-|x|): no overflow, keeps small values; NaN stays NaN
    return (x if x > zero else zero) + _log1p01(_exp(-abs(x)))


@njit(inline="always", error_model="numpy")
def _dot(a, b, n, zero):
    """``sum(a[:n] * b[:n])`` in four interleaved partial sums.

    One running sum is a chain of dependent adds (a few cycles each, n per channel and
    step); four independent chains overlap and LLVM packs them into one vector. The
    order is fixed, so results stay bit-reproducible.
    """
    s0 = zero
    s1 = zero
    s2 = zero
    s3 = zero
    m = n - n % 4
    for k in range(0, m, 4):
        s0 += a[k] * b[k]
        s1 += a[k + 1] * b[k + 1]
        s2 += a[k + 2] * b[k + 2]
        s3 += a[k + 3] * b[k + 3]
    for k in range(m, n):
        s0 += a[k] * b[k]
    return (s0 + s1) + (s2 + s3)


# ----------------------------------------------------------------------------------
# Selective scan. ``gated`` switches on the fused variant: ``dt`` then holds the step
# sizes before the softplus and ``z`` the gate branch before the SiLU.
# ----------------------------------------------------------------------------------
@njit(**_JIT_SCAN)
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
                    dl[c - c0] = _softplus(dtr[c], zero, one)
                    gate[c - c0] = zr[c] * _sigmoid(zr[c], one)
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
                    hc[k] = _exp(dlt * Ac[k]) * hc[k] + dbu * Bt[k]
                yv = _dot(Ct, hc, n, zero) + D[c] * u[bi, t, c]
                y[bi, t, c] = yv * gate[c - c0] if gated else yv


@njit(**_JIT_SCAN)
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
                    dl[c - c0] = _softplus(dtr[c], zero, one)
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
                    hc[k] = _exp(dlt * Ac[k]) * hc[k] + dbu * Bt[k]


@njit(**_JIT_SCAN)
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
                        dls[c - c0] = _softplus(dtr[c], zero, one)
                        sds[c - c0] = _sigmoid(dtr[c], one)
                        szs[c - c0] = _sigmoid(zr[c], one)
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
                        a = _exp(dlt * Ac[k])
                        a_s[k] = a
                        hn[k] = a * hp[k] + dbu * Bt[k]
                    if gated:
                        ys[s] = _dot(C[bi, t], hn, n, zero) + D[c] * u[bi, t, c]
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
    arrs = _as_float_arrays(names, arrays)
    u, _, A = arrs[0], arrs[1], arrs[2]
    _check_ndim("u", u, 3)
    _check_ndim("A", A, 2)
    b, L, d = u.shape
    n = A.shape[1]
    _check_shape(names[1], arrs[1], (b, L, d))
    _check_shape("A", A, (d, n))
    _check_shape("B", arrs[3], (b, L, n))
    _check_shape("C", arrs[4], (b, L, n))
    _check_shape("D", arrs[5], (d,))
    for name, a in zip(names[6:], arrs[6:]):
        _check_shape(name, a, (b, L, d))
    return arrs


def _scan_block_len(L, n):
    """Steps per backward block: two (tb, n) buffers per task stay cache-sized."""
    return max(1, min(max(L, 1), max(16, _SCAN_BLOCK_ELEMS // max(n, 1))))


def _scan_fwd(u, dt, A, B, C, D, z, gated):
    b, _, d = u.shape
    y = np.empty_like(u)
    _scan_fwd_kernel(u, dt, A, B, C, D, z, gated, _n_chunks(b, d), y)
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
    _scan_bwd_kernel(u, dt, A, B, C, D, z, dy, gated, _n_chunks(b, d), _scan_block_len(L, A.shape[1]),
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


# ----------------------------------------------------------------------------------
# minGRU. ``logits`` switches on the fused variant: ``z`` holds the gate before its
# sigmoid.
# ----------------------------------------------------------------------------------
@njit(**_JIT)
def _mingru_fwd_kernel(z, h_tilde, logits, nck, h):
    b, L, H = z.shape
    one = z.dtype.type(1)
    for task in prange(b * nck):
        bi = task // nck
        ci = task - bi * nck
        j0 = ci * H // nck
        j1 = (ci + 1) * H // nck
        prev = np.zeros(j1 - j0, dtype=z.dtype)
        for t in range(L):
            zt = z[bi, t]
            htt = h_tilde[bi, t]
            ht = h[bi, t]
            for j in range(j0, j1):
                zj = _sigmoid(zt[j], one) if logits else zt[j]
                p = (one - zj) * prev[j - j0] + zj * htt[j]
                prev[j - j0] = p
                ht[j] = p


@njit(**_JIT)
def _mingru_bwd_kernel(z, h_tilde, h, dh, logits, nck, dz, dh_tilde):
    b, L, H = z.shape
    one = z.dtype.type(1)
    zeros = np.zeros(H, dtype=z.dtype)                  # h[-1]
    for task in prange(b * nck):
        bi = task // nck
        ci = task - bi * nck
        j0 = ci * H // nck
        j1 = (ci + 1) * H // nck
        g = np.zeros(j1 - j0, dtype=z.dtype)            # dLoss/dh[t] including the future
        for t in range(L - 1, -1, -1):
            hp = h[bi, t - 1] if t > 0 else zeros
            zt = z[bi, t]
            htt = h_tilde[bi, t]
            dht = dh[bi, t]
            dzt = dz[bi, t]
            dhtt = dh_tilde[bi, t]
            for j in range(j0, j1):
                gj = g[j - j0] + dht[j]
                zj = _sigmoid(zt[j], one) if logits else zt[j]
                dzj = gj * (htt[j] - hp[j])
                dzt[j] = dzj * (zj * (one - zj)) if logits else dzj
                dhtt[j] = gj * zj
                g[j - j0] = gj * (one - zj)


def _mingru_inputs(names, arrays):
    arrs = _as_float_arrays(names, arrays)
    _check_ndim(names[0], arrs[0], 3)
    for name, a in zip(names[1:], arrs[1:]):
        _check_shape(name, a, arrs[0].shape)
    return arrs


def _mingru_fwd(z, h_tilde, logits):
    h = np.empty_like(z)
    _mingru_fwd_kernel(z, h_tilde, logits, _n_chunks(z.shape[0], z.shape[2]), h)
    return h


def _mingru_bwd(z, h_tilde, h, dh, logits):
    dz = np.empty_like(z)
    dh_tilde = np.empty_like(z)
    _mingru_bwd_kernel(z, h_tilde, h, dh, logits, _n_chunks(z.shape[0], z.shape[2]), dz, dh_tilde)
    return dz, dh_tilde


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
    return _mingru_fwd(z, h_tilde, False)


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
    return _mingru_bwd(z, h_tilde, h, dh, False)


def mingru_logits_fwd(z_logit, h_tilde):
    """minGRU recurrence taking the update gate before its sigmoid (compiled twin).

    Parameters
    ----------
    z_logit : ndarray, shape (b, L, H)
        ``linear_z(x)``; the gate is ``sigmoid(z_logit)``.
    h_tilde : ndarray, shape (b, L, H)

    Returns
    -------
    h : ndarray, shape (b, L, H)
    """
    z_logit, h_tilde = _mingru_inputs(["z_logit", "h_tilde"], [z_logit, h_tilde])
    return _mingru_fwd(z_logit, h_tilde, True)


def mingru_logits_bwd(z_logit, h_tilde, h, dh):
    """Backward of :func:`mingru_logits_fwd` (compiled twin).

    Returns
    -------
    dz_logit, dh_tilde : ndarray, shape (b, L, H)
    """
    z_logit, h_tilde, h, dh = _mingru_inputs(
        ["z_logit", "h_tilde", "h", "dh"], [z_logit, h_tilde, h, dh])
    return _mingru_bwd(z_logit, h_tilde, h, dh, True)


# ----------------------------------------------------------------------------------
# GRU
# The hidden matmul is written as loops over the transposed weight so the innermost
# loop runs over contiguous memory; Numba's np.dot would need SciPy at run time.
# ----------------------------------------------------------------------------------
@njit(**_JIT)
def _gru_fwd_kernel(gi, W_hhT, b_hh, h, gates):
    b, L, H3 = gi.shape
    H = H3 // 3
    one = gi.dtype.type(1)
    for bi in prange(b):
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
                r = _sigmoid(git[j] + gh[j], one)
                zz = _sigmoid(git[H + j] + gh[H + j], one)
                ghn = gh[2 * H + j]
                nn = _tanh(git[2 * H + j] + r * ghn)
                p = (one - zz) * nn + zz * prev[j]
                prev[j] = p
                ht[j] = p
                gt[j] = r
                gt[H + j] = zz
                gt[2 * H + j] = nn
                gt[3 * H + j] = ghn


@njit(**_JIT)
def _gru_bwd_kernel(W_hh, h, gates, dh, dgi, dgh):
    b, L, H = h.shape
    H3 = 3 * H
    one = h.dtype.type(1)
    zeros = np.zeros(H, dtype=h.dtype)                  # h[-1]
    for bi in prange(b):
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


@njit(**_JIT)
def _gru_param_grads_kernel(h, dgh, nrow, dW_hh, db_hh):
    """``dW_hh = sum_{b,t} dgh[b,t]^T h[b,t-1]``, ``db_hh = sum_{b,t} dgh[b,t]``.

    Each task owns ``nrow`` rows of the output, so the sum over (b, t) runs in one
    fixed order per element whatever the split.
    """
    b, L, H = h.shape
    H3 = 3 * H
    ntask = (H3 + nrow - 1) // nrow
    for task in prange(ntask):
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
    _check_ndim("gi", gi, 3)
    H3 = gi.shape[2]
    if H3 % 3:
        raise ValueError(f"gi's last axis must be 3*H (gate order r, z, n), got {H3}")
    H = H3 // 3
    _check_shape("W_hh", W_hh, (H3, H))
    _check_shape("b_hh", b_hh, (H3,))
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
    gi, W_hh, b_hh = _as_float_arrays(["gi", "W_hh", "b_hh"], [gi, W_hh, b_hh])
    H = _gru_check(gi, W_hh, b_hh)
    b, L, _ = gi.shape
    h = np.empty((b, L, H), dtype=gi.dtype)
    gates = np.empty((b, L, 4 * H), dtype=gi.dtype)
    _gru_fwd_kernel(gi, np.ascontiguousarray(W_hh.T), b_hh, h, gates)
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
    gi, W_hh, b_hh, h, gates, dh = _as_float_arrays(
        ["gi", "W_hh", "b_hh", "h", "gates", "dh"], [gi, W_hh, b_hh, h, gates, dh])
    H = _gru_check(gi, W_hh, b_hh)
    b, L, _ = gi.shape
    _check_shape("h", h, (b, L, H))
    _check_shape("gates", gates, (b, L, 4 * H))
    _check_shape("dh", dh, (b, L, H))
    dgi = np.empty_like(gi)
    dgh = np.empty_like(gi)
    _gru_bwd_kernel(W_hh, h, gates, dh, dgi, dgh)
    dW_hh = np.empty_like(W_hh)
    db_hh = np.empty_like(b_hh)
    _gru_param_grads_kernel(h, dgh, 16, dW_hh, db_hh)
    return dgi, dW_hh, db_hh


# ----------------------------------------------------------------------------------
# Causal depthwise 1-D convolution. No recurrence: tasks are (batch row, time chunk).
# ----------------------------------------------------------------------------------
_CONV_TIME_CHUNK = 64


@njit(**_JIT)
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
                    yt[c] = yt[c] * _sigmoid(yt[c], one)


@njit(**_JIT)
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
            s = _sigmoid(pr[c], one)
            gr[c] = dyr[c] * (s * (one + pr[c] * (one - s)))


@njit(**_JIT)
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


@njit(**_JIT)
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
    arrs = _as_float_arrays(names, arrays)
    x, weight = arrs[0], arrs[1]
    _check_ndim("x", x, 3)
    _check_ndim("weight", weight, 2)
    d = x.shape[2]
    if weight.shape[0] != d or weight.shape[1] < 1:
        raise ValueError(f"weight must have shape ({d}, k) with k >= 1, got {weight.shape}")
    for name, a in zip(names[2:], arrs[2:]):
        _check_shape(name, a, (d,) if name == "bias" else x.shape)
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


# ----------------------------------------------------------------------------------
# Compilation
# ----------------------------------------------------------------------------------
def warmup(dtypes=(np.float64, np.float32)):
    """Compile (or load from the on-disk cache) every kernel for the given dtypes.

    Runs each public kernel once on tiny inputs, so that later timings measure run
    time only. With a warm cache (``cache=True``; directory ``NUMBA_CACHE_DIR`` if set)
    this takes a fraction of a second per dtype; a cold compile takes much longer.

    Parameters
    ----------
    dtypes : iterable of dtype
        float32 and/or float64.

    Returns
    -------
    float
        Seconds spent.
    """
    start = time.perf_counter()
    for dt in dtypes:
        dt = np.dtype(dt)
        if dt not in _FLOATS:
            raise ValueError(f"unsupported dtype {dt}; use float64 or float32")
        rng = np.random.default_rng(0)
        b, L, d, n, H, k = 2, 3, 3, 2, 2, 2

        def r(*shape):
            return rng.standard_normal(shape).astype(dt)

        u, delta, dy = r(b, L, d), np.abs(r(b, L, d)), r(b, L, d)
        A, B, C, D = -np.abs(r(d, n)), r(b, L, n), r(b, L, n), r(d)
        selective_scan_fwd(u, delta, A, B, C, D)
        selective_scan_bwd(u, delta, A, B, C, D, dy)
        selective_scan_gated_fwd(u, delta, A, B, C, D, dy)
        selective_scan_gated_bwd(u, delta, A, B, C, D, dy, dy)
        z, ht, dh = r(b, L, H), r(b, L, H), r(b, L, H)
        mingru_bwd(z, ht, mingru_fwd(z, ht), dh)
        mingru_logits_bwd(z, ht, mingru_logits_fwd(z, ht), dh)
        gi, W_hh, b_hh = r(b, L, 3 * H), r(3 * H, H), r(3 * H)
        h, gates = gru_fwd(gi, W_hh, b_hh)
        gru_bwd(gi, W_hh, b_hh, h, gates, dh)
        w, bias = r(d, k), r(d)
        causal_conv1d_fwd(u, w, bias)
        causal_conv1d_bwd(u, w, dy)
        causal_conv1d_silu_fwd(u, w, bias)
        causal_conv1d_silu_bwd(u, w, bias, dy)
    return time.perf_counter() - start
