"""Benchmark harness: NumPy against Numba, the exp floor, PyTorch, compile cost.

This module is shared by two front ends:

* ``bench/`` (pytest-benchmark) takes the sizes, input makers, parity checks and
  builders from here and lets pytest-benchmark do the timing;
* ``python cli.py bench`` calls :func:`run_benchmarks`, which times the same work with
  plain :func:`time.perf_counter` medians, and prints (:func:`format_table`) or writes
  (:func:`write_markdown`) the result.

Every timed pair is first checked for agreement between the two implementations
(float64: relative 1e-10, float32: 1e-4, relative to the largest reference value), so a
fast kernel that computes something else cannot look good.

Sizes follow the model: ``d_model`` is the hidden size, the Mamba inner width is
``d_inner = 2 * d_model`` and minGRU / GRU run with ``H = d_model`` hidden units.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from engine.backend import BackendUnavailableError, get_kernels

__all__ = [
    "Size",
    "SIZES",
    "SMOKE_SIZES",
    "TRAIN_SIZE",
    "SMOKE_TRAIN_SIZE",
    "KERNELS",
    "MODEL_NAMES",
    "REPO_ROOT",
    "ParityError",
    "tolerance",
    "rel_error",
    "assert_parity",
    "numba_available",
    "torch_available",
    "make_kernel_args",
    "make_exp_floor",
    "make_train_step",
    "make_torch_mamba_pair",
    "make_torch_gru_pair",
    "compile_run",
    "time_median",
    "time_medians",
    "machine_info",
    "run_benchmarks",
    "evaluate_targets",
    "format_table",
    "to_markdown",
    "write_markdown",
    "add_arguments",
    "run",
    "main",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
REPRODUCE = "python cli.py bench --write BENCHMARKS.md"


# ----------------------------------------------------------------------------------
# Sizes
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Size:
    """A benchmark shape.

    Parameters
    ----------
    name : str
        Short label used in test ids, groups and tables.
    batch, seq_len : int
    d_model : int
        Hidden size; Mamba's inner width is ``2 * d_model``, minGRU/GRU use ``H = d_model``.
    d_state : int
        SSM state size.
    """

    name: str
    batch: int
    seq_len: int
    d_model: int
    d_state: int = 16

    @property
    def d_inner(self) -> int:
        """Channels of the selective scan (``expand = 2``)."""
        return 2 * self.d_model

    @property
    def hidden(self) -> int:
        """Hidden units of minGRU and GRU."""
        return self.d_model

    def label(self, kernel: str = "selective_scan_fwd") -> str:
        """A compact shape description for tables (scan kernels show d and n)."""
        if kernel.startswith("selective_scan") or kernel == "exp_floor":
            return f"{self.name} (b={self.batch}, L={self.seq_len}, d={self.d_inner}, n={self.d_state})"
        return f"{self.name} (b={self.batch}, L={self.seq_len}, H={self.hidden})"


#: The three sizes of the issue: the default model, a long sequence, one long series.
SIZES = (
    Size("default", batch=64, seq_len=60, d_model=64),
    Size("long", batch=4, seq_len=2048, d_model=64),
    Size("single", batch=1, seq_len=512, d_model=16),
)
#: Same names, tiny shapes: used when benchmarks only run once as smoke tests.
SMOKE_SIZES = (
    Size("default", batch=4, seq_len=12, d_model=8, d_state=4),
    Size("long", batch=2, seq_len=96, d_model=4, d_state=4),
    Size("single", batch=1, seq_len=40, d_model=4, d_state=4),
)
#: Train-step and PyTorch comparison shape: batch 64, seq_len 60, hidden 64, d_state 16.
TRAIN_SIZE = SIZES[0]
SMOKE_TRAIN_SIZE = SMOKE_SIZES[0]

KERNELS = (
    "selective_scan_fwd",
    "selective_scan_bwd",
    "mingru_fwd",
    "mingru_bwd",
    "gru_fwd",
    "gru_bwd",
)
MODEL_NAMES = ("mamba", "mingru", "gru", "hybrid")
BACKENDS = ("numpy", "numba")
DTYPES = (np.float64, np.float32)


def sizes_for(smoke: bool) -> tuple:
    """The kernel sizes of a full run or of a smoke run."""
    return SMOKE_SIZES if smoke else SIZES


# ----------------------------------------------------------------------------------
# Parity
# ----------------------------------------------------------------------------------
class ParityError(AssertionError):
    """Two implementations of the same computation disagree beyond tolerance."""


def tolerance(dtype) -> float:
    """Relative tolerance of a parity check: 1e-10 for float64, 1e-4 for float32."""
    return 1e-10 if np.dtype(dtype) == np.float64 else 1e-4


def rel_error(actual, reference) -> float:
    """Largest absolute difference relative to the largest reference magnitude.

    Scaling by the array's own magnitude, not elementwise, keeps the check meaningful
    for elements that are near zero only because of cancellation, where a different
    summation order changes every digit but nothing that matters.
    """
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise ParityError(f"shape mismatch: {a.shape} vs reference {r.shape}")
    if not np.all(np.isfinite(a)):
        return float("inf")
    scale = float(np.max(np.abs(r))) if r.size else 0.0
    diff = float(np.max(np.abs(a - r))) if r.size else 0.0
    return diff / scale if scale > 0 else diff


def _as_tuple(out) -> tuple:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def assert_parity(actual, reference, dtype, what: str = "") -> float:
    """Check every output of ``actual`` against ``reference``; return the worst error.

    Parameters
    ----------
    actual, reference : ndarray or tuple of ndarray
        Outputs of the two implementations, in the same order.
    dtype : numpy dtype
        Selects the tolerance (:func:`tolerance`).
    what : str
        Label for the error message.

    Raises
    ------
    ParityError
        If any output differs by more than the tolerance or has another dtype.
    """
    tol = tolerance(dtype)
    acts, refs = _as_tuple(actual), _as_tuple(reference)
    if len(acts) != len(refs):
        raise ParityError(f"{what}: {len(acts)} outputs vs {len(refs)} in the reference")
    worst = 0.0
    for i, (a, r) in enumerate(zip(acts, refs)):
        if np.asarray(a).dtype != np.asarray(r).dtype:
            raise ParityError(f"{what}: output {i} has dtype {np.asarray(a).dtype}, reference {np.asarray(r).dtype}")
        err = rel_error(a, r)
        if not err <= tol:
            raise ParityError(f"{what}: output {i} differs from the reference by {err:.3g} (tolerance {tol:g})")
        worst = max(worst, err)
    return worst


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


def torch_available() -> tuple[bool, str]:
    """Whether torch and mambapy import; the reason when they do not."""
    try:
        import torch  # noqa: F401
        import mambapy.mamba  # noqa: F401
    except Exception as exc:  # a broken torch install raises more than ImportError
        return False, f"torch/mambapy unavailable: {exc}"
    return True, ""


def numba_threads() -> int:
    """Numba's current thread count (1 when numba cannot be imported)."""
    try:
        import numba
    except ImportError:
        return 1
    return int(numba.get_num_threads())


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
class _MiniAdam:
    """Plain Adam over ``model.named_parameters()``; used only if engine.optim is missing."""

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = [(p, g) for _, p, g in model.named_parameters()]
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = [np.zeros_like(p) for p, _ in self.params]
        self.v = [np.zeros_like(p) for p, _ in self.params]
        self.t = 0

    def step(self):
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for (p, g), m, v in zip(self.params, self.m, self.v):
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def make_optimizer(model, lr: float = 1e-3):
    """Adam from :mod:`engine.optim` when it exists, else a minimal local Adam.

    Returns
    -------
    optimizer, str
        The optimiser (has ``step()``) and a label naming which one it is.
    """
    try:
        from engine import optim
    except ImportError:
        return _MiniAdam(model, lr=lr), "bench Adam"
    return optim.Adam(model.named_parameters(), lr=lr), "engine.optim.Adam"


