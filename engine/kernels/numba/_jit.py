"""What every compiled kernel shares: jit options, input checks and the task split.

How the work is split
---------------------
* Every kernel is a serial ``nogil`` function over a range of tasks, run on the
  backend's own thread pool (:mod:`engine.threads`). Batch rows and
  channel chunks are the tasks; the recurrence over time stays sequential inside each.
* A sum across the parallel axis is never a shared ``+=``: each task writes its own
  slot of a buffer indexed by task (not by thread), and the slots are added afterwards
  in a fixed order, or the task owns the output outright. How the work is cut into
  tasks depends only on the shapes, never on the thread count, so the results are
  bit-identical run after run and for any number of threads.

The only fast-math flag is ``contract`` (fused multiply-add) in the scan kernels; NaN
and inf propagate as in NumPy. Float32 inputs stay float32 all the way through
(constants are made with the input's dtype, since a bare ``1.0`` would promote float32
arithmetic to float64 inside a kernel).
"""
from __future__ import annotations

import math
import sys
import threading
from collections import OrderedDict

import numpy as np

# error_model="numpy": a float division by zero gives inf/NaN instead of raising, as in
# NumPy. nogil lets the pool's threads run kernels side by side. No parallel=True: the
# parallelism is the pool's (see engine/threads.py).
JIT = dict(cache=True, error_model="numpy", nogil=True)
# The selective scan may fuse multiply-adds (FMA): "contract" changes rounding by at
# most an ulp and never touches NaN/inf handling, unlike the other fast-math flags.
JIT_SCAN = dict(JIT, fastmath={"contract"})

# Enough tasks to keep a few threads busy when the batch is small. The split is a
# function of the shapes only: it fixes the order of every cross-task sum.
MIN_TASKS = 16
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------------
# Input preparation
# ----------------------------------------------------------------------------------
def as_float_arrays(names, arrays):
    """Return C-contiguous arrays of one common float dtype.

    The common dtype is what NumPy promotion gives for the inputs, floored at float32
    (mixing float32 and float64 gives float64, integers give float64).
    """
    arrs = [np.asarray(a) for a in arrays]
    # Fast path, the layers' case: already C-contiguous arrays of one supported dtype.
    first = arrs[0].dtype
    if first in FLOATS and all(a.dtype == first and a.flags.c_contiguous for a in arrs):
        return arrs
    for name, a in zip(names, arrs):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    dtype = np.result_type(*arrs, np.float32)
    if dtype not in FLOATS:
        raise TypeError(f"inputs promote to {dtype}; only float32 and float64 are supported")
    dtype = np.dtype(dtype.name)                       # native byte order
    return [np.ascontiguousarray(a, dtype=dtype) for a in arrs]


def check_shape(name, a, shape):
    """Raise ``ValueError`` unless ``a.shape == shape``."""
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")


def check_ndim(name, a, ndim):
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")


def n_chunks(b, d):
    """Channel chunks per batch row so that ``b * chunks >= MIN_TASKS`` where possible."""
    if b <= 0 or d <= 0:
        return 1
    return max(1, min(d, -(-MIN_TASKS // b)))


# ----------------------------------------------------------------------------------
# Output arrays
# ----------------------------------------------------------------------------------
class _OutputPool:
    """Large kernel outputs, handed out again once nothing references them.

    A training step allocates the same few dozen multi-megabyte arrays every step. glibc
    returns the freed top of its heap to the system and maps it back on the next step,
    so every page of those arrays faulted again (about 4,400 page faults and 12 ms of
    system time per hybrid float64 step). The pool keeps each such array; when the
    kernel asks for one of the same shape and dtype and the pool's reference is the only
    one left (the caller dropped it, and no view of it is alive: a view holds a
    reference to its base), the array is reused instead. Kernels overwrite every element
    of their outputs, so a reused array behaves exactly like ``np.empty``.

    Bounded: at most ``MAX_PER_KEY`` arrays per (shape, dtype), ``MAX_KEYS`` shapes and
    ``MAX_BYTES`` in all, the least recently used shapes forgotten first (arrays still in
    use stay with their users). Arrays under ``MIN_BYTES`` come from ``np.empty``.
    """

    MIN_BYTES = 1 << 18
    MAX_PER_KEY = 16
    MAX_KEYS = 64
    MAX_BYTES = 1 << 29

    def __init__(self):
        self._lock = threading.Lock()
        self._buckets: OrderedDict = OrderedDict()
        self._bytes = 0

    def _forget_oldest(self):
        _, bucket = self._buckets.popitem(last=False)
        self._bytes -= sum(a.nbytes for a in bucket)

    def empty(self, shape, dtype):
        shape = tuple(int(n) for n in shape)
        dtype = np.dtype(dtype)
        if math.prod(shape) * dtype.itemsize < self.MIN_BYTES:
            return np.empty(shape, dtype=dtype)
        key = (shape, dtype.str)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = []
                while len(self._buckets) > self.MAX_KEYS:
                    self._forget_oldest()
            else:
                self._buckets.move_to_end(key)
            for arr in bucket:
                # References: the bucket, the loop variable and getrefcount's argument.
                if sys.getrefcount(arr) == 3:
                    return arr
            arr = np.empty(shape, dtype=dtype)
            if len(bucket) < self.MAX_PER_KEY and arr.nbytes <= self.MAX_BYTES:
                bucket.append(arr)
                self._bytes += arr.nbytes
                while self._bytes > self.MAX_BYTES and len(self._buckets) > 1:
                    self._forget_oldest()
            return arr


_POOL = _OutputPool()


def empty(shape, dtype):
    """An uninitialised output array, like ``np.empty`` (large ones are recycled,
    see :class:`_OutputPool`); the kernel must write every element."""
    return _POOL.empty(shape, dtype)


def empty_like(a):
    """:func:`empty` with the shape and dtype of ``a``."""
    return _POOL.empty(a.shape, a.dtype)
