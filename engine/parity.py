"""How close is close enough: the relative error and the tolerances, for tests and benchmarks alike.

Every comparison of two implementations of the same computation (NumPy reference
against Numba kernels, our layers against PyTorch's, analytic gradients against finite
differences) measures :func:`rel_error`: the largest absolute difference relative to
the largest reference magnitude. Scaling by the array's own magnitude, not element by
element, keeps the check meaningful for elements that are near zero only through
cancellation, where a different summation order changes every digit but nothing that
matters.
"""
from __future__ import annotations

import numpy as np

__all__ = ["TOLERANCES", "GRADCHECK_TOL", "TORCH_TOL", "ParityError", "tolerance", "rel_error",
           "assert_parity"]

#: NumPy reference against the compiled kernels, per dtype: rounding only.
TOLERANCES = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
#: Hand-written backward against central finite differences in float64.
GRADCHECK_TOL = 1e-6
#: Our float64 layers against PyTorch autograd on the same weights.
TORCH_TOL = 1e-8


class ParityError(AssertionError):
    """Two implementations of the same computation disagree beyond tolerance."""


def tolerance(dtype) -> float:
    """Relative tolerance of a parity check: 1e-10 for float64, 1e-4 for float32."""
    return TOLERANCES[np.dtype(dtype)]


def rel_error(actual, reference) -> float:
    """``max|actual - reference| / max|reference|`` (the plain difference if the reference is 0).

    Parameters
    ----------
    actual, reference : array-like
        Same shape.

    Returns
    -------
    float
        ``inf`` when ``actual`` holds a NaN or an infinity, so it never passes a check.

    Raises
    ------
    ParityError
        If the shapes differ.
    """
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise ParityError(f"shape mismatch: {a.shape} vs reference {r.shape}")
    if not np.all(np.isfinite(a)):
        return float("inf")
    scale = float(np.max(np.abs(r))) if r.size else 0.0
    diff = float(np.max(np.abs(a - r))) if r.size else 0.0
    return diff / scale if scale > 0 else diff


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def assert_parity(actual, reference, dtype, what: str = "") -> float:
    """Check every output of ``actual`` against ``reference``; return the worst error.

    Parameters
    ----------
    actual, reference : ndarray or tuple of ndarray
        Outputs of the two implementations, in the same order.
    dtype : numpy dtype
        Selects the tolerance (:func:`tolerance`).
    what : str
        Label for the error message.

    Returns
    -------
    float
        The largest :func:`rel_error` over the outputs.

    Raises
    ------
    ParityError
        If the number of outputs, a dtype or a shape differs, or an output differs by
        more than the tolerance.
    """
    tol = tolerance(dtype)
    acts, refs = _as_tuple(actual), _as_tuple(reference)
    if len(acts) != len(refs):
        raise ParityError(f"{what}: {len(acts)} outputs vs {len(refs)} in the reference")
    worst = 0.0
    for i, (a, r) in enumerate(zip(acts, refs)):
        if np.asarray(a).dtype != np.asarray(r).dtype:
            raise ParityError(f"{what}: output {i} has dtype {np.asarray(a).dtype}, reference {np.asarray(r).dtype}")
        err = rel_error(a, r)
        if not err <= tol:
            raise ParityError(f"{what}: output {i} differs from the reference by {err:.3g} (tolerance {tol:g})")
        worst = max(worst, err)
    return worst
