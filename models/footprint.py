"""How big a model is before it is built: parameter and activation counts.

Building a model allocates all its weights at once, so a size typed by mistake
(``--hidden 100000000``) asks for petabytes before anything can say so. These counts
come from the architecture alone, allocate nothing, and let the caller refuse such
sizes first.

* :func:`parameter_count` is exact: ``tests/test_bad_values.py`` holds it to
  ``num_parameters()`` of built models of every kind.
* :func:`activation_count` estimates the floats one training step keeps alive (the
  forward caches and the backward's temporaries); it is meant to be right within a
  small factor, which is all a refusal of absurd sizes needs.
"""
from __future__ import annotations

import math

from models.names import HYBRID, RNN_BASELINE

__all__ = ["parameter_count", "activation_count"]

#: MambaBlock's fixed shape options (see models.mamba.MambaBlock).
_D_CONV, _EXPAND = 4, 2


def _linear(d_in: int, d_out: int, bias: bool = True) -> int:
    return d_out * d_in + (d_out if bias else 0)


def _mamba(H: int, N: int) -> int:
    E, R = _EXPAND * H, math.ceil(H / 16)
    return (_linear(H, 2 * E, bias=False) + E * _D_CONV + E + _linear(E, R + 2 * N, bias=False)
            + _linear(R, E) + E * N + E + _linear(E, H, bias=False))


def _mingru(d_in: int, H: int) -> int:
    return 2 * _linear(d_in, H)


def _gru(d_in: int, H: int) -> int:
    return 3 * H * d_in + 3 * H * H + 6 * H


def _stack(kind: str, H: int, N: int, n_layers: int) -> int:
    """``n_layers`` residual blocks: the mixer plus its RMSNorm weight."""
    mixer = _mamba(H, N) if kind == "mamba" else _mingru(H, H)
    return n_layers * (mixer + H)


def _encoder(name: str, d_in: int, H: int, N: int, n_layers: int, outputs: int, fusion: str) -> int:
    head = _linear(H, outputs)
    if name == RNN_BASELINE:
        return _gru(d_in, H) + (n_layers - 1) * _gru(H, H) + head
    embed, norm_f = _linear(d_in, H), H
    if name == HYBRID:
        fuse = {"scalar": 1, "channel": H, "gate": _linear(2 * H, H)}[fusion]
        return embed + _stack("mamba", H, N, n_layers) + _stack("mingru", H, N, n_layers) + fuse + norm_f + head
    return embed + _stack(name, H, N, n_layers) + norm_f + head


def _layout(config: dict) -> tuple[int, int, int]:
    """``(features per token, outputs, sequences per window)`` of the encoder."""
    C, horizon = int(config["input_size"]), int(config["horizon"])
    if config.get("channels") is None:
        return C, horizon, 1
    w = int(config["seg_len"])
    if config["channels"] == "independent":
        return w, horizon, C
    return w * C, horizon * C, 1


def parameter_count(config: dict) -> int:
    """Number of scalar parameters of ``build_model(**config)``, without building it.

    Parameters
    ----------
    config : dict
        The keyword arguments of :func:`models.build_model` (a model's ``config``):
        ``name, input_size, hidden_size, d_state, n_layers, horizon, fusion`` and, for
        the long-horizon forecaster, ``channels, seq_len, seg_len, linear_path``.

    Returns
    -------
    int
    """
    d_in, outputs, _ = _layout(config)
    total = _encoder(str(config["name"]), d_in, int(config["hidden_size"]), int(config.get("d_state", 16)),
                     int(config.get("n_layers", 1)), outputs, str(config.get("fusion", "scalar")))
    if config.get("channels") is not None and config.get("linear_path"):
        total += _linear(int(config["seq_len"]), int(config["horizon"]))
    return total


def _per_step(name: str, H: int, N: int, reference_scan: bool) -> int:
    """Floats one time step of one sequence keeps per layer through forward and backward.

    Counted from the layers' caches (inputs, projections, gates) times two for the
    backward's gradients of the same shapes. The NumPy reference scan's backward also
    holds its ``(d_inner, d_state)`` states and their factors per step; the Numba kernels
    recompute them per channel instead.
    """
    if name == RNN_BASELINE:
        return 2 * (4 * 3 * H + 2 * H)
    mingru = 2 * (6 * H)
    E = _EXPAND * H
    mamba = 2 * (2 * H + 7 * E + 3 * N + math.ceil(H / 16)) + (3 * E * N if reference_scan else 0)
    if name == HYBRID:
        return mamba + mingru
    return mamba if name == "mamba" else mingru


def activation_count(config: dict, batch: int, seq_len: int, reference_scan: bool = True) -> int:
    """Estimated floats alive during one training step on ``batch`` windows.

    Parameters
    ----------
    config : dict
        As for :func:`parameter_count`.
    batch : int
        Windows per step.
    seq_len : int
        Window length (the long-horizon forecaster runs ``seq_len / seg_len`` tokens).
    reference_scan : bool
        Whether Mamba's scan runs on the NumPy reference kernels (numpy backend), whose
        backward holds every ``(batch, step, d_inner, d_state)`` state.

    Returns
    -------
    int
    """
    d_in, outputs, sequences = _layout(config)
    steps = int(seq_len)
    if config.get("channels") is not None:
        steps = int(config["seq_len"]) // int(config["seg_len"])
    H, N = int(config["hidden_size"]), int(config.get("d_state", 16))
    rows = int(batch) * sequences * steps
    per_layer = _per_step(str(config["name"]), H, N, reference_scan)
    # The input, its embedding and gradient, and the head's output stay besides the layers.
    return rows * (int(config.get("n_layers", 1)) * per_layer + 2 * d_in + 2 * H) + int(batch) * outputs
