"""The long-horizon forecaster: gradients, layout of its output, options, both backends."""
from __future__ import annotations

import numpy as np
import pytest

from models import build_model
from tests.gradcheck import assert_grads_close, module_grad_errors
from tests.model_cases import BACKENDS, perturb_for_gradcheck


def small(name="hybrid", backend="numpy", **kw):
    args = dict(input_size=3, hidden_size=4, d_state=2, horizon=5, seed=1, channels="independent",
                seq_len=6, seg_len=2, norm="revin", linear_path=True)
    args.update(kw)
    return build_model(name, backend=backend, **args)


OPTIONS = {
    "independent-revin-linear": {},
    "independent-plain": dict(norm="none", linear_path=False),
    "independent-last": dict(norm="last"),
    "independent-mean": dict(norm="mean", linear_path=False),
    "mixed-revin-linear": dict(channels="mixed"),
    "mixed-revin": dict(channels="mixed", linear_path=False),
    "mixed-last": dict(channels="mixed", norm="last"),
    "mixed-mean": dict(channels="mixed", norm="mean"),
    "one-step-tokens": dict(seg_len=1),
}


@pytest.mark.parametrize("name", ["mamba", "mingru", "gru", "hybrid"])
@pytest.mark.parametrize("option", list(OPTIONS))
def test_gradients_match_finite_differences(name, option):
    model = small(name, **OPTIONS[option])
    rng = np.random.default_rng(3)
    perturb_for_gradcheck(model, rng)
    x = rng.standard_normal((2, 6, 3)) * 2.0 + 0.5
    errors = module_grad_errors(model, x, seed=4)
    assert set(errors) == set(model.state_dict()) | {"input"}
    assert_grads_close(errors)


@pytest.mark.parametrize("norm", ["revin", "mean", "last", "none"])
def test_output_is_step_major_and_the_norm_restores_the_level(norm):
    # Without a linear path and with the encoder's head zeroed the normalised forecast is 0,
    # so the forecast must be each window's own level (mean or last value) for every step.
    model = small("mingru", linear_path=False, norm=norm)
    model.encoder.head.p("weight")[...] = 0
    model.encoder.head.p("bias")[...] = 0
    x = np.random.default_rng(0).standard_normal((4, 6, 3)) * 5 + np.array([10.0, -3.0, 0.5])
    y = model.forward(x).reshape(4, 5, 3)
    level = {"revin": x.mean(axis=1, keepdims=True), "mean": x.mean(axis=1, keepdims=True),
             "last": x[:, -1:], "none": np.zeros((4, 1, 3))}[norm]
    np.testing.assert_allclose(y, np.broadcast_to(level, y.shape), rtol=1e-12, atol=1e-12)


def test_channels_are_independent_series_through_shared_weights():
    # Channel independence: changing channel 0's inputs leaves channels 1 and 2's forecasts alone.
    model = small("hybrid")
    x = np.random.default_rng(1).standard_normal((2, 6, 3))
    y0 = model.forward(x).reshape(2, 5, 3)
    x2 = x.copy()
    x2[:, :, 0] += np.linspace(0, 3, 6)
    y1 = model.forward(x2).reshape(2, 5, 3)
    np.testing.assert_array_equal(y0[:, :, 1:], y1[:, :, 1:])
    assert np.max(np.abs(y0[:, :, 0] - y1[:, :, 0])) > 1e-3
    # ...and a mixed model does let channels meet.
    mixed = small("hybrid", channels="mixed")
    assert np.max(np.abs(mixed.forward(x).reshape(2, 5, 3)[:, :, 1:]
                         - mixed.forward(x2).reshape(2, 5, 3)[:, :, 1:])) > 1e-6


def test_config_rebuilds_the_same_model_and_state_dict_names():
    model = small("hybrid", channels="mixed", seg_len=3)
    clone = build_model(**model.config, backend="numpy", seed=1)
    x = np.random.default_rng(2).standard_normal((2, 6, 3))
    clone.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(clone.forward(x), model.forward(x))
    keys = list(model.state_dict())
    assert keys[-2:] == ["linear.weight", "linear.bias"]
    assert all(k.startswith(("encoder.", "linear.")) for k in keys)
    assert model.state_dict()["linear.weight"].shape == (5, 6)


@pytest.mark.parametrize("bad, message", [
    (dict(seg_len=4), "must divide"),
    (dict(channels="diagonal"), "unknown channels"),
    (dict(norm="zscore"), "unknown instance norm"),
    (dict(seq_len=0), "seq_len"),
])
def test_bad_options_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        small(**bad)


def test_wrong_input_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(batch, 6, 3\)"):
        small().forward(np.zeros((2, 7, 3)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree(backend, dtype):
    ref = small("hybrid", backend="numpy", dtype=dtype, channels="mixed")
    model = small("hybrid", backend=backend, dtype=dtype, channels="mixed")
    model.load_state_dict(ref.state_dict())
    x = np.random.default_rng(5).standard_normal((3, 6, 3)).astype(dtype)
    dy = np.random.default_rng(6).standard_normal((3, 15)).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(model.forward(x), ref.forward(x), rtol=tol, atol=tol)
    np.testing.assert_allclose(model.backward(dy), ref.backward(dy), rtol=tol, atol=tol)
    for (k, g), (_, g_ref) in zip(model.grads().items(), ref.grads().items()):
        np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol, err_msg=k)
    assert model.forward(x).dtype == dtype


@pytest.mark.parametrize("norm", ["none", "mean", "revin"])
def test_least_squares_start_forecasts_the_closed_form_map(norm):
    from forecast.ltsf.dataset import LinearMap

    rng = np.random.default_rng(7)
    X = np.cumsum(rng.standard_normal((200, 6, 3)), axis=1)
    y = X[:, -1:, :] + 0.3 * np.cumsum(rng.standard_normal((200, 5, 3)), axis=1)
    model = small("hybrid", norm=norm)
    model.init_linear_path(X, y.reshape(200, -1))
    pred = model.forward(X).reshape(200, 5, 3)
    if norm == "none":
        expected = LinearMap().fit(X, y).predict(X)
    elif norm == "mean":
        mu = X.mean(axis=1, keepdims=True)
        expected = LinearMap().fit(X - mu, y - mu).predict(X - mu) + mu
    else:
        # The start minimises the training loss, on the de-normalised scale: a least-squares
        # problem whose rows are weighted by each window's sd. Its normal equations hold.
        mu = X.mean(axis=1, keepdims=True)
        sd = np.sqrt(X.var(axis=1, keepdims=True) + 1e-5)
        xn = np.hstack([((X - mu) / sd).transpose(0, 2, 1).reshape(-1, 6), np.ones((600, 1))])
        resid = ((y - pred) / sd).transpose(0, 2, 1).reshape(-1, 5)
        w2 = (sd ** 2).transpose(0, 2, 1).reshape(-1, 1)
        np.testing.assert_allclose(xn.T @ (w2 * resid), 0, atol=1e-8)
        return
    np.testing.assert_allclose(pred, expected, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="linear_path=True"):
        small("mingru", linear_path=False).init_linear_path(X, y.reshape(200, -1))
