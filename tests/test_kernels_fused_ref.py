"""Finite-difference checks of the fused reference kernels (numpy_ref), every input.

The fused kernels are compositions of the checked plain kernels with elementwise maps
(softplus, sigmoid, SiLU); these checks make sure the chain rule through those maps is
right before the compiled twins are held to them.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.kernels import numpy_ref as K
from tests.gradcheck import assert_grads_close, numerical_grad, rel_error

b, L, d, n, H, k = 2, 5, 3, 4, 3, 3


@pytest.fixture
def rng():
    return np.random.default_rng(99)


def _check(loss, analytic: dict, inputs: dict) -> None:
    errors = {name: rel_error(analytic[name], numerical_grad(loss, inputs[name])) for name in inputs}
    assert_grads_close(errors)


def test_selective_scan_gated(rng):
    inputs = dict(
        u=rng.standard_normal((b, L, d)),
        dt=rng.uniform(-2.0, 1.0, (b, L, d)),            # before the softplus
        A=-rng.uniform(0.5, 2.0, (d, n)),
        B=rng.standard_normal((b, L, n)),
        C=rng.standard_normal((b, L, n)),
        D=rng.standard_normal(d),
        z=rng.standard_normal((b, L, d)) * 2,
    )
    R = rng.standard_normal((b, L, d))

    def loss():
        return float(np.sum(K.selective_scan_gated_fwd(**inputs) * R))

    names = ["u", "dt", "A", "B", "C", "D", "z"]
    grads = K.selective_scan_gated_bwd(**inputs, dout=R)
    _check(loss, dict(zip(names, grads)), inputs)


def test_selective_scan_gated_is_the_composition(rng):
    u, dt, z = (rng.standard_normal((b, L, d)) for _ in range(3))
    A, B, C, D = -rng.uniform(0.5, 2, (d, n)), rng.standard_normal((b, L, n)), rng.standard_normal((b, L, n)), rng.standard_normal(d)
    delta = np.log1p(np.exp(dt))
    want = K.selective_scan_fwd(u, delta, A, B, C, D) * z / (1 + np.exp(-z))
    np.testing.assert_allclose(K.selective_scan_gated_fwd(u, dt, A, B, C, D, z), want, rtol=1e-12, atol=1e-14)


def test_mingru_logits(rng):
    zh = np.concatenate([rng.standard_normal((b, L, H)) * 2, rng.standard_normal((b, L, H))], axis=-1)
    inputs = dict(zh=zh)
    R = rng.standard_normal((b, L, H))

    def loss():
        return float(np.sum(K.mingru_logits_fwd(**inputs) * R))

    h = K.mingru_logits_fwd(**inputs)
    dzh = K.mingru_logits_bwd(zh, h, R)
    _check(loss, dict(zh=dzh), inputs)


def test_mingru_logits_is_the_composition(rng):
    z_logit, h_tilde = rng.standard_normal((b, L, H)) * 2, rng.standard_normal((b, L, H))
    want = K.mingru_fwd(1 / (1 + np.exp(-z_logit)), h_tilde)
    got = K.mingru_logits_fwd(np.concatenate([z_logit, h_tilde], axis=-1))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_causal_conv1d_silu(rng):
    inputs = dict(x=rng.standard_normal((b, L, d)), weight=rng.standard_normal((d, k)),
                  bias=rng.standard_normal(d))
    R = rng.standard_normal((b, L, d))

    def loss():
        return float(np.sum(K.causal_conv1d_silu_fwd(**inputs) * R))

    dx, dw, db = K.causal_conv1d_silu_bwd(**inputs, dy=R)
    _check(loss, dict(x=dx, weight=dw, bias=db), inputs)
