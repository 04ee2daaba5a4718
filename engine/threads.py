"""Who computes on the cores: the numba backend's thread pool and its core ownership.

The one home of both. :mod:`engine.backend` (the switch, which re-exports
:func:`exclusive_cores`, :func:`get_num_threads` and :func:`set_num_threads`) and the
compiled kernels (:mod:`engine.kernels.numba`, which hand their tasks to
:func:`parallel_for` and hold the cores around their BLAS calls) both import this module;
it imports neither of them, nor Numba until a thread count is asked for, so importing
the backend switch loads no compiler.

The pool: threads that block, never spin
----------------------------------------
Every compiled kernel is a serial ``nogil`` function over a range of tasks
(``fn(*args, lo, hi)`` runs tasks ``lo .. hi - 1``); :func:`parallel_for` runs a kernel's
tasks on this pool, the calling thread included. Why not ``prange``: Numba's OpenMP
layer keeps its workers spinning between parallel regions. On a machine shared with
other busy processes a spinning thread is charged for the time it burns and is then
woken late for the next region; measured here with one other busy process on 2 cores,
an empty ``prange`` region took 4-8 ms instead of 2 us and a hybrid training step
400 ms instead of 90 ms. The only cures inside OpenMP are process-wide settings
(``OMP_WAIT_POLICY``, or switching Numba's threading layer for every Numba user in the
process), which a library must not make. These threads wait on a queue and cost about
20 us per region, busy machine or not.

Threads claim chunks of tasks from a shared counter, so a thread that the system
deschedules simply ends up doing fewer tasks. Which thread runs a task never changes
its result: a task writes its own outputs (or its own slot of a partial-sum buffer,
added later in a fixed order), so results are bit-identical for any thread count.

The number of threads is :func:`get_num_threads` (default ``NUMBA_NUM_THREADS``, as
Numba reads it: the number of CPUs unless set), changed with :func:`set_num_threads`.
Numba's own threading layer is never started: starting it calls ``omp_set_num_threads``
in whichever OpenMP runtime it binds to, which can be PyTorch's (both are
``libgomp.so.1``), and changed ``torch.get_num_threads()``.

Core ownership: BLAS at one thread while the pool computes
----------------------------------------------------------
The kernels' matrix products run inside the pool: each task calls a single-threaded
BLAS on its block of rows. A BLAS library left multi-threaded would start its own
threads inside those tasks, and they keep spinning for about 0.1 s after every call, on
the cores the pool's threads need. So while numba-backend work runs,
:func:`exclusive_cores` holds every BLAS library loaded in the process at one thread,
and gives each its own limit back when the outermost call returns. Nothing
process-wide is changed for good: no environment variable, no Numba setting, no OpenMP
setting; other libraries (PyTorch, SciPy, NumPy itself) keep their thread counts
between our calls.
"""
from __future__ import annotations

import importlib
import os
import queue
import threading

__all__ = ["exclusive_cores", "get_num_threads", "set_num_threads", "parallel_for"]

# Chunks per participating thread: more balance the load better, each costs a call.
_CHUNKS_PER_THREAD = 4
# Below this many (rough) scalar operations a region runs on the calling thread alone:
# waking the pool costs about 20 us, the work of some 65k operations.
_SERIAL_COST = 1 << 16


# ----------------------------------------------------------------------------------
# The pool
# ----------------------------------------------------------------------------------
class _Job:
    """One parallel region: ``ntask`` tasks handed out in chunks of ``chunk``."""

    __slots__ = ("fn", "args", "ntask", "chunk", "next", "lock", "left", "done", "error")

    def __init__(self, fn, args, ntask, chunk, participants):
        self.fn = fn
        self.args = args
        self.ntask = ntask
        self.chunk = chunk
        self.next = 0
        self.lock = threading.Lock()
        self.left = participants
        self.done = threading.Event()
        self.error = None

    def work(self):
        try:
            while self.error is None:
                with self.lock:
                    lo = self.next
                    self.next = lo + self.chunk
                if lo >= self.ntask:
                    break
                self.fn(*self.args, lo, min(self.ntask, lo + self.chunk))
        except BaseException as exc:                     # re-raised by the caller
            self.error = exc
        with self.lock:
            self.left -= 1
            if self.left == 0:
                self.done.set()


