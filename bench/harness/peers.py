"""The PyTorch peers of our layers: the CPU code a user would otherwise pick.

==============  ===============================  ==========================================
our layer       peer                             built as (library defaults)
==============  ===============================  ==========================================
MambaBlock      mambapy's MambaBlock             ``MambaBlock(MambaConfig(d_model, n_layers=1,
                                                 d_state))``: parallel scan (``pscan=True``)
GRULayer        ``torch.nn.GRU``                 ``GRU(H, H, batch_first=True)``
MinGRULayer     minGRU-pytorch's ``minGRU``      ``minGRU(d_model)``: log-space parallel scan
==============  ===============================  ==========================================

A peer runs in its own worker process (:mod:`bench.harness.worker`) that imports torch,
the peer's library and NumPy, never the engine, and changes one setting:
``torch.set_num_threads(N)`` with N the thread count our layers use. The weights go
from the peer to our layer (:meth:`PeerLayer.state` gives them under our names), so
the pair is checked on the peer's own initialisation. mambapy keeps ``A`` and ``D`` in
float32 even in a float64 model, so its float64 pair is checked at float32's tolerance.

minGRU-pytorch is the log-space variant of the paper (its appendix B.3.1): the
candidate is ``g(linear_h(x))`` with ``g(v) = v + 0.5`` for ``v >= 0``, else
``sigmoid(v)``, so hidden states stay positive; the linears have no bias. Our
MinGRULayer is the plain sequential minGRU (candidate ``linear_h(x)``). The parity
check therefore evaluates minGRU-pytorch's function with our layer's linears and
kernels (:func:`mingru_log_space_outputs`), which tests the recurrence, the gate and
every gradient; the timed step is our layer as a user runs it, without ``g`` (one
elementwise operation, against a scan that takes a log, a softplus and a
``logcumsumexp`` on the peer's side).

Module-level imports are NumPy and this package's sizes only.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from bench.harness.sizes import Size, layer_data

__all__ = ["Pair", "PAIRS", "PEER_NAMES", "default_threads", "PeerLayer", "mingru_log_space_outputs"]


@dataclass(frozen=True)
class Pair:
    """One of our layers and its PyTorch peer.

    Attributes
    ----------
    layer : str
        Our class, in :mod:`models`.
    peer : str
        The peer's name in tables and on the worker's command line.
    label : str
        A longer description for tables.
    modules : tuple of str
        What the peer's worker imports (to tell "not installed" before starting it).
    compared_grads : tuple of str or None
        Parameter gradients (our names) compared by the parity check; None: all.
    float64_checked_as : str
        The dtype whose tolerance checks the float64 pair: "float32" for a peer that
        computes part of its float64 model in float32.
    """

    layer: str
    peer: str
    label: str
    modules: tuple
    compared_grads: tuple | None = None
    float64_checked_as: str = "float64"

    def tolerance_dtype(self, dtype) -> np.dtype:
        """The dtype whose tolerance (:func:`engine.parity.tolerance`) applies to the pair in ``dtype``."""
        dtype = np.dtype(dtype)
        return np.dtype(self.float64_checked_as) if dtype == np.float64 else dtype


PAIRS = {
    # mambapy computes A = -exp(A_log.float()) and D.float() in float32 whatever the
    # model's dtype, so in float64 its outputs and gradients carry float32 rounding
    # (measured: 3e-8 relative in the A_log and D gradients, 1e-10 in the output).
    "MambaBlock": Pair("MambaBlock", "mambapy", "mambapy MambaBlock (pscan)", ("torch", "mambapy.mamba"),
                       float64_checked_as="float32"),
    "GRULayer": Pair("GRULayer", "torch.nn.GRU", "torch.nn.GRU", ("torch",)),
    "MinGRULayer": Pair("MinGRULayer", "minGRU-pytorch", "minGRU-pytorch minGRU (log-space)",
                        ("torch", "minGRU_pytorch"), compared_grads=("linear_h.weight", "linear_z.weight")),
}
PEER_NAMES = {p.peer: p.layer for p in PAIRS.values()}


def default_threads() -> int:
    """The cores this process may use: Numba's default thread count, and the peers' one."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


# ----------------------------------------------------------------------------------
# Builders: each returns (module, forward) with forward(x) -> the layer's output
# ----------------------------------------------------------------------------------
def _mambapy(size: Size):
    from mambapy.mamba import MambaBlock, MambaConfig

    block = MambaBlock(MambaConfig(d_model=size.d_model, n_layers=1, d_state=size.d_state))
    return block, block


def _torch_gru(size: Size):
    import torch

    gru = torch.nn.GRU(size.hidden, size.hidden, batch_first=True)
    return gru, lambda x: gru(x)[0]


def _mingru(size: Size):
    from minGRU_pytorch import minGRU

    layer = minGRU(size.d_model)
    return layer, layer