def make_train_data(size: Size, dtype=np.float64, seed: int = 0, n_features: int = 1, horizon: int = 1):
    """Inputs ``(batch, seq_len, n_features)`` and targets ``(batch, horizon)``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size.batch, size.seq_len, n_features)).astype(dtype)
    y = rng.standard_normal((size.batch, horizon)).astype(dtype)
    return x, y


def build_forecaster(name: str, size: Size, backend: str, dtype=np.float64, seed: int = 0):
    """``models.build_model`` at the benchmark size (1 feature, horizon 1)."""
    import models

    return models.build_model(
        name, input_size=1, hidden_size=size.d_model, d_state=size.d_state, n_layers=1,
        horizon=1, backend=backend, dtype=dtype, seed=seed,
    )


def forward_backward(model, x, y):
    """One MSE forward and backward from zeroed gradients; returns ``(pred, grads)``."""
    model.zero_grad()
    pred = model.forward(x)
    model.backward((2.0 / y.size) * (pred - y))
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
    scale = 2.0 / y.size

    def train_step():
        model.zero_grad()
        pred = model.forward(x)
        diff = pred - y
        model.backward(scale * diff)
        optimizer.step()
        return float(np.mean(diff * diff))

    return train_step


@contextlib.contextmanager
def _kernel_timer(backend: str):
    """Temporarily wrap every kernel of ``backend`` to add its wall time to a counter.

    Models look kernels up as module attributes at call time, so patching the module
    catches every call; the originals are restored on exit.
    """
    module = get_kernels(backend)
    spent = [0.0]
    depth = [0]
    originals = {name: getattr(module, name) for name in module.__all__ if name != "warmup"}

    def timed(fn):
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
                    spent[0] += time.perf_counter() - t0
        return wrapper

    for name, fn in originals.items():
        setattr(module, name, timed(fn))
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
    return min(1.0, spent[0] / total) if total > 0 else 0.0


def check_train_parity(name: str, size: Size, dtype, seed: int = 0) -> float:
    """Prediction and every parameter gradient of the numpy and numba models agree."""
    x, y = make_train_data(size, dtype, seed)
    ref = forward_backward(build_forecaster(name, size, "numpy", dtype, seed), x, y)
    got = forward_backward(build_forecaster(name, size, "numba", dtype, seed), x, y)
    return assert_parity((got[0],) + got[1], (ref[0],) + ref[1], dtype, f"{name} train step {np.dtype(dtype)}")


# ----------------------------------------------------------------------------------
# PyTorch counterparts
# ----------------------------------------------------------------------------------
def _torch_setup(dtype):
    import torch

    # The fair comparison gives PyTorch exactly the cores Numba uses.
    torch.set_num_threads(numba_threads())
    return torch, {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def make_torch_mamba_pair(size: Size, backend: str, dtype=np.float32, seed: int = 0):
    """mambapy's MambaBlock (parallel scan) and our MambaBlock with the same weights.

    Returns
    -------
    torch_step, ours_step : callable
        Each does one forward + backward of the block (parameter and input gradients)
        and returns ``(out, dx)`` as NumPy arrays.
    """
    torch, tdtype = _torch_setup(dtype)
    from mambapy.mamba import MambaBlock as TorchMambaBlock, MambaConfig

    from models.mamba import MambaBlock

    torch.manual_seed(seed)
    cfg = MambaConfig(d_model=size.d_model, n_layers=1, d_state=size.d_state, pscan=True)
    tblock = TorchMambaBlock(cfg).to(tdtype)
    ours = MambaBlock(size.d_model, d_state=size.d_state, backend=backend, dtype=dtype, seed=seed)
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in tblock.state_dict().items()})
    return _torch_layer_steps(torch, tblock, ours, size, size.d_model, dtype, seed, lambda o: o)


def make_torch_gru_pair(size: Size, backend: str, dtype=np.float32, seed: int = 0):
    """``torch.nn.GRU`` and our GRULayer with the same weights (d_in = H = d_model).

    Returns
    -------
    torch_step, ours_step : callable
        As in :func:`make_torch_mamba_pair`.
    """
    torch, tdtype = _torch_setup(dtype)
    from models.gru import GRULayer

    torch.manual_seed(seed)
    H = size.hidden
    tgru = torch.nn.GRU(H, H, batch_first=True).to(tdtype)
    ours = GRULayer(H, H, backend=backend, dtype=dtype, seed=seed)
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in tgru.state_dict().items()})
    return _torch_layer_steps(torch, tgru, ours, size, H, dtype, seed, lambda o: o[0])


def _torch_layer_steps(torch, tmod, ours, size, d_in, dtype, seed, first_output):
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((size.batch, size.seq_len, d_in)).astype(dtype)
    dy = rng.standard_normal((size.batch, size.seq_len, d_in)).astype(dtype)   # both layers keep the width
    tx = torch.from_numpy(x).requires_grad_(True)
    tdy = torch.from_numpy(dy)

    def torch_step():
        tmod.zero_grad(set_to_none=True)
        tx.grad = None
        out = first_output(tmod(tx))
        out.backward(tdy)
        return out.detach().numpy(), tx.grad.numpy()

    def ours_step():
        ours.zero_grad()
        out = ours.forward(x)
        return out, ours.backward(dy)

    return torch_step, ours_step


# ----------------------------------------------------------------------------------
# Compile cost
# ----------------------------------------------------------------------------------
_COMPILE_SCRIPT = (
    "import time\n"
    "t0 = time.perf_counter()\n"
    "import engine.kernels.numba as k\n"
    "t1 = time.perf_counter()\n"
    "k.warmup()\n"
    "t2 = time.perf_counter()\n"
    "print('TIMES', t1 - t0, t2 - t1)\n"
)
_BASELINE_SCRIPT = "import numpy, numba\nprint('TIMES', 0.0, 0.0)\n"


def compile_run(cache_dir, baseline: bool = False, timeout: float = 900.0) -> dict:
    """Start a fresh interpreter that imports the numba kernels and calls ``warmup()``.

    Parameters
    ----------
    cache_dir : path or None
        ``NUMBA_CACHE_DIR`` of the child: an empty directory gives a cold compile, a
        directory filled by an earlier run gives the cached start-up; None keeps
        Numba's usual location (``__pycache__`` beside the kernels).
    baseline : bool
        Only import numpy and numba (the fixed cost of any start-up).
    timeout : float
        Seconds before the child is abandoned.

    Returns
    -------
    dict
        ``wall`` (whole child process), ``import`` and ``warmup`` (measured inside it).
    """
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _BASELINE_SCRIPT if baseline else _COMPILE_SCRIPT],
        cwd=str(REPO_ROOT), env=env, capture_output=True, text=True, timeout=timeout,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"warmup subprocess failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("TIMES")][-1]
    _, imp, warm = line.split()
    return {"wall": wall, "import": float(imp), "warmup": float(warm)}


# ----------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------
@dataclass
class Timing:
    """Median seconds per call and how it was measured."""

    median: float
    samples: int
    loops: int

    def __float__(self) -> float:
        return self.median


def time_medians(fns: dict, budget: float = 0.5, min_samples: int = 5, max_samples: int = 50,
                 min_sample_time: float = 2e-3) -> dict:
    """Median wall time of each ``fn()`` in ``fns``, sampled interleaved.

    Samples of the functions alternate (a, b, c, a, b, c, ...), so a change in machine
    load hits every contender alike and their ratio (the speed-up) stays meaningful on
    a shared machine even when the absolute times drift. The median, not the mean,
    because outliers only ever go one way. Calls shorter than ``min_sample_time`` are
    looped inside one sample so timer resolution and call overhead do not dominate.

    Parameters
    ----------
    fns : dict of str to callable
        Already warmed up (compiled) by the caller; one extra untimed call of each is
        made here to size the loops.
    budget : float
        Target total seconds of timed calls, all functions together.
    min_samples, max_samples : int
        Bounds on the number of samples of each function.
    min_sample_time : float

    Returns
    -------
    dict of str to Timing
    """
    loops, first = {}, {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        first[name] = max(time.perf_counter() - t0, 1e-9)
        loops[name] = max(1, int(np.ceil(min_sample_time / first[name]))) if first[name] < min_sample_time else 1
    round_cost = sum(first[k] * loops[k] for k in fns)
    samples = int(np.clip(budget / round_cost, min_samples, max_samples))
    times = {name: [] for name in fns}
    for _ in range(samples):
        for name, fn in fns.items():
            n = loops[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: Timing(statistics.median(ts), samples, loops[name]) for name, ts in times.items()}


def time_median(fn: Callable, **kwargs) -> Timing:
    """Median wall time of one function; see :func:`time_medians` for the keywords."""
    return time_medians({"fn": fn}, **kwargs)["fn"]


# ----------------------------------------------------------------------------------
# The CLI measurement
# ----------------------------------------------------------------------------------
SECTIONS = ("kernels", "train", "torch", "compile")


@dataclass
class Report:
    """Everything one run of :func:`run_benchmarks` measured."""

    machine: dict
    command: str
    quick: bool
    smoke: bool
    kernels: list = field(default_factory=list)
    train: list = field(default_factory=list)
    torch: list = field(default_factory=list)
    compile: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """Plain-data form (e.g. for JSON)."""
        return dataclasses.asdict(self)


def machine_info() -> dict:
    """CPU model, core counts, threads and library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "logical cores": os.cpu_count(),
        "usable cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "numba threads": numba_threads(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load average at start (1/5/15 min)": _loadavg(),
    }
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = "not installed"
    # Versions from the installed metadata: importing torch costs seconds.
    info["torch"] = _dist_version("torch") or "not installed"
    info["mambapy"] = _dist_version("mambapy") or "not installed"
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                for p in threadpool_info() if p.get("user_api") == "blas"]
        if blas:
            info["BLAS"] = "; ".join(blas)
    except Exception:  # informational only
        pass
    return info


