"""Finite-difference checks of every NumPy reference kernel, with respect to every input."""
from __future__ import annotations

import numpy as np
import pytest

from engine.kernels import numpy_ref as K
from tests.gradcheck import assert_grads_close, numerical_grad, rel_error

b, L, d, n, H, k = 2, 5, 3, 4, 3, 3


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _check(loss, analytic: dict, inputs: dict) -> None:
    errors = {name: rel_error(analytic[name], numerical_grad(loss, inputs[name])) for name in inputs}
    assert_grads_close(errors)


def test_selective_scan(rng):
    inputs = dict(
        u=rng.standard_normal((b, L, d)),
        delta=rng.uniform(0.1, 1.0, (b, L, d)),           # positive, as after softplus
        A=-rng.uniform(0.5, 2.0, (d, n)),                # negative, as -exp(A_log)
        B=rng.standard_normal((b, L, n)),
        C=rng.standard_normal((b, L, n)),
        D=rng.standard_normal(d),
    )
    R = rng.standard_normal((b, L, d))
    names = ["u", "delta", "A", "B", "C", "D"]
    grads = K.selective_scan_bwd(*(inputs[x] for x in names), R)
    _check(lambda: float(np.sum(K.selective_scan_fwd(*(inputs[x] for x in names)) * R)),
           dict(zip(names, grads)), inputs)


def test_mingru(rng):
    inputs = dict(z=rng.uniform(0.1, 0.9, (b, L, H)), h_tilde=rng.standard_normal((b, L, H)))
    R = rng.standard_normal((b, L, H))
    h = K.mingru_fwd(inputs["z"], inputs["h_tilde"])
    dz, dht = K.mingru_bwd(inputs["z"], inputs["h_tilde"], h, R)
    _check(lambda: float(np.sum(K.mingru_fwd(inputs["z"], inputs["h_tilde"]) * R)),
           dict(z=dz, h_tilde=dht), inputs)


def test_gru(rng):
    inputs = dict(gi=rng.standard_normal((b, L, 3 * H)),
                  W_hh=0.5 * rng.standard_normal((3 * H, H)),
                  b_hh=0.5 * rng.standard_normal(3 * H))
    R = rng.standard_normal((b, L, H))
    h, gates = K.gru_fwd(inputs["gi"], inputs["W_hh"], inputs["b_hh"])
    dgi, dW, db = K.gru_bwd(inputs["gi"], inputs["W_hh"], inputs["b_hh"], h, gates, R)
    _check(lambda: float(np.sum(K.gru_fwd(inputs["gi"], inputs["W_hh"], inputs["b_hh"])[0] * R)),
           dict(gi=dgi, W_hh=dW, b_hh=db), inputs)


def test_causal_conv1d(rng):
    inputs = dict(x=rng.standard_normal((b, L, d)), weight=rng.standard_normal((d, k)),
                  bias=rng.standard_normal(d))
    R = rng.standard_normal((b, L, d))
    dx, dw, db = K.causal_conv1d_bwd(inputs["x"], inputs["weight"], R)
    _check(lambda: float(np.sum(K.causal_conv1d_fwd(inputs["x"], inputs["weight"], inputs["bias"]) * R)),
           dict(x=dx, weight=dw, bias=db), inputs)


def test_causal_conv1d_is_causal(rng):
    # Changing the input at step t must leave every output before t unchanged.
    x = rng.standard_normal((b, L, d))
    w, bias = rng.standard_normal((d, k)), rng.standard_normal(d)
    y = K.causal_conv1d_fwd(x, w, bias)
    x2 = x.copy()
    x2[:, 3] += 1.0
    y2 = K.causal_conv1d_fwd(x2, w, bias)
    np.testing.assert_array_equal(y[:, :3], y2[:, :3])
    assert not np.allclose(y[:, 3], y2[:, 3])
