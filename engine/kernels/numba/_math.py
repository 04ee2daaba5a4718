"""Vector math for the compiled kernels: exp, log1p, tanh, sigmoid, softplus, dot.

Without Intel's SVML, LLVM calls libm's scalar ``exp`` once per element, which caps the
selective scan (``b*L*d*n`` exponentials). The functions here are branch-free
arithmetic that LLVM turns into SIMD code; each is within a few ulp of libm, and NaN
and inf behave as in NumPy. ``vector_math`` applies one of them to an array, for tests.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit
from numba.core import types
from numba.extending import intrinsic, overload

from engine.kernels.numba._jit import JIT_SCAN, as_float_arrays


# ----------------------------------------------------------------------------------
# Vector width
# ----------------------------------------------------------------------------------
@intrinsic
def wide_vectors(typingctx):
    """Let LLVM vectorise the calling function with 512-bit registers where it can.

    On AVX-512 CPUs LLVM prefers 256-bit vectors unless told otherwise; for the
    exponential-heavy loops here 512 bits are about 1.5x faster. This marks the function
    being compiled with LLVM's
    ``prefer-vector-width`` attribute, the per-function form of clang's
    ``-mprefer-vector-width=512``. Only the width of the vector instructions changes: the
    same operations run in the same order on each element, so results are bit-identical
    to the 256-bit code, and a CPU without AVX-512 simply keeps its widest vectors.
    """
    def codegen(context, builder, signature, args):
        # llvmlite only accepts its list of enum attributes through .add(); a string
        # attribute is written into the function header verbatim. Should a later
        # llvmlite store attributes differently, the kernels keep LLVM's default width.
        try:
            set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        except TypeError:                                # pragma: no cover
            pass
        return context.get_dummy_value()

    return types.none(), codegen


# ----------------------------------------------------------------------------------
# exp(x) = 2**k * e**r with k = round(x / ln 2), |r| <= ln(2) / 2, e**r by its Taylor
# polynomial (degree 13 for float64, 7 for float32: truncation below half an ulp), 2**k
# assembled in the exponent bits. Within 2 ulp of libm; NaN stays NaN, overflow gives
# inf, underflow goes through subnormals to 0.
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


def exp(x):
    """``exp(x)`` for a float scalar inside compiled code (see the overload)."""
    return math.exp(x)


@overload(exp)
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


def log1p01(e):
    """``log1p(e)`` for ``0 <= e <= 1`` inside compiled code (see the overload)."""
    return math.log1p(e)


@overload(log1p01)
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


def tanh(x):
    """``tanh(x)`` inside compiled code (see the overload)."""
    return math.tanh(x)


# inline="always": tanh calls exp, and left as a call LLVM did not inline the float64 pair
# into the loop, which then stayed scalar (5x slower).
@overload(tanh, inline="always")
def _tanh_overload(x):
    # sign(x) * (1 - 2 / (e^{2|x|} + 1)) through the vectorisable exp (libm's tanh is a
    # scalar call and dominated the GRU kernels). Near 0 that difference loses relative
    # accuracy, so tiny |x| take the series x - x^3/3 + 2x^5/15 instead; the worst
    # relative error is then ~3e-14 (float64) / ~4e-7 (float32), right at the switch.
    if x == types.float64:
        def tanh64(x):
            ax = abs(x)
            big = 1.0 - 2.0 / (exp(2.0 * ax) + 1.0)
            q = x * x
            small = x * (1.0 + q * (-1.0 / 3.0 + q * (2.0 / 15.0)))
            t = big if x >= 0.0 else -big
            return small if ax < 0.004 else t
        return tanh64
    if x == types.float32:
        def tanh32(x):
            f = np.float32
            ax = abs(x)
            big = f(1.0) - f(2.0) / (exp(f(2.0) * ax) + f(1.0))
            q = x * x
            small = x * (f(1.0) + q * (f(-1.0 / 3.0) + q * f(2.0 / 15.0)))
            t = big if x >= f(0.0) else -big
            return small if ax < f(0.15) else t
        return tanh32
    return None


# Scalar helpers, inlined (at Numba IR level) so the loops that call them vectorise.
# ``one``/``zero`` carry the dtype: a literal 1.0 would be float64.
@njit(inline="always", error_model="numpy")
def sigmoid(x, one):
    # exp(-x) -> inf for very negative x gives 0, -> 0 for large x gives 1: no overflow
    return one / (one + exp(-x))


@njit(inline="always", error_model="numpy")
def softplus(x, zero, one):
    # max(x, 0) + log1p(e^-|x|): no overflow, keeps small values; NaN stays NaN
    return (x if x > zero else zero) + log1p01(exp(-abs(x)))


@njit(inline="always", error_model="numpy")
def softplus_sigmoid(x, zero, one):
    """``(softplus(x), sigmoid(x))`` from one exponential (sigmoid is softplus's derivative)."""
    e = exp(-abs(x))
    sp = (x if x > zero else zero) + log1p01(e)
    return sp, (one if x >= zero else e) / (one + e)


@njit(inline="always", error_model="numpy")
def flush_subnormal(x, tiny):
    """``x``, or a zero of its sign where ``|x|`` is below ``tiny`` (the dtype's smallest normal).

    A gradient carried back through a decaying recurrence (minGRU multiplies it by
    ``1 - z`` every step) leaves float32's normal range after a few tens of steps, and
    every later product with a subnormal costs the CPU a microcode assist, in our loop
    and in the BLAS product that consumes the gradient. Such values are below 1.2e-38
    (float32) or 2.2e-308 (float64) and contribute nothing a sum of normal values could
    show; CPU frameworks flush them too (flush-to-zero). NaN and inf pass unchanged:
    ``abs(NaN) < tiny`` is false.
    """
    return x * 0 if abs(x) < tiny else x


@njit(inline="always", error_model="numpy")
def dot(a, b, n, zero):
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


@njit(**JIT_SCAN)
def _elementwise_kernel(x, which, out):
    zero = x.dtype.type(0)
    one = x.dtype.type(1)
    for i in range(x.size):
        if which == 0:
            out[i] = exp(x[i])
        elif which == 1:
            out[i] = softplus(x[i], zero, one)
        elif which == 2:
            out[i] = sigmoid(x[i], one)
        else:
            out[i] = tanh(x[i])


def vector_math(x, fn):
    """The compiled ``"exp"``, ``"softplus"``, ``"sigmoid"`` or ``"tanh"`` over an array (for tests)."""
    (x,) = as_float_arrays(["x"], [x])
    flat = np.ascontiguousarray(x.ravel())
    out = np.empty_like(flat)
    _elementwise_kernel(flat, ("exp", "softplus", "sigmoid", "tanh").index(fn), out)
    return out.reshape(x.shape)
