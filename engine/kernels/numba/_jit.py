"""What every compiled kernel shares: jit options, input checks and the task split.

How the work is split
---------------------
* Batch rows and channel chunks run in parallel (``prange``); the recurrence over time
  stays sequential inside each task.
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

import numpy as np

# error_model="numpy": a float division by zero gives inf/NaN instead of raising, as in
# NumPy. nogil lets other Python threads run while a kernel works.
JIT = dict(parallel=True, cache=True, error_model="numpy", nogil=True)
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
