"""The one cross-task reduction every kernel family shares: partial sums added in order.

A kernel whose result sums over its parallel axis (a weight gradient over batch rows,
say) lets each task write its own slot ``parts[task]``; :func:`sum_partials` then adds
the slots in task order, ``parts[0] + parts[1] + ...``, element by element. The order
depends on the task split only, so the sum is the same for any number of threads.
"""
from __future__ import annotations

from numba import njit

from engine.kernels.numba._jit import JIT
from engine.threads import parallel_for

# Output elements per task.
_SPAN = 1024

# Row-blocked kernels (linear, RMSNorm) use at most this many blocks, each of at least
# _MIN_ROWS rows: a block's product is then big enough for BLAS to run at speed, and the
# number of partial sums (one per block) stays small.
_MAX_BLOCKS = 16
_MIN_ROWS = 64


def row_blocks(N):
    """``(blocks, rows per block)`` for ``N`` rows: a function of ``N`` only.

    The split fixes which partial sums :func:`sum_partials` adds, so it must not depend
    on the thread count: that is what keeps results bit-identical for any number of threads.
    """
    nb = max(1, min(_MAX_BLOCKS, N // _MIN_ROWS))
    return nb, -(-N // nb) if N else 0


@njit(**JIT)
def _sum_partials_tasks(parts, out, lo, hi):
    """``out[j] = parts[0, j] + parts[1, j] + ...`` for the task's elements (vector loop over j)."""
    nparts, m = parts.shape
    for task in range(lo, hi):
        j0 = task * _SPAN
        j1 = min(m, j0 + _SPAN)
        p0 = parts[0]
        for j in range(j0, j1):
            out[j] = p0[j]
        for i in range(1, nparts):
            pi = parts[i]
            for j in range(j0, j1):
                out[j] += pi[j]


def sum_partials(parts, out):
    """Add the partial sums ``parts (nparts, ...)`` in order into ``out`` (shape ``parts.shape[1:]``).

    Both must be C-contiguous and of one dtype; ``out`` is overwritten.
    """
    p2 = parts.reshape(parts.shape[0], -1)
    o1 = out.reshape(-1)
    m = o1.shape[0]
    parallel_for(_sum_partials_tasks, -(-m // _SPAN), (p2, o1), cost=p2.size)
