"""Tiny model configurations and backends shared by the model tests."""
from __future__ import annotations

import numpy as np
import pytest

from engine.backend import BackendUnavailableError, get_kernels
from models import build_model
from tests.gradcheck import perturb_parameters

FORECASTERS = {
    "mamba": dict(name="mamba", n_layers=2),
    "mingru": dict(name="mingru", n_layers=2),
    "gru": dict(name="gru", n_layers=2),
    "hybrid-scalar": dict(name="hybrid", fusion="scalar"),
    "hybrid-channel": dict(name="hybrid", fusion="channel"),
    "hybrid-gate": dict(name="hybrid", fusion="gate"),
}


def _backend_param(name: str):
    # Only a missing numba package skips; a broken kernel module must fail loudly.
    try:
        get_kernels(name)
    except BackendUnavailableError as exc:
        return pytest.param(name, marks=pytest.mark.skip(reason=str(exc)))
    return pytest.param(name)


BACKENDS = [_backend_param("numpy"), _backend_param("numba")]


def small_model(case: str, **kw):
    """A tiny forecaster of ``FORECASTERS[case]``: input 2, hidden 4, d_state 3, horizon 2."""
    args = dict(input_size=2, hidden_size=4, d_state=3, horizon=2, seed=5)
    args.update(FORECASTERS[case])
    args.update(kw)
    return build_model(**args)


def perturb_for_gradcheck(module, rng: np.random.Generator) -> None:
    """Random parameters away from their initial values, with Mamba's SSM made to matter.

    At initialisation ``delta = softplus(dt_proj.bias)`` is about 0.01 and ``B``, ``C``
    are small, so ``A_log`` and ``dt_proj`` barely move the loss and their finite
    differences would drown in rounding error.
    """
    perturb_parameters(module, rng)
    for name, p, _ in module.named_parameters():
        if name.endswith("dt_proj.bias"):
            p[...] = rng.uniform(-1.0, 0.5, p.shape)
        elif name.endswith("x_proj.weight"):
            p[...] = rng.uniform(-1.0, 1.0, p.shape)