def _default_threads() -> int:
    # Numba's reading of NUMBA_NUM_THREADS (the CPUs unless set); imported here, on first
    # use, so that importing the backend switch does not load Numba.
    import numba

    return max(1, int(numba.config.NUMBA_NUM_THREADS))


class _Pool:
    def __init__(self):
        self._lock = threading.Lock()
        self._queues: list[queue.SimpleQueue] = []
        self._local = threading.local()
        self._threads: int | None = None

    @property
    def threads(self) -> int:
        if self._threads is None:
            self._threads = _default_threads()
        return self._threads

    @threads.setter
    def threads(self, n: int) -> None:
        self._threads = n

    def _reset_after_fork(self):
        # The threads did not survive the fork; start new ones on demand.
        self._lock = threading.Lock()
        self._queues = []
        self._local = threading.local()

    def _serve(self, q):
        self._local.worker = True
        while True:
            q.get().work()

    def _workers(self, n):
        with self._lock:
            while len(self._queues) < n:
                q = queue.SimpleQueue()
                threading.Thread(target=self._serve, args=(q,), daemon=True,
                                 name=f"engine-numba-{len(self._queues)}").start()
                self._queues.append(q)
            return self._queues[:n]

    def run(self, fn, ntask, args, cost):
        threads = min(self.threads, ntask)
        if threads <= 1 or cost < _SERIAL_COST or getattr(self._local, "worker", False):
            if ntask > 0:
                fn(*args, 0, ntask)
            return
        chunk = max(1, -(-ntask // (threads * _CHUNKS_PER_THREAD)))
        job = _Job(fn, args, ntask, chunk, threads)
        for q in self._workers(threads - 1):
            q.put(job)
        job.work()
        job.done.wait()
        if job.error is not None:
            raise job.error


_POOL = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL._reset_after_fork)


def get_num_threads() -> int:
    """Threads the numba backend's kernels use (the calling thread included).

    Raises
    ------
    ImportError
        On first use without Numba (the default comes from Numba's configuration).
    """
    return _POOL.threads


def set_num_threads(n: int) -> None:
    """Set the number of threads of the numba backend's kernels (1 runs them serially).

    Results do not depend on it (see the module docstring). Process-wide for this
    pool only: Numba's own thread count and other libraries' are not touched.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"the number of threads must be at least 1, got {n}")
    _POOL.threads = n


def parallel_for(fn, ntask, args, cost=None):
    """Run tasks ``0 .. ntask - 1`` of the compiled kernel ``fn`` on the pool.

    Parameters
    ----------
    fn : compiled function
        ``fn(*args, lo, hi)`` runs tasks ``lo .. hi - 1``; it must release the GIL
        (``nogil=True``) for the threads to overlap.
    ntask : int
    args : tuple
        Everything ``fn`` takes before ``lo, hi``.
    cost : int, optional
        Rough number of scalar operations of the whole region; a small region runs on
        the calling thread (same results: tasks do not depend on who runs them).
    """
    _POOL.run(fn, int(ntask), tuple(args), _SERIAL_COST if cost is None else cost)


# ----------------------------------------------------------------------------------
# Core ownership
# ----------------------------------------------------------------------------------
_KMP_VAR = "KMP_DUPLICATE_LIB_OK"


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


_EXCLUSIVE = _ExclusiveCores()


def exclusive_cores():
    """Context manager: the numba backend owns the cores while the block runs.

    Every BLAS library loaded in the process runs single-threaded inside the block (the
    numba kernels call BLAS from the pool's threads, one block of rows each); on leaving
    the outermost block each library gets back the thread limit it had. Nesting is cheap
    (a counter), so layers enter it around every ``forward``/``backward`` and the kernels
    that call BLAS enter it again.

    Returns
    -------
    context manager
    """
    return _EXCLUSIVE
