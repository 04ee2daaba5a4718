"""The one switch between kernel sets, and who owns the cores while a kernel set runs.

``get_kernels("numpy")`` returns :mod:`engine.kernels.numpy_ref`, ``get_kernels("numba")``
returns :mod:`engine.kernels.numba`. Both export the names of :data:`engine.kernels.api.API`
with the same signatures. The process-wide default is ``"numba"`` when Numba can be
imported (``"numpy"`` otherwise); the environment variable ``MAMBA_GRU_BACKEND``
overrides it, and :func:`set_default_backend` overrides both.

Threads
-------
The numba backend parallelises with its own thread pool (blocking threads, never Numba's
OpenMP layer), and its matrix products run inside that pool: each task calls a
single-threaded BLAS on its block of rows. While a numba-backend layer computes,
:func:`exclusive_cores` holds every BLAS library loaded in the process at one thread,
and gives each its own limit back when the outermost call returns. The pool and the
core ownership live in :mod:`engine.threads`, which both this module and the compiled
kernels import (it imports neither); :func:`exclusive_cores`, :func:`get_num_threads`
and :func:`set_num_threads` are re-exported here.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

from engine import threads as _threads
# Core ownership lives with the thread pool (engine.threads); the layers reach it here.
from engine.threads import _EXCLUSIVE, exclusive_cores  # noqa: F401

BACKENDS = ("numpy", "numba")
ENV_VAR = "MAMBA_GRU_BACKEND"

_default: str | None = None


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot be loaded on this machine."""


def numba_available() -> bool:
    """Whether the ``numba`` package imports here."""
    try:
        importlib.import_module("numba")
    except ImportError:
        return False
    return True


def default_backend() -> str:
    """The backend used when a layer is built with ``backend=None``.

    Returns
    -------
    str
        :func:`set_default_backend`'s choice if any, else ``MAMBA_GRU_BACKEND`` if set and
        not empty, else ``"numba"`` when Numba imports and ``"numpy"`` when it does not.

    Raises
    ------
    ValueError
        If ``MAMBA_GRU_BACKEND`` names no backend.
    """
    if _default is not None:
        return _default
    name = os.environ.get(ENV_VAR, "").strip().lower()
    if not name:
        return "numba" if numba_available() else "numpy"
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
            f"({exc}); install it with 'pip install numba' or use backend 'numpy'") from exc
    return importlib.import_module("engine.kernels.numba")


def get_num_threads() -> int:
    """Threads the numba backend uses (default: ``NUMBA_NUM_THREADS``, all CPUs unless set)."""
    return _threads.get_num_threads()


def set_num_threads(n: int) -> None:
    """Set the threads the numba backend uses; results are the same for any count.

    Raises
    ------
    BackendUnavailableError
        When Numba cannot be imported.
    """
    get_kernels("numba")
    _threads.set_num_threads(n)


def single_threaded_blas():
    """Context manager limiting BLAS (NumPy's OpenBLAS and any other loaded) to one thread.

    The models multiply small matrices (a batch of 64 by a few dozen columns), where
    BLAS threads cost more in hand-off than they gain: one thread measured 2-3x
    faster per training step on a 2-core machine. One thread also fixes the order of
    floating-point sums, which keeps runs reproducible.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