def _loadavg() -> str:
    """The load average: on a shared machine it says how much the numbers can be trusted."""
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "unknown"


def _dist_version(name: str) -> str | None:
    """Installed version of a distribution, None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _log_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


#: ``time_median`` settings per mode; a smoke run makes one call per measurement.
TIMERS = {
    "full": dict(budget=0.6, min_samples=3, max_samples=40),
    "quick": dict(budget=0.15, min_samples=3, max_samples=15),
    "smoke": dict(budget=0.0, min_samples=1, max_samples=1, min_sample_time=0.0),
}


def run_benchmarks(quick: bool = False, smoke: bool = False, sections=SECTIONS,
                   dtypes=None, log: Callable[[str], None] | None = _log_default,
                   timer: dict | None = None) -> Report:
    """Measure kernels, train steps, PyTorch counterparts and compile cost.

    Parameters
    ----------
    quick : bool
        Fewer and shorter samples and float64 kernels only; about a minute instead of
        several. Numbers are noisier but the rows are the same.
    smoke : bool
        Tiny shapes (as the pytest smoke run): checks the harness, numbers mean nothing.
    sections : iterable of str
        Any of ``"kernels", "train", "torch", "compile"``.
    dtypes : iterable of numpy dtypes, optional
        Kernel dtypes; default float64 and float32 (float64 only with ``quick``).
    log : callable or None
        Progress messages (stderr by default).
    timer : dict, optional
        Keyword arguments of :func:`time_median`, overriding the mode's :data:`TIMERS`.

    Returns
    -------
    Report
    """
    log = log or (lambda msg: None)
    sections = tuple(sections)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    started = time.perf_counter()
    argv = ["python", "cli.py", "bench"] + (["--quick"] if quick else []) + (["--smoke"] if smoke else [])
    report = Report(machine=machine_info(), command=" ".join(argv), quick=quick, smoke=smoke)
    if timer is None:
        timer = TIMERS["smoke" if smoke else "quick" if quick else "full"]
    if dtypes is None:
        dtypes = (np.float64,) if quick or smoke else DTYPES
    has_numba, why = numba_available()
    if not has_numba:
        report.skipped.append(why)
        log(why)
    if has_numba and not smoke:
        # Compile (or load from the cache) outside every timed region. A smoke run
        # skips this: its parity calls precede all timing and load what they need.
        t0 = time.perf_counter()
        get_kernels("numba").warmup()
        log(f"numba warmup: {time.perf_counter() - t0:.1f} s")
    if "kernels" in sections:
        _run_kernels(report, sizes_for(smoke), dtypes, has_numba, timer, log)
    if "train" in sections:
        _run_train(report, SMOKE_TRAIN_SIZE if smoke else TRAIN_SIZE, has_numba, timer, log)
    if "torch" in sections:
        ok, why_t = torch_available()
        if ok:
            _run_torch(report, SMOKE_TRAIN_SIZE if smoke else TRAIN_SIZE, has_numba, timer, log)
        else:
            report.skipped.append(why_t)
            log(why_t)
    if "compile" in sections:
        if has_numba:
            _run_compile(report, cold=not (quick or smoke), rounds=1 if smoke else 3, log=log)
        else:
            report.skipped.append("compile cost: " + why)
    report.seconds = time.perf_counter() - started
    report.machine["load average at end (1/5/15 min)"] = _loadavg()
    return report


def _run_kernels(report, sizes, dtypes, has_numba, timer, log):
    ref = get_kernels("numpy")
    jit = get_kernels("numba") if has_numba else None
    for size in sizes:
        for dtype in dtypes:
            floor_fn = make_exp_floor(size, dtype)
            for kernel in KERNELS:
                args = make_kernel_args(kernel, size, dtype)
                row = {"kernel": kernel, "size": size.label(kernel), "dtype": np.dtype(dtype).name,
                       "numpy": None, "numba": None, "numba_1t": None, "speedup": None, "floor": None,
                       "floor_fraction": None, "parity": None}
                fns = {"numpy": lambda: getattr(ref, kernel)(*args)}
                if jit is not None:
                    expected = getattr(ref, kernel)(*args)
                    row["parity"] = assert_parity(getattr(jit, kernel)(*args), expected, dtype,
                                                  f"{kernel} {size.name} {np.dtype(dtype).name}")
                    fns["numba"] = lambda: getattr(jit, kernel)(*args)
                if kernel.startswith("selective_scan"):
                    fns["floor"] = floor_fn
                for name, timing in time_medians(fns, **timer).items():
                    row[name] = timing.median
                if jit is not None:
                    row["speedup"] = row["numpy"] / row["numba"]
                    row["numba_1t"] = _one_thread(lambda: time_median(fns["numba"], **timer).median)
                    if row["floor"]:
                        row["floor_fraction"] = row["floor"] / row["numba"]
                report.kernels.append(row)
                log(_kernel_line(row))


def _one_thread(fn):
    """Run ``fn()`` with Numba limited to one thread.

    Parallel kernels wait at a barrier for every thread; on a busy machine one
    descheduled thread costs a whole scheduler tick. The one-thread time is immune to
    that, so the pair of columns tells kernel cost from thread-scheduling noise.
    """
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return fn()
    finally:
        numba.set_num_threads(before)


def _kernel_line(row) -> str:
    nb = f"{row['numba'] * 1e3:9.3f} ms" if row["numba"] else "      n/a"
    return f"{row['kernel']:20s} {row['size']:45s} {row['dtype']:8s} numpy {row['numpy'] * 1e3:9.3f} ms  numba {nb}"


def _run_train(report, size, has_numba, timer, log):
    import models  # noqa: F401  (fail here, with a clear message, if models are missing)

    for name in MODEL_NAMES:
        for dtype in DTYPES:
            row = {"model": name, "dtype": np.dtype(dtype).name, "numpy": None, "numba": None,
                   "speedup": None, "parity": None, "optimizer": None,
                   "share_numpy": None, "share_numba": None, "ceiling": None,
                   "size": f"b={size.batch}, L={size.seq_len}, hidden={size.d_model}, n={size.d_state}"}
            if has_numba:
                row["parity"] = check_train_parity(name, size, dtype)
            steps = {}
            for backend in BACKENDS if has_numba else ("numpy",):
                model = build_forecaster(name, size, backend, dtype)
                x, y = make_train_data(size, dtype)
                opt, row["optimizer"] = make_optimizer(model)
                steps[backend] = make_train_step(model, x, y, opt)
            for backend, timing in time_medians(steps, **timer).items():
                row[backend] = timing.median
                row["share_" + backend] = kernel_share(steps[backend], backend,
                                                       calls=1 if timer.get("budget", 1) == 0 else 3)
            if row["numba"]:
                row["speedup"] = row["numpy"] / row["numba"]
            if row["share_numpy"] is not None and row["share_numpy"] < 1:
                row["ceiling"] = 1 / (1 - row["share_numpy"])
            report.train.append(row)
            log(f"train step {name:7s} {row['dtype']:8s} numpy {row['numpy'] * 1e3:8.2f} ms  "
                f"numba {row['numba'] * 1e3 if row['numba'] else float('nan'):8.2f} ms")


def _run_torch(report, size, has_numba, timer, log):
    backends = BACKENDS if has_numba else ("numpy",)
    pairs = (("MambaBlock", "mambapy MambaBlock (pscan=True)", make_torch_mamba_pair),
             ("GRULayer", "torch.nn.GRU", make_torch_gru_pair))
    dtype = np.float32
    for layer, tname, make in pairs:
        row = {"layer": layer, "torch_impl": tname, "dtype": np.dtype(dtype).name,
               "size": f"b={size.batch}, L={size.seq_len}, d_model={size.d_model}",
               "torch": None, "numpy": None, "numba": None, "parity": None}
        fns = {}
        for backend in backends:
            torch_step, ours_step = make(size, backend, dtype)
            expected = torch_step()
            row["parity"] = max(row["parity"] or 0.0,
                                assert_parity(ours_step(), expected, dtype, f"{layer} vs {tname} ({backend})"))
            fns.setdefault("torch", torch_step)
            fns[backend] = ours_step
        for name, timing in time_medians(fns, **timer).items():
            row[name] = timing.median
        row["speedup_vs_torch"] = row["torch"] / row["numba"] if row["numba"] else None
        report.torch.append(row)
        log(f"{layer}: torch {row['torch'] * 1e3:.2f} ms, numpy {row['numpy'] * 1e3:.2f} ms, "
            f"numba {row['numba'] * 1e3 if row['numba'] else float('nan'):.2f} ms")


def _run_compile(report, cold: bool, rounds: int, log):
    """Cold compile (one round: it takes minutes on a busy two-core machine) and start-ups.

    Without ``cold`` the cached start-up uses the normal cache location, which the
    warm-up of this very run has just filled.
    """
    rows = []
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as tmp:
        cache = tmp if cold else None
        if cold:
            log("cold compile of the numba kernel set in a fresh interpreter (takes a while)...")
            rows.append(("cold compile (empty cache)", [compile_run(cache)],
                         "fresh NUMBA_CACHE_DIR: import + warmup() compile every kernel"))
        rows.append(("cached start-up", [compile_run(cache) for _ in range(rounds)],
                     "kernels load from the on-disk cache (cache=True)"))
        rows.append(("baseline: python + import numpy, numba", [compile_run(cache, baseline=True) for _ in range(rounds)],
                     "fixed cost of any start-up"))
    for what, runs, note in rows:
        row = {"what": what, "wall": statistics.median(r["wall"] for r in runs),
               "in_process": statistics.median(r["import"] + r["warmup"] for r in runs),
               "rounds": len(runs), "note": note}
        report.compile.append(row)
        log(f"{what}: {row['wall']:.2f} s wall, {row['in_process']:.2f} s import+warmup")
    if not cold:
        report.skipped.append("cold compile: skipped in quick/smoke mode (it takes minutes); run without --quick")


# ----------------------------------------------------------------------------------
# Targets
# ----------------------------------------------------------------------------------
def evaluate_targets(report: Report) -> list[dict]:
    """The five speed targets of the issue, each met / not met / not measured.

    Returns
    -------
    list of dict
        ``target``, ``measured`` (text) and ``status``.
    """
    out = []

    def add(target, measured, ok):
        status = "not measured" if ok is None else ("met" if ok else "NOT met")
        if report.smoke and ok is not None:
            status = "n/a (smoke shapes)"
        out.append({"target": target, "measured": measured, "status": status})

    hyb = [r for r in report.train if r["model"] == "hybrid" and r["speedup"]]
    if hyb:
        by = {r["dtype"]: r["speedup"] for r in hyb}
        judged = by.get("float64", next(iter(by.values())))
        ceil = {r["dtype"]: r.get("ceiling") for r in hyb}
        add("hybrid train step, default size: numba >= 5x numpy",
            ", ".join(f"{k}: {v:.1f}x" + (f" (ceiling {ceil[k]:.1f}x)" if ceil.get(k) else "") for k, v in by.items())
            + "; judged on float64", judged >= 5)
    else:
        add("hybrid train step, default size: numba >= 5x numpy", "-", None)

    single = [r for r in report.kernels if r["kernel"].startswith("selective_scan")
              and r["size"].startswith("single") and r["speedup"]]
    if single:
        add("single long series (b=1, L=512, d=32): scan >= 20x",
            ", ".join(f"{r['kernel'].replace('selective_scan_', '')} {r['dtype']}: {r['speedup']:.1f}x" for r in single),
            all(r["speedup"] >= 20 for r in single))
    else:
        add("single long series (b=1, L=512, d=32): scan >= 20x", "-", None)

    fwd = [r for r in report.kernels if r["kernel"] == "selective_scan_fwd" and r["floor_fraction"]]
    if fwd:
        add("scan forward within 2x of the exp floor (fraction >= 0.5)",
            ", ".join(f"{r['size'].split()[0]} {r['dtype']}: {r['floor_fraction']:.2f}" for r in fwd),
            all(r["floor_fraction"] >= 0.5 for r in fwd))
    else:
        add("scan forward within 2x of the exp floor (fraction >= 0.5)", "-", None)

    for layer, target, need in (("MambaBlock", "MambaBlock fwd+bwd >= 5x faster than mambapy (float32)", 5.0),
                                ("GRULayer", "GRULayer fwd+bwd no slower than torch.nn.GRU (float32)", 1.0)):
        rows = [r for r in report.torch if r["layer"] == layer and r.get("speedup_vs_torch")]
        if rows:
            s = rows[0]["speedup_vs_torch"]
            add(target, f"{s:.2f}x (torch {rows[0]['torch'] * 1e3:.2f} ms, ours {rows[0]['numba'] * 1e3:.2f} ms)",
                s >= need)
        else:
            add(target, "-", None)
    return out


# ----------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------
def _ms(x) -> str:
    return "-" if x is None else (f"{x * 1e3:.3f}" if x < 1e-2 else f"{x * 1e3:.1f}")


def _x(x) -> str:
    return "-" if x is None else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def _f(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _err(x) -> str:
    return "-" if x is None else f"{x:.1e}"


def _tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by the text and Markdown writers."""
    tables = []
    if report.kernels:
        tables.append((
            "Kernels (median ms per call; floor fraction = exp floor / numba time; the exp floor "
            "is one np.exp over b*L*d*n values, single-threaded)",
            ["kernel", "size", "dtype", "numpy ms", "numba ms", "speed-up", "numba 1-thread ms",
             "exp floor ms", "floor fraction", "parity err"],
            [[r["kernel"], r["size"], r["dtype"], _ms(r["numpy"]), _ms(r["numba"]), _x(r["speedup"]),
              _ms(r.get("numba_1t")), _ms(r["floor"]), _f(r["floor_fraction"]), _err(r["parity"])]
             for r in report.kernels]))
    if report.train:
        size = report.train[0]["size"]
        tables.append((
            f"Train step: forward + MSE backward + {report.train[0]['optimizer']} step ({size}, 1 feature). "
            "Kernel share = time inside the time-loop kernels; ceiling = 1 / (1 - numpy kernel share), "
            "the speed-up if the kernels took no time at all",
            ["model", "dtype", "numpy ms", "numba ms", "speed-up", "kernel share numpy",
             "kernel share numba", "ceiling", "parity err"],
            [[r["model"], r["dtype"], _ms(r["numpy"]), _ms(r["numba"]), _x(r["speedup"]),
              _pct(r.get("share_numpy")), _pct(r.get("share_numba")), _x(r.get("ceiling")), _err(r["parity"])]
             for r in report.train]))
    if report.torch:
        tables.append((
            f"PyTorch CPU counterparts, forward + backward ({report.torch[0]['size']}, "
            f"{report.machine.get('numba threads')} threads each)",
            ["layer", "PyTorch", "dtype", "torch ms", "ours numpy ms", "ours numba ms",
             "numba vs torch", "parity err"],
            [[r["layer"], r["torch_impl"], r["dtype"], _ms(r["torch"]), _ms(r["numpy"]), _ms(r["numba"]),
              _x(r["speedup_vs_torch"]), _err(r["parity"])] for r in report.torch]))
    if report.compile:
        tables.append((
            "Compile cost (fresh interpreter; median of rounds)",
            ["what", "wall s", "import + warmup s", "rounds", "note"],
            [[r["what"], f"{r['wall']:.2f}", f"{r['in_process']:.2f}", str(r["rounds"]), r["note"]]
             for r in report.compile]))
    targets = evaluate_targets(report)
    tables.append(("Targets", ["target", "measured", "status"],
                   [[t["target"], t["measured"], t["status"]] for t in targets]))
    return tables


