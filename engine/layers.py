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

__all__ = [
    "derive_seed",
    "sigmoid",
    "sigmoid_grad",
    "silu",
    "silu_grad",
    "softplus",
    "softplus_grad",
    "softplus_inverse",
    "tanh",
    "tanh_grad",
    "mse_loss",
    "Linear",
    "RMSNorm",
    "CausalConv1d",
]


def derive_seed(seed: int, stream: int) -> int:
    """An independent seed for sub-module ``stream`` of a module seeded with ``seed``.

    Parameters
    ----------
    seed : int
        The parent module's seed.
    stream : int
        Index of the sub-module; different streams give unrelated seeds.

    Returns
    -------
    int
        A seed in ``[0, 2**31)``.
    """
    # SeedSequence hashes the pair, so (seed, 1) and (seed + 1, 0) do not collide.
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0] >> 1)


# ----------------------------------------------------------------------------------
# Activations. Each ``f_grad(x)`` is the elementwise derivative f'(x).
# ----------------------------------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic sigmoid ``1 / (1 + exp(-x))`` without overflow for large ``|x|``.

    Parameters
    ----------
    x : ndarray

    Returns
    -------
    ndarray
        Same shape and dtype as ``x``, values in ``[0, 1]``.
    """
    # For x << 0, exp(-x) overflows to inf and 1 / (1 + inf) is exactly 0, the right
    # limit; silencing that warning is cheaper than a two-branch formula (one exp, no where).
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """Derivative of :func:`sigmoid`: ``s * (1 - s)``."""
    s = sigmoid(x)
    return s * (1 - s)


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU (swish): ``x * sigmoid(x)``."""
    return x * sigmoid(x)


def silu_grad(x: np.ndarray) -> np.ndarray:
    """Derivative of :func:`silu`: ``s * (1 + x * (1 - s))`` with ``s = sigmoid(x)``."""
    s = sigmoid(x)
    return s * (1 + x * (1 - s))


def softplus(x: np.ndarray) -> np.ndarray:
    """Softplus ``log(1 + exp(x))``, stable for large positive and negative ``x``.

    Parameters
    ----------
    x : ndarray

    Returns
    -------
    ndarray
        Same shape and dtype as ``x``, strictly positive where representable.
    """
    # log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow, no loss of small values.
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def softplus_grad(x: np.ndarray) -> np.ndarray:
    """Derivative of :func:`softplus`, which is :func:`sigmoid`."""
    return sigmoid(x)


def softplus_inverse(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`softplus` for ``y > 0``: ``y + log(-expm1(-y))``.

    Parameters
    ----------
    y : ndarray
        Positive values.

    Returns
    -------
    ndarray
        ``x`` with ``softplus(x) == y``.
    """
    # log(e^y - 1) written so it stays accurate for tiny and for large y.
    return y + np.log(-np.expm1(-y))


def tanh(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent."""
    return np.tanh(x)


def tanh_grad(x: np.ndarray) -> np.ndarray:
    """Derivative of :func:`tanh`: ``1 - tanh(x)**2``."""
    t = np.tanh(x)
    return 1 - t * t


def mse_loss(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error and its gradient.

    Parameters
    ----------
    pred : ndarray
        Predictions, any shape.
    target : array-like
        Targets, same shape as ``pred``.

    Returns
    -------
    loss : float
        ``mean((pred - target)**2)``.
    dpred : ndarray
        ``d loss / d pred``, same shape and dtype as ``pred``.

    Raises
    ------
    ValueError
        If the shapes differ (broadcasting would silently give a wrong loss).
    """
    pred = np.asarray(pred)
    target = np.asarray(target, dtype=pred.dtype)
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: pred shape {pred.shape} != target shape {target.shape}")
    diff = pred - target
    loss = float(np.mean(diff * diff))
    dpred = diff * (2 / diff.size)
    return loss, dpred


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
        # One 2-D GEMM: a 3-D ``@`` would run one small BLAS call per batch row.
        x2 = x.reshape(-1, self.in_features)                            # (N, in)
        y = x2 @ self.p("weight").T                                      # (N, out)
        if self.use_bias:
            y += self.p("bias")
        return y.reshape(*x.shape[:-1], self.out_features)              # (..., out)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy (..., out) -> dx (..., in)``; accumulates ``weight`` and ``bias`` grads."""
        dy = self._as_input(dy)
        x2 = self._x.reshape(-1, self.in_features)                      # (N, in)
        dy2 = dy.reshape(-1, self.out_features)                         # (N, out)
        self.g("weight")[...] += dy2.T @ x2                             # (out, in)
        if self.use_bias:
            self.g("bias")[...] += dy2.sum(axis=0)
        return (dy2 @ self.p("weight")).reshape(self._x.shape)          # (..., in)


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
        self._xhat = None
        self._rstd = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (..., d) -> y (..., d)``."""
        x = self._as_input(x)
        rstd = 1 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps)   # (..., 1)
        xhat = x * rstd                                                   # (..., d)
        self._xhat, self._rstd = xhat, rstd
        return xhat * self.p("weight")

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy (..., d) -> dx (..., d)``; accumulates the ``weight`` grad."""
        dy = self._as_input(dy)
        xhat, rstd = self._xhat, self._rstd
        self.g("weight")[...] += (dy * xhat).reshape(-1, self.d).sum(axis=0)
        dxhat = dy * self.p("weight")                                     # (..., d)
        # xhat = x * rstd(x): the second term is the path through the mean square.
        proj = np.mean(dxhat * xhat, axis=-1, keepdims=True)              # (..., 1)
        return rstd * (dxhat - xhat * proj)


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
