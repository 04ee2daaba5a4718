"""Building blocks with hand-written backward passes.

Each layer keeps its forward and backward side by side. ``forward`` caches what
``backward`` needs; ``backward(dy)`` returns the input gradient and *adds* the parameter
gradients into the buffers of :class:`engine.module.Module`, so gradients of several
backward calls accumulate until ``zero_grad``.

Shapes: ``b`` batch, ``L`` sequence length, ``d`` features. Every array a layer returns
has the layer's dtype; Python scalars are used for constants because NumPy treats them
as "weak" and does not promote float32 arrays with them.
"""
from __future__ import annotations

import numpy as np

from engine.module import Module

__all__ = ["Linear", "RMSNorm", "CausalConv1d"]


# ----------------------------------------------------------------------------------
# Linear: y = x W^T + b over the last axis
# ----------------------------------------------------------------------------------
class Linear(Module):
    """Affine map over the last axis, ``y = x @ weight.T + bias``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Whether to add a bias.
    backend, dtype, seed
        See :class:`engine.module.Module`.

    Notes
    -----
    Keys ``weight (out, in)`` and ``bias (out,)``. Both start ``U(-1/sqrt(in), 1/sqrt(in))``,
    PyTorch's default.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(backend=backend, dtype=dtype, seed=seed)
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.use_bias = bool(bias)
        bound = 1 / np.sqrt(self.in_features)
        rng = self.rng()
        self.add_param("weight", rng.uniform(-bound, bound, (self.out_features, self.in_features)))
        if self.use_bias:
            self.add_param("bias", rng.uniform(-bound, bound, self.out_features))
        self._x = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Apply the map. ``x (..., in) -> y (..., out)``."""
        x = self._as_input(x)
        self._x = x
        # One 2-D product over all leading axes (a 3-D ``@`` would run one small product
        # per batch row).
        x2 = x.reshape(-1, self.in_features)                            # (N, in)
        y = self.kernels.linear_fwd(x2, self.p("weight"), self.p("bias") if self.use_bias else None)
        return y.reshape(*x.shape[:-1], self.out_features)              # (..., out)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy (..., out) -> dx (..., in)``; accumulates ``weight`` and ``bias`` grads."""
        dy = self._as_input(dy)
        x2 = self._x.reshape(-1, self.in_features)                      # (N, in)
        dy2 = dy.reshape(-1, self.out_features)                         # (N, out)
        dx, dw, db = self.kernels.linear_bwd(x2, self.p("weight"), dy2)
        self.g("weight")[...] += dw                                     # (out, in)
        if self.use_bias:
            self.g("bias")[...] += db
        return dx.reshape(self._x.shape)                                # (..., in)


# ----------------------------------------------------------------------------------
# RMSNorm: y = x / sqrt(mean(x^2) + eps) * weight over the last axis
# ----------------------------------------------------------------------------------
class RMSNorm(Module):
    """Root-mean-square normalisation over the last axis with a learned gain.

    Parameters
    ----------
    d : int
        Size of the last axis.
    eps : float
        Added to the mean square before the square root.
    backend, dtype, seed
        See :class:`engine.module.Module`.

    Notes
    -----
    Key ``weight (d,)``, initialised to ones.
    """

    def __init__(self, d: int, eps: float = 1e-5, backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(backend=backend, dtype=dtype, seed=seed)
        self.d = int(d)
        self.eps = float(eps)
        self.add_param("weight", np.ones(self.d))
        self._x = None
        self._rstd = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (..., d) -> y (..., d)``."""
        x = self._as_input(x)
        x2 = x.reshape(-1, self.d)                                        # (N, d)
        y, self._rstd = self.kernels.rmsnorm_fwd(x2, self.p("weight"), self.eps)
        self._x = x2
        return y.reshape(x.shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy (..., d) -> dx (..., d)``; accumulates the ``weight`` grad."""
        dy = self._as_input(dy)
        dx, dw = self.kernels.rmsnorm_bwd(self._x, self.p("weight"), self._rstd, dy.reshape(-1, self.d))
        self.g("weight")[...] += dw
        return dx.reshape(dy.shape)


# ----------------------------------------------------------------------------------
# Causal depthwise Conv1d, left padding k - 1 (the time loop lives in the kernels)
# ----------------------------------------------------------------------------------
class CausalConv1d(Module):
    """Depthwise causal 1-D convolution over time.

    ``y[t, c] = bias[c] + sum_j weight[c, 0, j] * x[t - (k-1) + j, c]`` with zeros
    before the start, so output ``t`` sees inputs ``<= t`` only.

    Parameters
    ----------
    channels : int
    kernel_size : int
    backend, dtype, seed
        See :class:`engine.module.Module`.
    activation : None or "silu"
        ``"silu"`` returns ``silu(y)`` from one fused kernel
        (``causal_conv1d_silu_fwd/bwd``), which recomputes ``y`` in backward instead
        of storing it. ``None`` (default) returns ``y``.

    Notes
    -----
    Keys ``weight (channels, 1, kernel_size)`` (PyTorch's depthwise ``Conv1d`` layout)
    and ``bias (channels,)``, both ``U(-1/sqrt(k), 1/sqrt(k))`` as in PyTorch; the
    activation has no parameters, so the keys do not depend on it.
    """

    def __init__(self, channels: int, kernel_size: int, backend=None, dtype=np.float64,
                 seed: int = 0, activation=None):
        super().__init__(backend=backend, dtype=dtype, seed=seed)
        if activation not in (None, "silu"):
            raise ValueError(f"activation must be None or 'silu', got {activation!r}")
        self.channels = int(channels)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        bound = 1 / np.sqrt(self.kernel_size)      # fan_in of one depthwise group
        rng = self.rng()
        self.add_param("weight", rng.uniform(-bound, bound, (self.channels, 1, self.kernel_size)))
        self.add_param("bias", rng.uniform(-bound, bound, self.channels))
        self._x = None

    def _kernel_weight(self) -> np.ndarray:
        return self.p("weight").reshape(self.channels, self.kernel_size)   # (d, k), a view

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, d) -> y (b, L, d)`` (``silu(y)`` with ``activation="silu"``)."""
        x = np.ascontiguousarray(self._as_input(x))
        self._x = x
        if self.activation == "silu":
            return self.kernels.causal_conv1d_silu_fwd(x, self._kernel_weight(), self.p("bias"))
        return self.kernels.causal_conv1d_fwd(x, self._kernel_weight(), self.p("bias"))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy (b, L, d) -> dx (b, L, d)``; accumulates ``weight`` and ``bias`` grads."""
        dy = np.ascontiguousarray(self._as_input(dy))
        if self.activation == "silu":
            dx, dw, db = self.kernels.causal_conv1d_silu_bwd(
                self._x, self._kernel_weight(), self.p("bias"), dy)
        else:
            dx, dw, db = self.kernels.causal_conv1d_bwd(self._x, self._kernel_weight(), dy)
        self.g("weight")[...] += dw.reshape(self.g("weight").shape)
        self.g("bias")[...] += db
        return dx
