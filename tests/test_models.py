"""Gradient checks of the model layers and the four forecasters; Mamba's initialisation."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.functional import softplus
from models.gru import GRULayer
from models.mamba import MambaBlock
from models.mingru import MinGRULayer
from tests.gradcheck import assert_grads_close, module_grad_errors
from tests.model_cases import FORECASTERS, perturb_for_gradcheck, small_model

# Tiny shapes keep the element-by-element finite differences fast.
LAYERS = {
    "mamba": (lambda: MambaBlock(4, d_state=3, d_conv=3, backend="numpy", seed=1), (2, 5, 4)),
    "mamba_rank2": (lambda: MambaBlock(3, d_state=2, d_conv=2, expand=1, dt_rank=2, backend="numpy",
                                       seed=2), (2, 4, 3)),
    "mingru": (lambda: MinGRULayer(3, 4, backend="numpy", seed=3), (2, 5, 3)),
    "gru": (lambda: GRULayer(3, 4, backend="numpy", seed=4), (2, 5, 3)),
}


@pytest.mark.parametrize("case", list(LAYERS))
def test_layer_gradients(case):
    build, shape = LAYERS[case]
    layer = build()
    rng = np.random.default_rng(21)
    perturb_for_gradcheck(layer, rng)
    assert_grads_close(module_grad_errors(layer, rng.standard_normal(shape), seed=22))


# NumPy kernels only: thousands of tiny forward passes are slow under Numba's thread
# launches, and the backends are held together by the kernel parity tests.
@pytest.mark.parametrize("case", list(FORECASTERS))
def test_forecaster_gradients(case):
    model = small_model(case, backend="numpy")
    rng = np.random.default_rng(31)
    perturb_for_gradcheck(model, rng)
    x = rng.standard_normal((2, 5, 2))
    errors = module_grad_errors(model, x, seed=32)
    assert set(errors) == set(model.state_dict()) | {"input"}
    assert_grads_close(errors)


def test_hybrid_with_large_alpha_follows_the_mamba_branch():
    # Checks the direction of the blend: s weighs Mamba, 1 - s weighs minGRU.
    model = small_model("hybrid-scalar")
    x = np.random.default_rng(0).standard_normal((2, 5, 2))
    model.p("alpha")[...] = 40.0
    assert model.fusion_weight == pytest.approx(1.0)
    e = model.embed.forward(x)
    ym = model.mamba_blocks.forward(e)
    expected = model.head.forward(model.norm_f.forward(ym)[:, -1])
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-12)


def test_fusion_weight_forms():
    assert small_model("hybrid-scalar").fusion_weight == 0.5
    channel = small_model("hybrid-channel")
    np.testing.assert_array_equal(channel.fusion_weight, np.full(4, 0.5))
    gate = small_model("hybrid-gate")
    assert gate.fusion_weight is None
    gate.forward(np.random.default_rng(0).standard_normal((2, 5, 2)))
    assert 0.0 < gate.fusion_weight < 1.0
    np.testing.assert_array_equal(gate.gate.p("bias"), np.zeros(4))


# ----------------------------------------------------------------------------------
# Mamba initialisation and shapes (DESIGN.md)
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("d_model, dt_rank", [(4, 1), (16, 1), (17, 2), (40, 3)])
def test_mamba_state_dict_shapes(d_model, dt_rank):
    n, k, E = 5, 4, 2 * d_model
    block = MambaBlock(d_model, d_state=n, d_conv=k)
    assert block.dt_rank == dt_rank == math.ceil(d_model / 16)
    shapes = {name: p.shape for name, p in block.state_dict().items()}
    assert shapes == {
        "in_proj.weight": (2 * E, d_model),
        "conv1d.weight": (E, 1, k),
        "conv1d.bias": (E,),
        "x_proj.weight": (dt_rank + 2 * n, E),
        "dt_proj.weight": (E, dt_rank),
        "dt_proj.bias": (E,),
        "A_log": (E, n),
        "D": (E,),
        "out_proj.weight": (d_model, E),
    }


def test_mamba_init():
    block = MambaBlock(20, d_state=6, seed=9)
    E = block.d_inner
    np.testing.assert_allclose(block.p("A_log"), np.tile(np.log(np.arange(1, 7)), (E, 1)), rtol=0, atol=0)
    np.testing.assert_array_equal(block.p("D"), np.ones(E))
    dt = softplus(block.dt_proj.p("bias"))
    assert np.all(dt >= 1e-3 * (1 - 1e-12)) and np.all(dt <= 1e-1 * (1 + 1e-12))
    assert dt.max() / dt.min() > 5                      # spread over the range, not constant
    bound = block.dt_rank ** -0.5
    w = block.dt_proj.p("weight")
    assert np.all(np.abs(w) <= bound) and np.abs(w).max() > 0.5 * bound


def test_submodules_are_initialised_differently():
    model = small_model("hybrid-gate", n_layers=2)
    sd = model.state_dict()
    a, b = sd["mamba_blocks.0.mixer.in_proj.weight"], sd["mamba_blocks.1.mixer.in_proj.weight"]
    assert not np.allclose(a, b)
    z, h = sd["mingru_blocks.0.mixer.linear_z.weight"], sd["mingru_blocks.0.mixer.linear_h.weight"]
    assert not np.allclose(z, h)
    other = small_model("hybrid-gate", n_layers=2, seed=6).state_dict()
    assert not np.allclose(sd["embed.weight"], other["embed.weight"])
