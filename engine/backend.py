"""The one switch between kernel sets.

``get_kernels("numpy")`` returns :mod:`engine.kernels.numpy_ref`, ``get_kernels("numba")``
returns :mod:`engine.kernels.numba`. Both export the names of :data:`engine.kernels.api.API`
with the same signatures. The process-wide default comes from the environment variable
``MAMBA_GRU_BACKEND`` (``numpy`` when unset) and can be changed with
:func:`set_default_backend`.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

BACKENDS = ("numpy", "numba")
ENV_VAR = "MAMBA_GRU_BACKEND"

_default: str | None = None


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot be loaded on this machine."""


def default_backend() -> str:
    """The backend used when a layer is built with ``backend=None``."""
    if _default is not None:
        return _default
    name = os.environ.get(ENV_VAR, "numpy").strip().lower() or "numpy"
    if name not in BACKENDS:
        raise ValueError(f"{ENV_VAR}={name!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    return name


def set_default_backend(name: str | None) -> None:
    """Set the process-wide default backend (``None`` returns to the environment's)."""
    global _default
    _default = None if name is None else resolve_backend(name)


def resolve_backend(name: str | None) -> str:
    """Validate a backend name; ``None`` means the default."""
    if name is None:
        return default_backend()
    key = str(name).strip().lower()
    if key not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return key


def get_kernels(name: str | None = None) -> ModuleType:
    """Return the kernel module of backend ``name``.

    Raises
    ------
    ValueError
        For an unknown name.
    BackendUnavailableError
        When the numba backend is asked for and Numba cannot be imported.
    """
    key = resolve_backend(name)
    if key == "numpy":
        return importlib.import_module("engine.kernels.numpy_ref")
    try:
        importlib.import_module("numba")
    except ImportError as exc:
        raise BackendUnavailableError(
            "backend 'numba' needs the numba package, which cannot be imported here "
            f"({exc}); install it with 'pip install numba' or use backend 'numpy'"
        ) from exc
    return importlib.import_module("engine.kernels.numba")


def single_threaded_blas():
    """Context manager limiting BLAS (NumPy's OpenBLAS and any other loaded) to one thread.

    The models multiply small matrices (a batch of 64 by a few dozen columns), where
    BLAS threads cost more in hand-off than they gain: one thread measured 2-3x
    faster per training step on a 2-core machine. One thread also fixes the order of
    floating-point sums, which keeps runs reproducible.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
