"""The numba backend's own thread pool: threads that block, never spin.

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
Numba reads it: the number of CPUs unless set), changed with :func:`set_num_threads`
(re-exported by :mod:`engine.backend`). Numba's own threading layer is never started:
starting it calls ``omp_set_num_threads`` in whichever OpenMP runtime it binds to, which
can be PyTorch's (both are ``libgomp.so.1``), and changed ``torch.get_num_threads()``.
"""
from __future__ import annotations

import os
import queue
import threading

import numba

# Chunks per participating thread: more balance the load better, each costs a call.
_CHUNKS_PER_THREAD = 4
# Below this many (rough) scalar operations a region runs on the calling thread alone:
# waking the pool costs about 20 us, the work of some 65k operations.
_SERIAL_COST = 1 << 16


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


class _Pool:
    def __init__(self):
        self._lock = threading.Lock()
        self._queues: list[queue.SimpleQueue] = []
        self._local = threading.local()
        self.threads = max(1, int(numba.config.NUMBA_NUM_THREADS))

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
    """Threads the numba backend's kernels use (the calling thread included)."""
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
