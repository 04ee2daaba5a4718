"""Central finite differences in float64, the yardstick of every hand-written backward.

The loss of a module is a random projection of its output, ``sum(y * R)``: every
output element then carries a different weight, so a wrong index or a transposed
gradient cannot cancel out the way it can under ``sum(y)``.
"""
from __future__ import annotations

import numpy as np

from engine import parity
from engine.parity import GRADCHECK_TOL as TOL

# Near the optimum (3 * machine epsilon)**(1/3) of central differences in float64, where
# truncation error (~eps**2) and rounding error (~1e-16 / eps) are balanced.
EPS = 1e-5


def rel_error(analytic: np.ndarray, reference: np.ndarray) -> float:
    """:func:`engine.parity.rel_error`, failing loudly on an all-zero reference (a vacuous check).

    Parameters
    ----------
    analytic, reference : ndarray
        Same shape.

    Returns
    -------
    float
    """
    assert np.max(np.abs(reference)) > 0, "reference gradient is identically zero: the check would prove nothing"
    return parity.rel_error(analytic, reference)


def numerical_grad(loss, arr: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Gradient of ``loss()`` with respect to ``arr`` by central differences.

    Parameters
    ----------
    loss : callable
        No arguments, returns a float; must read ``arr`` (a live array it depends on).
    arr : ndarray
        Perturbed in place, one element at a time, and restored.
    eps : float
        Step.

    Returns
    -------
    ndarray
        Same shape as ``arr``.
    """
    grad = np.zeros(arr.shape, dtype=np.float64)
    flat = arr.reshape(-1)                      # a view: writes reach the caller's array
    assert np.shares_memory(flat, arr)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        f_plus = loss()
        flat[i] = orig - eps
        f_minus = loss()
        flat[i] = orig
        grad.reshape(-1)[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def perturb_parameters(module, rng: np.random.Generator, scale: float = 0.2) -> None:
    """Move every parameter off its special initial value (D = 1, alpha = 0, gains = 1...).

    Parameters
    ----------
    module : engine.module.Module
    rng : numpy.random.Generator
    scale : float
        Standard deviation of the added Gaussian noise.
    """
    for _, p, _ in module.named_parameters():
        p += scale * rng.standard_normal(p.shape)


def module_grad_errors(module, x: np.ndarray, seed: int = 0, eps: float = EPS) -> dict:
    """Relative error of every parameter gradient and of the input gradient of ``module``.

    Parameters
    ----------
    module : engine.module.Module
        A float64 module with ``forward``/``backward``.
    x : ndarray
        Input (float64); perturbed in place and restored.
    seed : int
        Seed of the output projection ``R``.
    eps : float
        Finite-difference step.

    Returns
    -------
    dict
        ``{parameter name: error, ..., "input": error}``.
    """
    y = module.forward(x)
    R = np.random.default_rng(seed).standard_normal(y.shape)

    def loss() -> float:
        return float(np.sum(module.forward(x) * R))

    module.zero_grad()
    module.forward(x)
    dx = module.backward(R)
    errors = {name: rel_error(g, numerical_grad(loss, p, eps)) for name, p, g in module.named_parameters()}
    errors["input"] = rel_error(dx, numerical_grad(loss, x, eps))
    return errors


def assert_grads_close(errors: dict, tol: float = TOL) -> None:
    """Assert every relative error is at most ``tol``, naming the offenders."""
    bad = {k: v for k, v in errors.items() if not v <= tol}
    assert not bad, f"gradient check failed (tol {tol:g}): {bad}"
