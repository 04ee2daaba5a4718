"""The compiled kernels (engine.kernels.numba) against the NumPy reference.

numpy_ref is the definition of correct; every numba kernel must reproduce it to
rounding (relative max error 1e-10 in float64, 1e-4 in float32, measured as
``max|a - b| / max|b|``), keep the input dtype, and give bit-identical results run
after run and whatever the number of threads.

The first import compiles every kernel (slow on a cold cache), so the module-scoped
``nb`` fixture compiles once and all tests share it.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.backend import BackendUnavailableError, get_kernels
from engine.kernels import numpy_ref as ref
from engine.parity import assert_parity, rel_error, tolerance

DTYPES = [np.float64, np.float32]

# (batch, seq_len, channels d, states n, hidden H, conv width k)
SHAPES = {
    "small": (2, 7, 6, 4, 4, 4),
    "batch1": (1, 9, 5, 3, 5, 3),
    "seq1": (3, 1, 4, 2, 3, 4),
    "odd": (3, 13, 7, 5, 7, 3),
    "single-channel": (2, 6, 1, 1, 1, 1),
    # several GRU row blocks (8 rows each) with a remainder; 37 channels: two scan chunks
    # of 32, the second padded; minGRU and conv on a batch that splits unevenly
    "many-rows": (11, 5, 37, 3, 6, 3),
    # seq_len >= 1024 with 17 states: the scan backward walks several checkpointed blocks
    "long": (1, 1100, 3, 17, 3, 4),
}


@pytest.fixture(scope="module")
def nb():
    try:
        kernels = get_kernels("numba")
    except BackendUnavailableError as exc:      # only a missing numba package skips
        pytest.skip(str(exc))
    kernels.warmup()
    return kernels


def assert_close(got, want, dtype, what):
    """Every output an array of ``dtype`` and within the parity tolerance of the reference."""
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for i, (g, w) in enumerate(zip(got, want)):
        assert isinstance(g, np.ndarray), f"{what}[{i}] is not an array"
        assert g.shape == w.shape, f"{what}[{i}]: shape {g.shape} != {w.shape}"
        assert g.dtype == w.dtype == np.dtype(dtype), f"{what}[{i}]: dtype {g.dtype}, reference {w.dtype}"
    assert_parity(got, want, dtype, what)


def make_inputs(shape, dtype, seed=0):
    """Inputs in the ranges the layers produce (positive steps, negative A, gates in (0, 1))."""
    b, L, d, n, H, k = shape
    rng = np.random.default_rng(seed)

    def r(*s, scale=1.0):
        return (rng.standard_normal(s) * scale).astype(dtype)

    sc = dict(
        u=r(b, L, d), delta=np.log1p(np.exp(r(b, L, d) - 1.5)).astype(dtype),
        A=(-np.exp(r(d, n, scale=0.5))).astype(dtype), B=r(b, L, n), C=r(b, L, n), D=r(d),
        dy=r(b, L, d), dt=r(b, L, d) - 1, z=r(b, L, d, scale=2.0),
    )
    mg = dict(z=(1 / (1 + np.exp(-r(b, L, H)))).astype(dtype), h_tilde=r(b, L, H), dh=r(b, L, H),
              z_logit=r(b, L, H, scale=2.0))
    gru = dict(gi=r(b, L, 3 * H), W_hh=r(3 * H, H, scale=H ** -0.5), b_hh=r(3 * H, scale=0.3),
               dh=r(b, L, H))
    conv = dict(x=r(b, L, d), weight=r(d, k), bias=r(d), dy=r(b, L, d))
    lin = dict(x=r(b * L, d), weight=r(H, d, scale=d ** -0.5), bias=r(H), dy=r(b * L, H),
               gain=1 + r(d, scale=0.1), dy_norm=r(b * L, d))
    return sc, mg, gru, conv, lin


def run_all(kernels, inputs):
    """Every kernel of ``kernels`` on ``inputs``; backward kernels get the reference forward."""
    sc, mg, gru, conv, lin = inputs
    scan = (sc["u"], sc["delta"], sc["A"], sc["B"], sc["C"], sc["D"])
    gated = (sc["u"], sc["dt"], sc["A"], sc["B"], sc["C"], sc["D"], sc["z"])
    h_mg = ref.mingru_fwd(mg["z"], mg["h_tilde"])
    zh = np.concatenate([mg["z_logit"], mg["h_tilde"]], axis=-1)
    h_lg = ref.mingru_logits_fwd(zh)
    h_gru, gates = ref.gru_fwd(gru["gi"], gru["W_hh"], gru["b_hh"])
    return {
        "linear_fwd": kernels.linear_fwd(lin["x"], lin["weight"], lin["bias"]),
        "linear_bwd": kernels.linear_bwd(lin["x"], lin["weight"], lin["dy"]),
        "rmsnorm_fwd": kernels.rmsnorm_fwd(lin["x"], lin["gain"], 1e-5),
        "rmsnorm_bwd": kernels.rmsnorm_bwd(lin["x"], lin["gain"], ref.rmsnorm_fwd(lin["x"], lin["gain"], 1e-5)[1],
                                           lin["dy_norm"]),
        "selective_scan_fwd": kernels.selective_scan_fwd(*scan),
        "selective_scan_bwd": kernels.selective_scan_bwd(*scan, sc["dy"]),
        "selective_scan_gated_fwd": kernels.selective_scan_gated_fwd(*gated),
        "selective_scan_gated_bwd": kernels.selective_scan_gated_bwd(*gated, sc["dy"]),
        "mingru_fwd": kernels.mingru_fwd(mg["z"], mg["h_tilde"]),
        "mingru_bwd": kernels.mingru_bwd(mg["z"], mg["h_tilde"], h_mg, mg["dh"]),
        "mingru_logits_fwd": kernels.mingru_logits_fwd(zh),
        "mingru_logits_bwd": kernels.mingru_logits_bwd(zh, h_lg, mg["dh"]),
        "gru_fwd": kernels.gru_fwd(gru["gi"], gru["W_hh"], gru["b_hh"]),
        "gru_bwd": kernels.gru_bwd(gru["gi"], gru["W_hh"], gru["b_hh"], h_gru, gates, gru["dh"]),
        "causal_conv1d_fwd": kernels.causal_conv1d_fwd(conv["x"], conv["weight"], conv["bias"]),
        "causal_conv1d_bwd": kernels.causal_conv1d_bwd(conv["x"], conv["weight"], conv["dy"]),
        "causal_conv1d_silu_fwd": kernels.causal_conv1d_silu_fwd(conv["x"], conv["weight"], conv["bias"]),
        "causal_conv1d_silu_bwd": kernels.causal_conv1d_silu_bwd(
            conv["x"], conv["weight"], conv["bias"], conv["dy"]),
    }


# --------------------------------------------------------------------------------
# Kernel parity
# --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("shape", list(SHAPES.values()), ids=list(SHAPES))
def test_kernel_parity(nb, shape, dtype):
    inputs = make_inputs(shape, dtype)
    want = run_all(ref, inputs)
    got = run_all(nb, inputs)
    assert set(got) == set(ref.__all__) - {"warmup"}
    for name in want:
        assert_close(got[name], want[name], dtype, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("rows", [1, 63, 64, 1000, 1100])
def test_linear_without_bias_and_row_splits(nb, rows, dtype):
    # Row counts below, at and above one block, and one that does not divide evenly.
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 5)).astype(dtype)
    w = rng.standard_normal((3, 5)).astype(dtype)
    dy = rng.standard_normal((rows, 3)).astype(dtype)
    assert_close(nb.linear_fwd(x, w), ref.linear_fwd(x, w), dtype, "linear_fwd without bias")
    assert_close(nb.linear_bwd(x, w, dy), ref.linear_bwd(x, w, dy), dtype, "linear_bwd")


def test_parity_check_can_fail(nb):
    # The tolerance catches a real error: a wrong D shows in y.
    sc, *_ = make_inputs(SHAPES["small"], np.float64)
    args = [sc[k] for k in ("u", "delta", "A", "B", "C", "D")]
    y = nb.selective_scan_fwd(*args)
    args[5] = args[5] * (1 + 1e-8)
    assert rel_error(y, ref.selective_scan_fwd(*args)) > tolerance(np.float64)


def test_mixed_and_strided_inputs(nb):
    # float32 mixed with float64 computes in float64; non-contiguous views are accepted.
    sc, mg, gru, conv, lin = make_inputs(SHAPES["odd"], np.float64, seed=3)
    u_wide = np.repeat(sc["u"], 2, axis=2)[:, :, ::2]                  # a strided view
    assert not u_wide.flags.c_contiguous
    args = (u_wide, sc["delta"].astype(np.float32), np.asfortranarray(sc["A"]), sc["B"], sc["C"], sc["D"])
    y = nb.selective_scan_fwd(*args)
    assert y.dtype == np.float64
    want = ref.selective_scan_fwd(sc["u"], sc["delta"].astype(np.float32).astype(np.float64),
                                  sc["A"], sc["B"], sc["C"], sc["D"])
    assert rel_error(y, want) <= tolerance(np.float64)
    h = nb.mingru_fwd(mg["z"].astype(np.float32), mg["h_tilde"].astype(np.float32))
    assert h.dtype == np.float32
    dx, dw, db = nb.causal_conv1d_bwd(conv["x"][:, ::-1], conv["weight"].T.copy().T, conv["dy"])
    want = ref.causal_conv1d_bwd(np.ascontiguousarray(conv["x"][:, ::-1]), conv["weight"], conv["dy"])
    assert_close((dx, dw, db), want, np.float64, "conv on views")


@pytest.mark.parametrize("call", [
    lambda k: k.selective_scan_fwd(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), np.zeros((4, 2)),
                                   np.zeros((2, 3, 2)), np.zeros((2, 3, 3)), np.zeros(4)),
    lambda k: k.selective_scan_bwd(np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), np.zeros((4, 2)),
                                   np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.zeros(4), np.zeros((2, 3, 5))),
    lambda k: k.mingru_fwd(np.zeros((2, 3, 4)), np.zeros((2, 3, 5))),
    lambda k: k.gru_fwd(np.zeros((2, 3, 7)), np.zeros((7, 2)), np.zeros(7)),
    lambda k: k.gru_fwd(np.zeros((2, 3, 6)), np.zeros((6, 3)), np.zeros(6)),
    lambda k: k.causal_conv1d_fwd(np.zeros((2, 3, 4)), np.zeros((3, 2)), np.zeros(4)),
    lambda k: k.causal_conv1d_bwd(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((2, 3))),
], ids=["scan-C", "scan-dy", "mingru", "gru-3H", "gru-W", "conv-w", "conv-ndim"])
def test_bad_shapes_raise(nb, call):
    with pytest.raises(ValueError):
        call(nb)


def test_non_numeric_input_raises(nb):
    with pytest.raises(TypeError):
        nb.mingru_fwd(np.zeros((1, 2, 3), dtype=complex), np.zeros((1, 2, 3)))


def test_nan_propagates(nb):
    # No fast-math: a NaN in the input must reach the outputs it feeds, exactly as in NumPy.
    sc, *_ = make_inputs(SHAPES["small"], np.float64)
    args = [sc[k].copy() for k in ("u", "delta", "A", "B", "C", "D")]
    args[1][0, 2, 1] = np.nan
    y = nb.selective_scan_fwd(*args)
    y_ref = ref.selective_scan_fwd(*args)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(y_ref))
    assert np.isnan(y[0, 2:, 1]).all() and not np.isnan(y[1]).any()
    grads = nb.selective_scan_bwd(*args, sc["dy"])
    grads_ref = ref.selective_scan_bwd(*args, sc["dy"])
    for g, gr in zip(grads, grads_ref):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(gr))


# --------------------------------------------------------------------------------
# The compiled elementwise maths (vectorisable exp, softplus, sigmoid)
# --------------------------------------------------------------------------------
def _ulps(got, want, dtype):
    return np.abs(got - want) / np.spacing(np.abs(want).astype(dtype))


def _exp_inputs(dtype):
    """A large random sample over the whole range, and the edges: every threshold of the
    result's range (largest finite, smallest normal, smallest subnormal and half of it)
    and of the code's (the clamps), the points where the reduction switches from k to
    k + 1 (odd multiples of ln(2) / 2), each with four neighbours on either side, then
    tiny and special inputs."""
    fi = np.finfo(dtype)
    rng = np.random.default_rng(0)
    lo, hi = (-750.0, 712.0) if dtype == np.float64 else (-106.0, 90.0)
    clamps = [-746.0, 710.0] if dtype == np.float64 else [-104.0, 89.0]
    thresholds = [np.log(np.float64(v)) for v in (fi.max, fi.tiny, fi.smallest_subnormal)]
    thresholds.append(np.log(np.float64(fi.smallest_subnormal)) - np.log(2.0))
    halves = np.arange(np.ceil(2 * lo / np.log(2)) // 2 * 2 + 1, 2 * hi / np.log(2), 2) * (np.log(2) / 2)
    edges = np.concatenate([thresholds, clamps, halves]).astype(dtype)
    parts = [rng.uniform(lo, hi, 1_000_000), rng.standard_normal(300_000) * 3,
             rng.uniform(-1, 1, 100_000) * 1e-3, np.linspace(lo, hi, 100_001)]
    parts = [a.astype(dtype) for a in parts] + [edges]
    up, down = edges, edges
    for _ in range(4):
        up = np.nextafter(up, dtype(np.inf))
        down = np.nextafter(down, dtype(-np.inf))
        parts += [up, down]
    parts.append(np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, fi.tiny, -fi.tiny, fi.smallest_subnormal,
                           -fi.smallest_subnormal, fi.eps, -fi.eps, 1e30, -1e30, fi.max, -fi.max], dtype=dtype))
    return np.concatenate(parts)


def _exp_exact(x):
    """``exp(x)`` to far better than the dtype's precision: float64 for float32 inputs, x87
    long double (64-bit mantissa) for float64 ones (None where long double is float64)."""
    if x.dtype == np.float32:
        return np.exp(x.astype(np.float64))
    if np.finfo(np.longdouble).nmant < 63:
        return None
    return np.exp(x.astype(np.longdouble))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_compiled_exp(nb, dtype):
    """The kernels' exp against the exact value and np.exp over the whole range.

    Normal results are faithfully rounded (under 1 ulp from the exact value; 1.5 ulp on a
    CPU without FMA), subnormal ones within one unit of the correctly rounded value, and
    NaN, inf and 0 come exactly where np.exp has them.
    """
    from llvmlite import binding as llvm

    from engine.kernels.numba._math import vector_math

    fi = np.finfo(dtype)
    x = _exp_inputs(dtype)
    got = vector_math(x, "exp")
    with np.errstate(over="ignore", under="ignore"):
        want = np.exp(x)
        exact = _exp_exact(x)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert not np.signbit(got[~np.isnan(got)]).any()          # never -0.0
    normal = np.isfinite(want) & (want >= fi.tiny)
    # NumPy's own exp is within 0.72 ulp (float64, SVML here) and 2.4 ulp (float32) of exact
    assert _ulps(got[normal], want[normal], dtype).max() <= (2 if dtype == np.float64 else 3)
    if exact is not None:
        with np.errstate(over="ignore"):
            rounded = exact.astype(dtype)              # one rounding from the exact value
        fin = np.isfinite(rounded) & (rounded >= fi.tiny)
        err = np.abs(got[fin].astype(exact.dtype) - exact[fin]) / np.spacing(rounded[fin]).astype(exact.dtype)
        fma = "fma" in llvm.get_host_cpu_features().flatten()
        assert err.max() < (1 if fma else 1.5)
        tiny = np.isfinite(rounded) & ~fin            # subnormal results and zeros
        assert np.all(np.abs(got[tiny].astype(np.float64) - rounded[tiny]) <= fi.smallest_subnormal)
    sub = np.isfinite(want) & ~normal
    assert np.all(np.abs(got[sub] - want[sub]) <= 2 * fi.smallest_subnormal)
    assert np.all(got[x < np.log(np.float64(fi.smallest_subnormal)) - 1] == 0)
    assert got[x == 0].tolist() == [1.0] * int(np.sum(x == 0))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_compiled_exp_same_bits_anywhere(nb, dtype):
    """An element's exp does not depend on where it sits: in the vector body or the scalar
    remainder of the loop, whatever the offset (the kernels' results do not change with
    how work is split)."""
    from engine.kernels.numba._math import vector_math

    x = np.random.default_rng(5).uniform(-30, 30, 1000).astype(dtype)
    whole = vector_math(x, "exp")
    for i in range(1, 20):
        np.testing.assert_array_equal(vector_math(x[i:], "exp"), whole[i:])
    singles = np.concatenate([vector_math(x[i:i + 1], "exp") for i in range(0, 1000, 37)])
    np.testing.assert_array_equal(singles, whole[::37])


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_compiled_softplus_sigmoid_tanh(nb, dtype):
    from engine.kernels.numba._math import vector_math

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(100_000) * 4, rng.uniform(-80, 80, 50_000),
                        np.linspace(-30, 30, 6001), [np.nan, np.inf, -np.inf, 0.0]]).astype(dtype)
    x = np.concatenate([x, np.geomspace(1e-12, 1, 2001, dtype=dtype), -np.geomspace(1e-12, 1, 2001, dtype=dtype)])
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        soft = np.logaddexp(np.float64(0), x64)
        sig = 1 / (1 + np.exp(-x64))
    # ulps (of the dtype) allowed; tanh trades a little accuracy near 0.004 / 0.15 for speed
    cases = (("softplus", soft, 6), ("sigmoid", sig, 6), ("tanh", np.tanh(x64), 600 if dtype == np.float64 else 16))
    for fn, want, max_ulps in cases:
        got = vector_math(x, fn)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=fn)
        ok = np.isfinite(want) & (np.abs(want) >= np.finfo(dtype).tiny)
        assert _ulps(got[ok], want[ok], dtype).max() <= max_ulps, fn
        assert np.max(np.abs(got[ok] - want[ok])) <= 4 * np.finfo(dtype).eps, fn
        np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])


# --------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------
def _flat_bytes(out):
    out = out if isinstance(out, tuple) else (out,)
    return [o.tobytes() for o in out]


@pytest.mark.parametrize("shape", [SHAPES["small"], (2, 300, 33, 64, 17, 4)], ids=["small", "chunked"])
def test_bit_identical_runs_and_thread_counts(nb, shape):
    from engine import backend

    inputs = make_inputs(shape, np.float64, seed=7)
    saved = backend.get_num_threads()
    try:
        backend.set_num_threads(2)
        first = run_all(nb, inputs)
        runs = [run_all(nb, inputs) for _ in range(2)]
        backend.set_num_threads(1)
        runs.append(run_all(nb, inputs))
        backend.set_num_threads(3)                      # more threads than tasks in places
        runs.append(run_all(nb, inputs))
    finally:
        backend.set_num_threads(saved)
    for name, out in first.items():
        for again in runs:
            assert _flat_bytes(again[name]) == _flat_bytes(out), f"{name} is not bit-identical"


# --------------------------------------------------------------------------------
# Forecasters: numpy backend vs numba backend
# --------------------------------------------------------------------------------
MODELS = ["mamba", "mingru", "gru", "hybrid"]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", MODELS)
def test_forecaster_parity(nb, name, dtype):
    models = pytest.importorskip("models")
    kw = dict(input_size=3, hidden_size=8, d_state=5, n_layers=2, horizon=2, dtype=dtype, seed=11)
    m_ref = models.build_model(name, backend="numpy", **kw)
    m_nb = models.build_model(name, backend="numba", **kw)
    rng = np.random.default_rng(4)
    # Move away from the initialisation so every parameter (A_log, dt_proj) matters.
    for (key, p_ref, _), (key_nb, p_nb, _) in zip(m_ref.named_parameters(), m_nb.named_parameters()):
        assert key == key_nb
        p_ref[...] = p_ref + (0.3 * rng.standard_normal(p_ref.shape)).astype(dtype)
        p_nb[...] = p_ref
    x = rng.standard_normal((3, 24, 3)).astype(dtype)
    dy = rng.standard_normal((3, 2)).astype(dtype)

    outs = {}
    for backend, model in (("numpy", m_ref), ("numba", m_nb)):
        model.zero_grad()
        y = model.forward(x)
        dx = model.backward(dy)
        outs[backend] = (y, dx, model.grads())
    y_r, dx_r, g_r = outs["numpy"]
    y_n, dx_n, g_n = outs["numba"]
    assert_close(y_n, y_r, dtype, f"{name} forward")
    assert_close(dx_n, dx_r, dtype, f"{name} input gradient")
    assert list(g_n) == list(g_r)
    for key in g_r:
        assert_close(g_n[key], g_r[key], dtype, f"{name} grad {key}")


@pytest.mark.parametrize("fused", [False, True], ids=["mingru_bwd", "mingru_logits_bwd"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mingru_backward_flushes_subnormal_gradients(nb, dtype, fused):
    # A gate near 1 shrinks the carried gradient by ~1e-3 per step: after 60 steps it is
    # far below the smallest normal float32. The reference keeps the subnormals; the
    # compiled kernel writes zeros there (and only there), within parity everywhere.
    b, L, H = 2, 60, 5
    rng = np.random.default_rng(3)
    logit = rng.uniform(6.5, 7.5, (b, L, H)).astype(dtype)       # sigmoid ~ 0.999
    h_tilde = rng.standard_normal((b, L, H)).astype(dtype)
    dh = np.zeros((b, L, H), dtype)
    dh[:, -1] = rng.standard_normal((b, H))                       # the loss sees the last step only
    dh[0, -1, 0] = np.nan                                         # NaN must survive the flush
    if fused:
        zh = np.concatenate([logit, h_tilde], axis=-1)
        h = ref.mingru_logits_fwd(zh)
        want, got = ref.mingru_logits_bwd(zh, h, dh), nb.mingru_logits_bwd(zh, h, dh)
    else:
        z = (1 / (1 + np.exp(-logit.astype(np.float64)))).astype(dtype)
        h = ref.mingru_fwd(z, h_tilde)
        want, got = ref.mingru_bwd(z, h_tilde, h, dh), nb.mingru_bwd(z, h_tilde, h, dh)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    tiny = np.finfo(dtype).tiny
    for g, w in zip(got, want):
        assert np.array_equal(np.isnan(g), np.isnan(w))
        sub_ref = (np.abs(w) < tiny) & (w != 0)
        assert not np.any((np.abs(g) < tiny) & (g != 0)), "a subnormal gradient was written"
        assert np.all(g[sub_ref] == 0)
        ok = ~np.isnan(w)
        assert_parity(g[ok], w[ok], dtype, "mingru backward")
        if dtype == np.float32:
            assert sub_ref.any(), "the case must reach the subnormal range to test anything"
