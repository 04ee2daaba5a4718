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
from numba.core import cgutils, types
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
# exp(x) = 2**k * e**r with k = round(x / ln 2), |r| <= ln(2) / 2, e**r by a minimax
# polynomial, 2**k assembled in exponent bits. Faithfully rounded (under 1 ulp from the
# exact value; measured: NumPy's SVML exp within 0.72 ulp in float64, its own float32 2.4);
# NaN stays NaN, overflow gives inf, underflow goes through subnormals to 0.
#
# Why no table: the usual fast exp (glibc, SVML) reduces to |r| <= ln(2) / 256 with a
# 128-entry table of 2**(i/128) and then needs a polynomial of degree 5 only. Without
# hand-written SIMD the table is read with gathers, and on the AMD EPYC (Zen 4) this was
# tuned on each 8-lane gather cost about one cycle per element, more than the six
# multiply-adds the table saves (0.90 ns/element with one gather, 1.29 with two for full
# accuracy, 0.70 without a table; np.exp 0.80, one core; bench/exp_micro.py). The cost
# here is the count of vector operations, 23 (float64) per vector of 8 elements, 18
# (float32) per 16: 2 for the clamps, 4 for the reduction, 11 (float64) or 6 (float32)
# multiply-adds for the polynomial, 6 to build and apply 2**k.
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


@intrinsic
def _muladd(typingctx, a, b, c):
    """``a * b + c`` for three float64 (or three float32) values, fused where the CPU has FMA.

    LLVM's ``llvm.fmuladd``: one rounding on a CPU with fused multiply-add, a multiply
    and an add otherwise, whatever fast-math flags the calling kernel has. So ``exp``
    gives the same bits in every kernel (the GRU and minGRU kernels are compiled without
    ``contract``, the scans with it) and runs on FMA there too (it was 1.5x slower
    without); the loop vectoriser widens the call like any multiply-add.
    """
    if not (a == b == c and a in (types.float64, types.float32)):
        return None

    def codegen(context, builder, signature, args):
        llvm_type = args[0].type
        name = "llvm.fmuladd.f64" if llvm_type == ir.DoubleType() else "llvm.fmuladd.f32"
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(llvm_type, [llvm_type] * 3), name)
        return builder.call(fn, args)

    return a(a, b, c), codegen


# The polynomials: 1 + r + r**2 * (c2 + c3 r + ... + cn r**(n-2)), the coefficients
# minimising the largest relative error to e**r on |r| <= ln(2) / 2 (Remez exchange in
# 200-bit arithmetic). Degree 11, error 3.6e-18 (0.03 ulp) for float64; degree 6,
# 3.1e-9 (0.05 ulp) for float32 (Taylor needed degrees 13 and 7).
_E64 = tuple(float.fromhex(h) for h in (
    "0x1.000000000000ap-1", "0x1.55555555554fap-3", "0x1.555555555088cp-5", "0x1.1111111127b9bp-7",
    "0x1.6c16c184266bep-10", "0x1.a01a012a69d02p-13", "0x1.a0199a16e5228p-16", "0x1.71df253a04c44p-19",
    "0x1.28ad689fad7fap-22", "0x1.ad7f7b175464dp-26"))
_E32 = tuple(np.float32(float.fromhex(h)) for h in (
    "0x1.fffffb9b03176p-2", "0x1.5554916813414p-3", "0x1.5558f11fcc326p-5", "0x1.1239d3809469ap-7",
    "0x1.6a244cdd61e1ep-10"))


def exp(x):
    """``exp(x)`` for a float scalar inside compiled code (see the overload)."""
    return math.exp(x)


@overload(exp)
def _exp_overload(x):
    # Both dtypes, step by step:
    # * Clamp x to [-746, 710] (float32: [-104, 89]), beyond which the result is 0 or inf
    #   anyway; written so that a NaN passes through (NaN < c is false) and then makes
    #   every later result NaN without a test of its own.
    # * k = round(x / ln 2): adding S = 1.5 * 2**52 + 2046 (float32: 1.5 * 2**23 + 254)
    #   rounds x / ln 2 to an integer, m = k + 2046 (254), which stays in the low bits of
    #   the sum's bit pattern; subtracting S again gives k as a float.
    # * r = x - k ln 2, with ln 2 split in two so that k * ln2_hi is exact even without FMA.
    # * 2**k = 2**floor(k/2) * 2**ceil(k/2), each half a normal number over the whole
    #   clamped range, its biased exponent read off the bit pattern: floor(m/2) =
    #   1023 + floor(k/2) and m - floor(m/2) = 1023 + ceil(k/2) (127 for float32; the
    #   pattern's top bits, an even constant, halve to bits that the shift by 52 (23)
    #   pushes out). p * 2**floor(k/2) is exact (normal range), so a normal result is
    #   rounded once; a subnormal one twice (within a unit of the last place, as before);
    #   past the largest double the product is inf.
    if x == types.float64:
        c2, c3, c4, c5, c6, c7, c8, c9, c10, c11 = _E64

        def exp64(x):
            xc = -746.0 if x < -746.0 else x
            xc = 710.0 if xc > 710.0 else xc
            kd = _muladd(xc, 1.4426950408889634, 6755399441055744.0 + 2046.0)
            m = _bitcast(kd)
            kf = kd - (6755399441055744.0 + 2046.0)
            # ln 2 = 6.93147180369123816490e-01 (32 significant bits) + 1.9082...e-10
            r = _muladd(kf, -6.93147180369123816490e-01, xc)
            r = _muladd(kf, -1.90821492927058770002e-10, r)
            p = _muladd(c11, r, c10)
            p = _muladd(p, r, c9)
            p = _muladd(p, r, c8)
            p = _muladd(p, r, c7)
            p = _muladd(p, r, c6)
            p = _muladd(p, r, c5)
            p = _muladd(p, r, c4)
            p = _muladd(p, r, c3)
            p = _muladd(p, r, c2)
            p = _muladd(p, r, 1.0)
            p = _muladd(p, r, 1.0)
            m1 = m >> 1
            return p * _bitcast(m1 << 52) * _bitcast((m - m1) << 52)
        return exp64
    if x == types.float32:
        f = np.float32
        d2, d3, d4, d5, d6 = _E32
        lo, hi, one = f(-104.0), f(89.0), f(1.0)
        shift = f(12582912.0 + 254.0)
        inv_ln2, ln2_hi, ln2_lo = f(1.44269504), f(0.693359375), f(-2.12194440e-4)   # hi: 9 bits
        i1, i23 = np.int32(1), np.int32(23)

        def exp32(x):
            xc = lo if x < lo else x
            xc = hi if xc > hi else xc
            kd = _muladd(xc, inv_ln2, shift)
            m = _bitcast(kd)
            kf = kd - shift
            r = _muladd(kf, -ln2_hi, xc)
            r = _muladd(kf, -ln2_lo, r)
            p = _muladd(d6, r, d5)
            p = _muladd(p, r, d4)
            p = _muladd(p, r, d3)
            p = _muladd(p, r, d2)
            p = _muladd(p, r, one)
            p = _muladd(p, r, one)
            m1 = m >> i1
            return p * _bitcast(np.int32(m1 << i23)) * _bitcast(np.int32((m - m1) << i23))
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
    wide_vectors()                                       # as in the kernels
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
