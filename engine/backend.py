"""The one switch between kernel sets, and who owns the cores while a kernel set runs.

``get_kernels("numpy")`` returns :mod:`engine.kernels.numpy_ref`, ``get_kernels("numba")``
returns :mod:`engine.kernels.numba`. Both export the names of :data:`engine.kernels.api.API`
with the same signatures. The process-wide default is ``"numba"`` when Numba can be
imported (``"numpy"`` otherwise); the environment variable ``MAMBA_GRU_BACKEND``
overrides it, and :func:`set_default_backend` overrides both.

Threads
-------
The numba backend parallelises with its own thread pool (:mod:`engine.kernels.numba._threads`:
blocking threads, never Numba's OpenMP layer), and its matrix products run inside that
pool: each task calls a single-threaded BLAS on its block of rows. A BLAS library left
multi-threaded would start its own threads inside those tasks, and they keep spinning
for about 0.1 s after every call, on the cores the pool's threads need. So while
a numba-backend layer computes, :func:`exclusive_cores` holds every BLAS library loaded
in the process at one thread, and gives each its own limit back when the outermost
call returns. Nothing process-wide is changed for good: no environment variable, no
Numba setting, no OpenMP setting; other libraries (PyTorch, SciPy, NumPy itself) keep
their thread counts between our calls.
"""
from __future__ import annotations

import importlib
import os
import threading
from types import ModuleType

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


# ----------------------------------------------------------------------------------
# Core ownership: BLAS at one thread while numba-backend work runs
# ----------------------------------------------------------------------------------
class _ExclusiveCores:
    """Re-entrant, process-wide: the first entry saves each BLAS library's thread
    limit and sets it to 1, the matching last exit restores the saved limits.

    A count under a lock (not per thread) so that two Python threads using numba layers
    at once neither restore too early nor save a limit the other one set.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._controller = None
        self._saved = ()

    def _blas_libraries(self):
        # Built once, after the BLAS that Numba's np.dot calls (SciPy's) has been loaded,
        # so that it is limited too. A BLAS loaded later by someone else is not ours to
        # limit: we never call it.
        if self._controller is None:
            # threadpoolctl sets KMP_DUPLICATE_LIB_OK in os.environ when first imported;
            # we promise to leave the environment as we found it.
            had = _KMP_VAR in os.environ
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:                  # pragma: no cover - a declared dependency
                self._controller = ()
                return ()
            finally:
                if not had:
                    os.environ.pop(_KMP_VAR, None)
            try:
                importlib.import_module("scipy.linalg.cython_blas")
            except ImportError:                  # pragma: no cover - Numba's np.dot needs it
                pass
            self._controller = tuple(lib for lib in ThreadpoolController().lib_controllers
                                     if lib.user_api == "blas")
        return self._controller

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                libs = self._blas_libraries()
                saved = []
                for lib in libs:
                    n = lib.get_num_threads()
                    saved.append((lib, n))
                    if n != 1:
                        lib.set_num_threads(1)
                self._saved = tuple(saved)
            self._depth += 1
        return self

    def __exit__(self, *exc):
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                for lib, n in self._saved:
                    if n != 1:
                        lib.set_num_threads(n)
                self._saved = ()
        return False

    @property
    def active(self) -> bool:
        """Whether some numba-backend work currently holds the cores."""
        return self._depth > 0


_KMP_VAR = "KMP_DUPLICATE_LIB_OK"
_EXCLUSIVE = _ExclusiveCores()


def exclusive_cores():
    """Context manager: the numba backend owns the cores while the block runs.

    Every BLAS library loaded in the process runs single-threaded inside the block (the
    numba kernels call BLAS from Numba's own threads, one block of rows each); on leaving
    the outermost block each library gets back the thread limit it had. Nesting is cheap
    (a counter), so layers enter it around every ``forward``/``backward`` and the kernels
    that call BLAS enter it again.

    Returns
    -------
    context manager
    """
    return _EXCLUSIVE


def get_num_threads() -> int:
    """Threads the numba backend uses (default: ``NUMBA_NUM_THREADS``, all CPUs unless set)."""
    from engine.kernels.numba._threads import get_num_threads as _get

    return _get()


def set_num_threads(n: int) -> None:
    """Set the threads the numba backend uses; results are the same for any count.

    Raises
    ------
    BackendUnavailableError
        When Numba cannot be imported.
    """
    get_kernels("numba")
    from engine.kernels.numba._threads import set_num_threads as _set

    _set(n)


def single_threaded_blas():
    """Context manager limiting BLAS (NumPy's OpenBLAS and any other loaded) to one thread.

    The models multiply small matrices (a batch of 64 by a few dozen columns), where
    BLAS threads cost more in hand-off than they gain: one thread measured 2-3x
    faster per training step on a 2-core machine. One thread also fixes the order of
    floating-point sums, which keeps runs reproducible.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
