"""What the benchmarks measure: kernel inputs, train steps and what can run here.

The shapes live in :mod:`bench.harness.sizes` (re-exported here). This module imports
the engine: it is used by the harness process and by the workers hosting our
implementations, never by a worker hosting a PyTorch peer.
"""
from __future__ import annotations

import contextlib
import importlib.util
import time
from typing import Callable

import numpy as np

from bench.harness.sizes import (DTYPES, SIZES, SMOKE_SIZES, SMOKE_TRAIN_SIZE, TRAIN_SIZE, Size,  # noqa: F401
                                 sizes_for, train_data)
from engine.backend import BACKENDS, BackendUnavailableError, get_kernels
from engine.functional import mse_loss
from engine.kernels.api import TIME_LOOPS as KERNELS
from engine.optim import Adam
from models import build_model
from models.names import MODEL_NAMES

__all__ = ["Size", "SIZES", "SMOKE_SIZES", "TRAIN_SIZE", "SMOKE_TRAIN_SIZE", "KERNELS", "MODEL_NAMES",
           "BACKENDS", "DTYPES", "sizes_for", "numba_available", "peer_available", "numba_threads",
           "make_kernel_args", "make_exp_floor", "make_optimizer", "make_train_data", "build_forecaster",
           "forward_backward", "make_train_step", "kernel_share", "kernel_profile", "with_peers"]


# ----------------------------------------------------------------------------------
# Availability
# ----------------------------------------------------------------------------------
def numba_available() -> tuple[bool, str]:
    """Whether the numba kernel set imports; the reason when it does not."""
    try:
        get_kernels("numba")
    except (BackendUnavailableError, ImportError) as exc:
        return False, f"numba backend unavailable: {exc}"
    return True, ""


def peer_available(pair) -> tuple[bool, str]:
    """Whether the libraries of a PyTorch peer are installed (without importing them here).

    Parameters
    ----------
    pair : bench.harness.peers.Pair

    Returns
    -------
    bool, str
        The reason when they are not.
    """
    missing = [m for m in pair.modules if importlib.util.find_spec(m.split(".")[0]) is None]
    if missing:
        return False, f"{pair.peer} unavailable: {', '.join(missing)} not installed"
    return True, ""


def with_peers(report, log, items, available):
    """The ``items`` whose PyTorch peer is installed, in order; each other one is noted in
    ``report.skipped`` and logged with the reason ``available(item)`` gives.

    ``available`` returns ``(ok, why)``, as :func:`peer_available` does.
    """
    for item in items:
        ok, why = available(item)
        if not ok:
            report.skipped.append(why)
            log(why)
            continue
        yield item


def numba_threads() -> int:
    """The numba backend's thread count (1 when numba cannot be imported)."""
    from engine.backend import get_num_threads, numba_available

    return get_num_threads() if numba_available() else 1


# ----------------------------------------------------------------------------------
# Kernel inputs
# ----------------------------------------------------------------------------------
def _scan_inputs(size: Size, dtype, rng):
    b, L, d, n = size.batch, size.seq_len, size.d_inner, size.d_state
    u = rng.standard_normal((b, L, d))
    # Steps as Mamba's init produces them: log-uniform in [1e-3, 1e-1].
    delta = np.exp(rng.uniform(np.log(1e-3), np.log(1e-1), (b, L, d)))
    A = -np.broadcast_to(np.arange(1, n + 1, dtype=np.float64), (d, n))   # S4D-real init
    B = rng.standard_normal((b, L, n))
    C = rng.standard_normal((b, L, n))
    D = np.ones(d)
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in (u, delta, A, B, C, D))


def make_kernel_args(kernel: str, size: Size, dtype=np.float64, seed: int = 0) -> tuple:
    """Deterministic, realistic inputs of ``kernel`` at ``size``.

    Forward outputs that a backward kernel takes (``h``, ``gates``) come from the
    NumPy reference, so both backends' backward kernels see identical inputs.

    Parameters
    ----------
    kernel : str
        One of :data:`KERNELS`.
    size : Size
    dtype : numpy dtype
    seed : int

    Returns
    -------
    tuple of ndarray
        Positional arguments of the kernel.
    """
    ref = get_kernels("numpy")
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    b, L, H = size.batch, size.seq_len, size.hidden
    if kernel == "selective_scan_fwd":
        return _scan_inputs(size, dtype, rng)
    if kernel == "selective_scan_bwd":
        args = _scan_inputs(size, dtype, rng)
        dy = rng.standard_normal((b, L, size.d_inner)).astype(dtype)
        return args + (dy,)
    if kernel in ("mingru_fwd", "mingru_bwd"):
        z = (1 / (1 + np.exp(-rng.standard_normal((b, L, H))))).astype(dtype)
        h_tilde = rng.standard_normal((b, L, H)).astype(dtype)
        if kernel == "mingru_fwd":
            return z, h_tilde
        h = ref.mingru_fwd(z, h_tilde)
        dh = rng.standard_normal((b, L, H)).astype(dtype)
        return z, h_tilde, h, dh
    if kernel in ("gru_fwd", "gru_bwd"):
        bound = 1 / np.sqrt(H)   # torch.nn.GRU's init
        gi = (0.5 * rng.standard_normal((b, L, 3 * H))).astype(dtype)
        W_hh = rng.uniform(-bound, bound, (3 * H, H)).astype(dtype)
        b_hh = rng.uniform(-bound, bound, 3 * H).astype(dtype)
        if kernel == "gru_fwd":
            return gi, W_hh, b_hh
        h, gates = ref.gru_fwd(gi, W_hh, b_hh)
        dh = rng.standard_normal((b, L, H)).astype(dtype)
        return gi, W_hh, b_hh, h, gates, dh
    raise ValueError(f"unknown kernel {kernel!r}; choose one of {', '.join(KERNELS)}")


