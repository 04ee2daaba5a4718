"""The numba backend's thread pool, under its former name.

The pool and its core ownership live in :mod:`engine.threads`, the module that both
:mod:`engine.backend` and these kernels import; this name re-exports the pool for code
that imported it from here.
"""
from __future__ import annotations

from engine.threads import get_num_threads, parallel_for, set_num_threads

__all__ = ["get_num_threads", "parallel_for", "set_num_threads"]
