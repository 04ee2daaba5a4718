"""engine.functional (activations, MSE) and engine.layers (Linear, RMSNorm, CausalConv1d) against
finite differences."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from engine import functional as F
from engine import layers as Lr
from engine.module import derive_seed
from tests.gradcheck import (assert_grads_close, module_grad_errors, numerical_grad,
                             perturb_parameters, rel_error)

ACTIVATIONS = [
    (F.sigmoid, F.sigmoid_grad),
    (F.silu, F.silu_grad),
    (F.softplus, F.softplus_grad),
    (F.tanh, F.tanh_grad),
]


def _layer_cases():
    return {
        "linear": (lambda **kw: Lr.Linear(3, 4, **kw), (2, 5, 3)),
        "linear_nobias": (lambda **kw: Lr.Linear(3, 4, bias=False, **kw), (2, 5, 3)),
        "linear_2d": (lambda **kw: Lr.Linear(3, 2, **kw), (4, 3)),
        "rmsnorm": (lambda **kw: Lr.RMSNorm(4, **kw), (2, 5, 4)),
        "conv1d": (lambda **kw: Lr.CausalConv1d(3, 4, **kw), (2, 6, 3)),
        "conv1d_silu": (lambda **kw: Lr.CausalConv1d(3, 4, activation="silu", **kw), (2, 6, 3)),
    }


@pytest.mark.parametrize("f, df", ACTIVATIONS, ids=lambda f: getattr(f, "__name__", ""))
def test_activation_derivative(f, df):
    x = np.random.default_rng(0).uniform(-4, 4, 50)
    eps = 1e-6
    numeric = (f(x + eps) - f(x - eps)) / (2 * eps)
    assert rel_error(df(x), numeric) <= 1e-8


@pytest.mark.parametrize("f, df", ACTIVATIONS, ids=lambda f: getattr(f, "__name__", ""))
def test_activation_keeps_float32(f, df):
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    assert f(x).dtype == np.float32
    assert df(x).dtype == np.float32


def test_sigmoid_and_softplus_are_stable_at_extremes():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # an overflow in exp would raise here
        s = F.sigmoid(x)
        sp = F.softplus(x)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(sp))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    np.testing.assert_allclose(sp, [0.0, np.exp(-50.0), np.log(2.0), 50.0, 1000.0], rtol=1e-15, atol=0)


def test_softplus_inverse_round_trip():
    y = np.array([1e-4, 1e-3, 0.05, 0.1, 1.0, 30.0])
    np.testing.assert_allclose(F.softplus(F.softplus_inverse(y)), y, rtol=1e-12)


def test_mse_value_and_gradient():
    rng = np.random.default_rng(1)
    pred, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss, dpred = F.mse_loss(pred, target)
    assert loss == pytest.approx(np.mean((pred - target) ** 2), rel=1e-14)
    numeric = numerical_grad(lambda: F.mse_loss(pred, target)[0], pred)
    assert rel_error(dpred, numeric) <= 1e-6


def test_mse_keeps_float32_and_rejects_shape_mismatch():
    pred = np.ones((3, 2), dtype=np.float32)
    _, dpred = F.mse_loss(pred, np.zeros((3, 2)))
    assert dpred.dtype == np.float32
    with pytest.raises(ValueError, match="shape"):
        F.mse_loss(pred, np.zeros((3, 1)))


@pytest.mark.parametrize("case", list(_layer_cases()))
def test_layer_gradients(case):
    build, shape = _layer_cases()[case]
    layer = build(seed=3, backend="numpy")
    rng = np.random.default_rng(7)
    perturb_parameters(layer, rng)
    x = rng.standard_normal(shape)
    assert_grads_close(module_grad_errors(layer, x, seed=11))


@pytest.mark.parametrize("case", list(_layer_cases()))
def test_layer_float32_end_to_end(case):
    build, shape = _layer_cases()[case]
    layer = build(dtype=np.float32)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == np.float32 and dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads().values())


def test_linear_matches_definition_and_init():
    lin = Lr.Linear(5, 3, seed=2)
    W, bvec = lin.p("weight"), lin.p("bias")
    assert W.shape == (3, 5) and bvec.shape == (3,)
    bound = 1 / np.sqrt(5)
    assert np.all(np.abs(W) <= bound) and np.all(np.abs(bvec) <= bound)
    x = np.random.default_rng(0).standard_normal((2, 5))
    np.testing.assert_allclose(lin.forward(x), x @ W.T + bvec, rtol=1e-14)
    assert list(Lr.Linear(5, 3, bias=False).state_dict()) == ["weight"]


def test_rmsnorm_matches_definition():
    norm = Lr.RMSNorm(4, eps=1e-5)
    np.testing.assert_array_equal(norm.p("weight"), np.ones(4))
    norm.p("weight")[...] = [0.5, 1.0, 2.0, -1.0]
    x = np.random.default_rng(0).standard_normal((3, 4))
    expected = x / np.sqrt(np.mean(x ** 2, axis=-1, keepdims=True) + 1e-5) * norm.p("weight")
    np.testing.assert_allclose(norm.forward(x), expected, rtol=1e-14)


def test_conv1d_layout_and_definition():
    conv = Lr.CausalConv1d(3, 4, seed=1)
    assert conv.p("weight").shape == (3, 1, 4) and conv.p("bias").shape == (3,)
    x = np.random.default_rng(0).standard_normal((2, 6, 3))
    y = conv.forward(x)
    w = conv.p("weight")[:, 0, :]
    xp = np.concatenate([np.zeros((2, 3, 3)), x], axis=1)               # left padding k - 1
    t = 4
    expected = conv.p("bias") + np.einsum("bjc,cj->bc", xp[:, t:t + 4], w)
    np.testing.assert_allclose(y[:, t], expected, rtol=1e-13)


def test_conv1d_silu_activation_is_silu_of_plain_conv():
    plain = Lr.CausalConv1d(3, 4, seed=1)
    fused = Lr.CausalConv1d(3, 4, seed=1, activation="silu")
    assert fused.state_dict().keys() == plain.state_dict().keys()
    x = np.random.default_rng(0).standard_normal((2, 6, 3))
    np.testing.assert_allclose(fused.forward(x), F.silu(plain.forward(x)), rtol=1e-13)
    with pytest.raises(ValueError):
        Lr.CausalConv1d(3, 4, activation="relu")


def test_backward_accumulates():
    lin = Lr.Linear(3, 2, seed=0)
    x = np.random.default_rng(0).standard_normal((4, 3))
    dy = np.random.default_rng(1).standard_normal((4, 2))
    lin.forward(x)
    lin.backward(dy)
    once = lin.grads()
    lin.backward(dy)
    for k, g in lin.grads().items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-15)


def test_derive_seed_separates_streams():
    seeds = {derive_seed(s, i) for s in range(4) for i in range(4)}
    assert len(seeds) == 16
    assert derive_seed(5, 2) == derive_seed(5, 2)
