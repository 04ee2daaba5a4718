"""Models: the layers (MambaBlock, MinGRULayer, GRULayer), the forecasters and :func:`build_model`."""
from __future__ import annotations

import numbers

import numpy as np

from models.forecasters import Forecaster, GRUForecaster, HybridForecaster, ResidualForecaster
from models.gru import GRULayer
from models.longhorizon import CHANNEL_MODES, INSTANCE_NORMS, LongHorizonForecaster
from models.mamba import MambaBlock
from models.mingru import MinGRULayer
from models.names import FUSIONS, HYBRID, MODEL_NAMES, RNN_BASELINE

__all__ = ["MODEL_NAMES", "FUSIONS", "CHANNEL_MODES", "INSTANCE_NORMS", "build_model", "Forecaster",
           "LongHorizonForecaster", "MambaBlock", "MinGRULayer", "GRULayer"]


def _positive_int(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    return int(value)


def build_model(name: str, input_size: int, hidden_size: int = 64, d_state: int = 16,
                n_layers: int = 1, horizon: int = 1, backend=None, dtype=np.float64,
                seed: int = 0, fusion: str = "scalar", channels: str | None = None,
                seq_len: int | None = None, seg_len: int = 1, norm: str = "none",
                linear_path: bool = False):
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
    channels : {"independent", "mixed"} or None
        None (default): the one-target forecaster above. Otherwise a
        :class:`models.longhorizon.LongHorizonForecaster`: all ``input_size`` channels in,
        ``horizon`` steps of every channel out, with the options below.
    seq_len : int or None
        Window length; required with ``channels``.
    seg_len : int
        Steps per token (must divide ``seq_len``); with ``channels`` only.
    norm : {"none", "last", "mean", "revin"}
        Instance normalisation of each window (see :mod:`models.longhorizon`); with
        ``channels`` only.
    linear_path : bool
        A linear window-to-horizon path added to the encoder's forecast; with
        ``channels`` only.

    Returns
    -------
    Forecaster or LongHorizonForecaster
        Maps ``(batch, seq_len, input_size)`` to ``(batch, horizon)``, or with
        ``channels`` to ``(batch, horizon * input_size)``. Its ``config`` dict holds its
        keyword arguments (``name, input_size, hidden_size, d_state, n_layers, horizon,
        fusion`` and, with ``channels``, ``channels, seq_len, seg_len, norm,
        linear_path``), so ``build_model(**model.config)`` rebuilds the architecture
        (backend, dtype and seed are not part of it and take their defaults unless
        passed as well).

    Raises
    ------
    ValueError
        For an unknown name, fusion or channels mode, a size below 1, or a ``seg_len``
        that does not divide ``seq_len``.
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
    if channels is None:
        return _encoder(config, **kw)
    mode = str(channels).strip().lower()
    if mode not in CHANNEL_MODES:
        raise ValueError(f"unknown channels mode {channels!r}; choose one of {', '.join(CHANNEL_MODES)}")
    config.update(channels=mode, seq_len=_positive_int("seq_len", seq_len),
                  seg_len=_positive_int("seg_len", seg_len), norm=str(norm), linear_path=bool(linear_path))

    def inner(token_size: int, outputs: int, inner_seed: int) -> Forecaster:
        return _encoder(dict(config, input_size=token_size, horizon=outputs), backend=backend,
                        dtype=dtype, seed=inner_seed)

    return LongHorizonForecaster(config, inner, **kw)


def _encoder(config: dict, **kw) -> Forecaster:
    """The one-target forecaster of ``config["name"]``."""
    if config["name"] == RNN_BASELINE:
        return GRUForecaster(config, **kw)
    if config["name"] == HYBRID:
        return HybridForecaster(config, **kw)
    return ResidualForecaster(config, **kw)