_BUILDERS = {"mambapy": _mambapy, "torch.nn.GRU": _torch_gru, "minGRU-pytorch": _mingru}


def _to_ours(peer: str, named: dict, zero_biases: bool = False) -> dict:
    """A peer's state dict (or gradients) as NumPy arrays under our layer's names.

    ``zero_biases`` adds the biases our MinGRULayer has and minGRU-pytorch lacks, as
    zeros, so the two compute the same function (for a state dict, not for gradients).
    """
    if peer != "minGRU-pytorch":
        return dict(named)      # mambapy and torch.nn.GRU use our names already
    w = named["to_hidden_and_gate.weight"]             # (2H, d): rows hidden, then gate
    H = w.shape[0] // 2
    out = {"linear_h.weight": w[:H], "linear_z.weight": w[H:]}
    if zero_biases:
        out["linear_h.bias"] = np.zeros(H, dtype=w.dtype)
        out["linear_z.bias"] = np.zeros(H, dtype=w.dtype)
    return out


class PeerLayer:
    """A PyTorch peer, built with its library's defaults, ready to step.

    Parameters
    ----------
    spec : dict
        ``layer`` (our layer's name, a key of :data:`PAIRS`), ``dtype``, ``size``
        (a :class:`Size` as a dict), ``seed`` and ``threads``.
    """

    def __init__(self, spec: dict):
        import torch

        self.torch = torch
        self.pair = PAIRS[spec["layer"]]
        default = torch.get_num_threads()
        torch.set_num_threads(int(spec["threads"]))
        torch.manual_seed(int(spec["seed"]))
        size = Size(**spec["size"])
        tdtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(spec["dtype"]).name]
        module, self.forward = _BUILDERS[self.pair.peer](size)
        self.module = module.to(tdtype)
        x, dy = layer_data(size, np.dtype(spec["dtype"]), int(spec["seed"]))
        self.x = torch.from_numpy(x).requires_grad_(True)
        self.dy = torch.from_numpy(dy)
        self.info = {"impl": self.pair.label, "torch": torch.__version__,
                     "torch default threads": default, "torch threads": torch.get_num_threads(),
                     "torch interop threads": torch.get_num_interop_threads(),
                     # a peer's process must hold its own library only (checked by the bench)
                     "engine modules loaded": sorted(m for m in ("engine", "models", "numba") if m in sys.modules)}

    def step(self) -> None:
        """One forward and backward (parameter and input gradients), as a training loop does."""
        self.module.zero_grad(set_to_none=True)
        self.x.grad = None
        self.forward(self.x).backward(self.dy)

    def state(self) -> dict:
        """The peer's weights under our names, as NumPy arrays."""
        sd = {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}
        return _to_ours(self.pair.peer, sd, zero_biases=True)

    def outputs(self) -> tuple:
        """``(output, input gradient, *compared parameter gradients)`` for the parity check."""
        self.module.zero_grad(set_to_none=True)
        self.x.grad = None
        out = self.forward(self.x)
        out.backward(self.dy)
        grads = {k: p.grad.detach().numpy().copy() for k, p in self.module.named_parameters()}
        grads = _to_ours(self.pair.peer, grads)
        keys = sorted(self.pair.compared_grads or grads)
        return (out.detach().numpy().copy(), self.x.grad.numpy().copy()) + tuple(grads[k] for k in keys)


def mingru_log_space_outputs(layer, x: np.ndarray, dy: np.ndarray, keys) -> tuple:
    """minGRU-pytorch's function computed with our MinGRULayer's linears and kernels.

    ``h~ = g(linear_h(x))`` replaces the plain candidate; the recurrence, the gate and
    both linears are our layer's own. Returns what :meth:`PeerLayer.outputs` returns.
    """
    from engine.functional import sigmoid

    layer.zero_grad()
    z_logit = layer.linear_z.forward(x)
    pre = layer.linear_h.forward(x)
    positive = pre >= 0
    s = sigmoid(pre)
    h_tilde = np.where(positive, pre + 0.5, s).astype(layer.dtype)
    zh = np.concatenate([z_logit, h_tilde], axis=-1)         # the kernels take [z_logit | h~]
    h = layer.kernels.mingru_logits_fwd(zh)
    dzh = layer.kernels.mingru_logits_bwd(zh, h, np.ascontiguousarray(dy))
    dz_logit, dh_tilde = dzh[..., :layer.d_hidden], dzh[..., layer.d_hidden:]
    dpre = (dh_tilde * np.where(positive, 1.0, s * (1 - s))).astype(layer.dtype)
    dx = layer.linear_z.backward(dz_logit) + layer.linear_h.backward(dpre)
    grads = layer.grads()
    return (h, dx) + tuple(grads[k] for k in sorted(keys))
