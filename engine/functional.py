"""Activations with their derivatives, and the loss: their one home.

Each ``f_grad(x)`` is the elementwise derivative ``f'(x)``. The layers, the models and the
NumPy reference kernels all take their activations from here; the compiled kernels
have vectorisable twins in :mod:`engine.kernels.numba._math`, held to these by the
parity tests.
"""
from __future__ import annotations

import numpy as np

__all__ = ["sigmoid", "sigmoid_grad", "silu", "silu_grad", "softplus", "softplus_grad",
           "softplus_inverse", "tanh", "tanh_grad", "mse_loss"]


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


# ----------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------
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
        ``mean((pred - target)**2)``, accumulated in float64 whatever ``pred``'s dtype.
    dpred : ndarray
        ``d loss / d pred``, same shape and dtype as ``pred``.

    Raises
    ------
    ValueError
        If the shapes differ (broadcasting would silently give a wrong loss).
    """
    pred = np.asarray(pred)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"mse_loss: pred shape {pred.shape} != target shape {target.shape}")
    diff = pred.astype(np.float64) - target
    loss = float(np.mean(diff * diff))
    grad = (2.0 / diff.size) * diff
    return loss, grad.astype(pred.dtype, copy=False)