def format_table(report: Report) -> str:
    """The report as aligned plain-text tables."""
    parts = []
    for title, header, rows in _tables(report):
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
        line = "  ".join("-" * w for w in widths)
        parts.append(title)
        parts.append(line)
        parts.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        parts.append(line)
        parts.extend("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows)
        parts.append("")
    for s in report.skipped:
        parts.append(f"skipped: {s}")
    parts.append(f"total {report.seconds:.0f} s")
    return "\n".join(parts)


def to_markdown(report: Report) -> str:
    """The report as Markdown: machine, reproduction command, tables, targets."""
    lines = ["# Benchmarks", ""]
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = " (quick mode: fewer samples, noisier)" if report.quick else ""
    mode += " (SMOKE shapes: numbers are meaningless)" if report.smoke else ""
    lines += [f"Measured {when}{mode} in {report.seconds:.0f} s. Reproduce from the repository root with:", "",
              "```", REPRODUCE, "```", "",
              "Timings are medians of `time.perf_counter` samples after a warm-up call (Numba "
              "compiles before any timing). Every NumPy/Numba (and PyTorch/ours) pair is first checked "
              "for agreement: `parity err` is the largest difference relative to the largest reference "
              "value (tolerance 1e-10 in float64, 1e-4 in float32). The pytest-benchmark suite in "
              "`bench/` measures the same work: `pytest --benchmark-only`.", "",
              "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.machine.items()]
    lines.append("")
    for title, header, rows in _tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        lines.append("")
    if report.skipped:
        lines += ["## Skipped", ""] + [f"- {s}" for s in report.skipped] + [""]
    return "\n".join(lines)


def write_markdown(report: Report, path) -> Path:
    """Write :func:`to_markdown` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(to_markdown(report), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``bench`` to ``parser`` (for the cli.py registry)."""
    parser.add_argument("--quick", action="store_true",
                        help="fewer, shorter samples and float64 kernels only (about a minute)")
    parser.add_argument("--write", metavar="PATH", default=None,
                        help="also write the result as Markdown (e.g. BENCHMARKS.md)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny shapes: checks the harness end to end, numbers are meaningless")
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``bench`` from parsed arguments: print the table, optionally write Markdown.

    This and :func:`add_arguments` are the interface ``cli.py`` loads.
    """
    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        from engine.errors import UserInputError

        raise UserInputError(f"--only: unknown section(s) {', '.join(unknown) or '(none given)'}; "
                             f"choose from {', '.join(SECTIONS)}")
    from engine.pipeline import single_threaded_blas

    # Measured as training runs them: BLAS on one thread, so its threads do not fight
    # Numba's for the cores (with both on, a hybrid step was 2-3x slower).
    with single_threaded_blas():
        report = run_benchmarks(quick=args.quick, smoke=args.smoke, sections=sections)
    print(format_table(report))
    if args.write:
        path = write_markdown(report, args.write)
        print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry point: ``python -m engine.benchmarks [--quick] [--write PATH]``."""
    parser = add_arguments(argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
