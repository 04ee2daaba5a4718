"""The layer contract on every forecaster: state dicts, gradients, dtypes, config, errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models import MODEL_NAMES, build_model
from tests.gradcheck import perturb_parameters
from tests.model_cases import BACKENDS, FORECASTERS, small_model

CASES = list(FORECASTERS)


def _x(dtype=np.float64, batch=3, seq_len=6):
    return np.random.default_rng(8).standard_normal((batch, seq_len, 2)).astype(dtype)


def _forward_backward(model, x):
    y = model.forward(x)
    dy = np.random.default_rng(9).standard_normal(y.shape).astype(y.dtype)
    return y, model.backward(dy)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_shapes_and_name(case, backend):
    model = small_model(case, backend=backend)
    x = _x()
    y, dx = _forward_backward(model, x)
    assert y.shape == (3, 2) and dx.shape == x.shape
    assert model.name == FORECASTERS[case]["name"]
    assert model.backend == backend


@pytest.mark.parametrize("case", CASES)
def test_state_dict_round_trip(case):
    src = small_model(case, seed=1)
    perturb_parameters(src, np.random.default_rng(0))     # not just the initial values
    dst = small_model(case, seed=2)
    x = _x()
    assert not np.allclose(src.forward(x), dst.forward(x))
    dst.load_state_dict(src.state_dict())
    np.testing.assert_array_equal(dst.forward(x), src.forward(x))
    # state_dict returns copies: editing them must not touch the model.
    sd = dst.state_dict()
    next(iter(sd.values()))[...] = 123.0
    np.testing.assert_array_equal(dst.forward(x), src.forward(x))


@pytest.mark.parametrize("case", CASES)
def test_grads_match_state_dict(case):
    model = small_model(case)
    _forward_backward(model, _x())
    sd, grads = model.state_dict(), model.grads()
    assert list(grads) == list(sd)
    assert {k: g.shape for k, g in grads.items()} == {k: p.shape for k, p in sd.items()}
    assert all(np.any(g != 0) for g in grads.values()), "some parameter gets no gradient"


@pytest.mark.parametrize("case", CASES)
def test_backward_accumulates_and_zero_grad_resets(case):
    model = small_model(case)
    x = _x()
    _forward_backward(model, x)
    once = model.grads()
    _forward_backward(model, x)
    for k, g in model.grads().items():
        np.testing.assert_allclose(g, 2 * once[k], rtol=1e-14, atol=0, err_msg=k)
    model.zero_grad()
    assert all(not np.any(g) for g in model.grads().values())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES)
def test_float32_end_to_end(case, backend):
    m32 = small_model(case, dtype=np.float32, backend=backend)
    m64 = small_model(case, dtype=np.float64, backend=backend)
    assert all(p.dtype == np.float32 for p in m32.state_dict().values())
    y32, dx32 = _forward_backward(m32, _x(np.float32))
    y64, dx64 = _forward_backward(m64, _x(np.float64))
    assert y32.dtype == np.float32 and dx32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in m32.grads().values())
    # Same seed, same maths: float32 must agree with float64 to single precision.
    np.testing.assert_allclose(y32, y64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-5)
    # A float64 input to a float32 model is cast, not promoted through.
    assert m32.forward(_x(np.float64)).dtype == np.float32


@pytest.mark.parametrize("case", CASES)
def test_load_state_dict_rejects_bad_dicts(case):
    model = small_model(case)
    sd = model.state_dict()
    key = next(iter(sd))
    bad_shape = dict(sd)
    bad_shape[key] = np.zeros(sd[key].shape + (1,))
    with pytest.raises(ValueError, match="shape"):
        model.load_state_dict(bad_shape)
    missing = dict(sd)
    del missing[key]
    with pytest.raises(KeyError, match="missing"):
        model.load_state_dict(missing)
    with pytest.raises(KeyError, match="unexpected"):
        model.load_state_dict({**sd, "extra.weight": np.zeros(1)})


@pytest.mark.parametrize("case", CASES)
def test_config_rebuilds_the_architecture(case):
    model = small_model(case, n_layers=2, seed=3)
    config = json.loads(json.dumps(model.config))          # checkpoints store it as JSON
    assert set(config) == {"name", "input_size", "hidden_size", "d_state", "n_layers", "horizon", "fusion"}
    clone = build_model(**config, seed=3)
    assert clone.config == model.config
    assert type(clone) is type(model)
    sd, sd2 = model.state_dict(), clone.state_dict()
    assert list(sd2) == list(sd)
    for k in sd:
        np.testing.assert_array_equal(sd2[k], sd[k], err_msg=k)


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        build_model("transformer", input_size=2)
    for name in MODEL_NAMES:
        assert name in str(err.value)
    assert build_model(" GRU ", input_size=2, hidden_size=3).name == "gru"


@pytest.mark.parametrize("bad", [
    dict(input_size=0), dict(hidden_size=0), dict(d_state=0), dict(n_layers=0),
    dict(horizon=-1), dict(hidden_size=2.5), dict(n_layers=True), dict(fusion="sum"),
])
def test_build_model_rejects_impossible_arguments(bad):
    args = dict(name="hybrid", input_size=2, hidden_size=4)
    args.update(bad)
    with pytest.raises(ValueError):
        build_model(**args)


@pytest.mark.parametrize("case", CASES)
def test_wrong_input_shape_raises(case):
    model = small_model(case)
    with pytest.raises(ValueError, match="input"):
        model.forward(np.zeros((3, 6, 5)))                  # 5 features, model wants 2
    with pytest.raises(ValueError, match="input"):
        model.forward(np.zeros((6, 2)))                     # no batch axis


def test_output_depends_on_early_steps_only_through_the_past():
    # The forecast of a window uses the whole window; a change at the first step reaches it.
    for case in CASES:
        model = small_model(case)
        x = _x()
        x2 = x.copy()
        x2[:, 0] += 1.0
        assert not np.allclose(model.forward(x), model.forward(x2)), case
