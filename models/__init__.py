"""Models: the layers (MambaBlock, MinGRULayer, GRULayer), the forecasters and :func:`build_model`."""
from __future__ import annotations

import numbers

import numpy as np

from models.forecasters import Forecaster, GRUForecaster, HybridForecaster, ResidualForecaster
from models.gru import GRULayer
from models.mamba import MambaBlock
from models.mingru import MinGRULayer
from models.names import FUSIONS, HYBRID, MODEL_NAMES, RNN_BASELINE

__all__ = ["MODEL_NAMES", "FUSIONS", "build_model", "Forecaster", "MambaBlock", "MinGRULayer",
           "GRULayer"]


def _positive_int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    return int(value)


def build_model(name: str, input_size: int, hidden_size: int = 64, d_state: int = 16,
                n_layers: int = 1, horizon: int = 1, backend=None, dtype=np.float64,
                seed: int = 0, fusion: str = "scalar") -> Forecaster:
    """Build a forecaster by name.

    Parameters
    ----------
    name : {"mamba", "mingru", "gru", "hybrid"}
        Case-insensitive.
    input_size : int
        Features per time step of the input window.
    hidden_size : int
        Model width ``H``.
    d_state : int
        SSM state size of the Mamba blocks (ignored by "mingru" and "gru").
    n_layers : int
        Residual blocks per branch, or stacked GRU layers.
    horizon : int
        Number of outputs per window.
    backend : {"numpy", "numba"} or None
        Kernel set; ``None`` takes the process default.
    dtype : numpy dtype
        float64 or float32.
    seed : int
        Seed of the parameter initialisation.
    fusion : {"scalar", "channel", "gate"}
        How the hybrid weighs its branches (ignored by the other models).

    Returns
    -------
    Forecaster
        Maps ``(batch, seq_len, input_size)`` to ``(batch, horizon)``. Its ``config``
        dict holds ``name, input_size, hidden_size, d_state, n_layers, horizon, fusion``,
        so ``build_model(**model.config)`` rebuilds the architecture (backend, dtype and
        seed are not part of it and take their defaults unless passed as well).

    Raises
    ------
    ValueError
        For an unknown name or fusion, or a size below 1.
    """
    key = str(name).strip().lower()
    if key not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    fusion_key = str(fusion).strip().lower()
    if fusion_key not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
    config = dict(name=key)
    for arg, value in (("input_size", input_size), ("hidden_size", hidden_size),
                       ("d_state", d_state), ("n_layers", n_layers), ("horizon", horizon)):
        config[arg] = _positive_int(arg, value)
    config["fusion"] = fusion_key
    kw = dict(backend=backend, dtype=dtype, seed=seed)
    if key == RNN_BASELINE:
        return GRUForecaster(config, **kw)
    if key == HYBRID:
        return HybridForecaster(config, **kw)
    return ResidualForecaster(config, **kw)