def make_exp_floor(size: Size, dtype=np.float64, seed: int = 0) -> Callable[[], np.ndarray]:
    """The floor of a selective scan: one ``np.exp`` over ``b * L * d_inner * d_state`` values.

    Every scan must evaluate ``exp(delta * A)`` once per (batch, step, channel, state),
    so no scan kernel can be cheaper than this call (on one core). Input and output
    buffers are allocated here, outside the timed call.

    Returns
    -------
    callable
        ``fn()`` computes the exponentials in place of a preallocated output.
    """
    rng = np.random.default_rng(seed)
    shape = (size.batch, size.seq_len, size.d_inner, size.d_state)
    x = -rng.uniform(1e-3, 1.6, shape).astype(dtype)   # the range of delta * A at init
    out = np.empty_like(x)

    def exp_floor():
        return np.exp(x, out=out)

    return exp_floor


# ----------------------------------------------------------------------------------
# Train step
# ----------------------------------------------------------------------------------
def make_optimizer(model, lr: float = 1e-3):
    """The engine's Adam over the model's parameters.

    Returns
    -------
    optimizer, str
        The optimiser (has ``step()``) and a label naming it.
    """
    return Adam(model.named_parameters(), lr=lr), "engine.optim.Adam"


def make_train_data(size: Size, dtype=np.float64, seed: int = 0, n_features: int = 1, horizon: int = 1):
    """Inputs ``(batch, seq_len, n_features)`` and targets ``(batch, horizon)``.

    Drawn by :func:`bench.harness.sizes.train_data`, which the PyTorch models' workers use too.
    """
    return train_data(size, dtype, seed, n_features, horizon)


def build_forecaster(name: str, size: Size, backend: str, dtype=np.float64, seed: int = 0):
    """``models.build_model`` at the benchmark size (1 feature, horizon 1)."""
    return build_model(
        name, input_size=1, hidden_size=size.d_model, d_state=size.d_state, n_layers=1,
        horizon=1, backend=backend, dtype=dtype, seed=seed,
    )


def forward_backward(model, x, y):
    """One MSE forward and backward from zeroed gradients; returns ``(pred, grads)``."""
    model.zero_grad()
    pred = model.forward(x)
    model.backward(mse_loss(pred, y)[1])
    grads = tuple(g.copy() for _, _, g in model.named_parameters())
    return pred, grads


def make_train_step(model, x, y, optimizer) -> Callable[[], float]:
    """Forward, MSE loss, backward, optimiser step; the returned function does one step.

    Parameters
    ----------
    model
        A forecaster (``forward``, ``backward``, ``zero_grad``).
    x, y : ndarray
        A batch and its targets.
    optimizer
        Anything with ``step()`` updating the model's parameters from its gradients.
    """
    def train_step():
        model.zero_grad()
        loss, dpred = mse_loss(model.forward(x), y)
        model.backward(dpred)
        optimizer.step()
        return loss

    return train_step


@contextlib.contextmanager
def _kernel_timer(backend: str):
    """Temporarily wrap every kernel of ``backend`` to add its wall time to counters.

    Yields a dict: ``spent[""]`` the total inside kernels, ``spent[name]`` per kernel,
    ``spent[("calls", name)]`` the number of calls. Models look kernels up as module
    attributes at call time, so patching the module catches every call; the originals
    are restored on exit.
    """
    module = get_kernels(backend)
    spent: dict = {"": 0.0}
    depth = [0]
    originals = {name: getattr(module, name) for name in module.__all__ if name != "warmup"}

    def timed(name, fn):
        # Only the outermost kernel call counts: a fused reference kernel calls the
        # plain ones through this same module, and those must not be counted twice.
        def wrapper(*args, **kwargs):
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    dt = time.perf_counter() - t0
                    spent[""] += dt
                    spent[name] = spent.get(name, 0.0) + dt
                    spent[("calls", name)] = spent.get(("calls", name), 0) + 1
        return wrapper

    for name, fn in originals.items():
        setattr(module, name, timed(name, fn))
    try:
        yield spent
    finally:
        for name, fn in originals.items():
            setattr(module, name, fn)


def kernel_share(step: Callable, backend: str, calls: int = 3) -> float:
    """Fraction of ``step()``'s wall time spent inside the time-loop kernels of ``backend``.

    ``1 / (1 - share)`` of the NumPy backend bounds what any kernel speed-up can do for
    a whole step (Amdahl): the rest (matmuls, activations, optimiser) is shared code.
    """
    with _kernel_timer(backend) as spent:
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        total = time.perf_counter() - t0
    return min(1.0, spent[""] / total) if total > 0 else 0.0


def kernel_profile(step: Callable, backend: str, calls: int = 20) -> dict:
    """Where ``step()``'s time goes: milliseconds per step in each kernel of ``backend`` and outside.

    Returns
    -------
    dict
        ``{"step": ms, "kernels": {name: (ms per step, calls per step)} (slowest first),
        "outside kernels": ms}``. The wrappers cost about a microsecond per kernel call,
        counted in "outside kernels".
    """
    with _kernel_timer(backend) as spent:
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        total = time.perf_counter() - t0
    names = sorted((k for k in spent if isinstance(k, str) and k), key=lambda k: -spent[k])
    return {"step": 1e3 * total / calls,
            "kernels": {k: (1e3 * spent[k] / calls, spent[("calls", k)] / calls) for k in names},
            "outside kernels": 1e3 * (total - spent[""]) / calls}
