"""The machine floor of a train step: its matrix products and exponentials, nothing else.

No implementation of a train step can beat the time the machine needs for the step's
matrix products (BLAS, all cores) plus the exponentials the step must evaluate, with the
fastest exp the machine offers on all cores: NumPy's (SVML, AVX-512 where the CPU has it)
and the engine's own vectorised exp are both timed, and the faster sets the floor, so a
slow exp of ours can never make the floor easier to reach. A step reported as a multiple of that floor says
how much is left to gain, independently of any other implementation.

What the step computes is read from the model itself, not from a list of shapes:
:func:`account_forward` runs one forward pass of the NumPy-backend model (the reference
kernels do their products in Python, where they can be seen) with

* every 2-D weight replaced by a view that records each product it takes part in
  (``@``, ``np.matmul``, ``np.dot``), and
* ``np.exp``, ``np.expm1`` and ``np.tanh`` counting the values they produce (a sigmoid,
  softplus or SiLU is one exp per value, a tanh one exp).

Each forward product ``C = A @ B`` (``M x K`` by ``K x N``) with a weight ``B`` has two
backward products: ``dA = dC @ B.T`` (``M x N`` by ``N x K``), computed per call
because the recurrence needs it step by step, and ``dB = A.T @ dC`` (``K x M`` by ``M x N``),
a sum over every call that used the weight, so one product over all their rows (a GRU's
60 per-step weight-gradient products are one ``3H x 60b`` by ``60b x H`` product). A product
over stacked rows (``x (b, L, d) @ W.T``) counts as one product with ``M = b * L``. The
floor counts each exponential once: recomputing them in the backward pass (the
selective scan does, to keep its memory bound) is cost above the floor.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from bench.harness.sizes import Size

__all__ = ["Gemm", "Account", "AccountingError", "account_forward", "account_train_step", "FloorPart",
           "EXP_CHUNK", "EXP_PARTS", "FLOOR_PARTS", "floor_cores"]

#: Values per call of the exp floor: the fused kernels evaluate their exps in registers,
#: so the floor streams through a buffer that stays in a core's L2 cache (256 KiB of
#: float64) instead of one array of every value. Measured on the 2-core AMD EPYC: 2**15
#: values per call was as fast as 2**18 and faster than 2**13 (per-call overhead).
EXP_CHUNK = 2 ** 15
#: The floor's exp parts: NumPy's exp and the engine's, each on every core.
EXP_PARTS = {"exp": "numpy", "exp-engine": "engine"}
FLOOR_PARTS = ("gemm",) + tuple(EXP_PARTS)


class AccountingError(RuntimeError):
    """The step does something the floor cannot account for (e.g. an einsum with a weight)."""


@dataclass(frozen=True)
class Gemm:
    """One matrix product ``(m x k) @ (k x n)``, what it is for and which weight it involves."""

    m: int
    k: int
    n: int
    role: str       # "forward", "input grad" or "weight grad"
    weight: str

    @property
    def macs(self) -> int:
        """Multiply-adds."""
        return self.m * self.k * self.n


@dataclass
class Account:
    """The matrix products and the exponentials of one train step."""

    gemms: list = field(default_factory=list)
    exps: int = 0

    @property
    def macs(self) -> int:
        """Multiply-adds of every product together."""
        return sum(g.macs for g in self.gemms)

    def shapes(self) -> list[tuple[tuple[int, int, int], int]]:
        """Distinct ``(m, k, n)`` with how often each occurs, in first-seen order."""
        counts: dict = {}
        for g in self.gemms:
            counts[(g.m, g.k, g.n)] = counts.get((g.m, g.k, g.n), 0) + 1
        return list(counts.items())

    def summary(self) -> dict:
        """Plain data for reports: counts, multiply-adds, exponentials."""
        return {"gemms": len(self.gemms), "distinct_shapes": len(self.shapes()), "macs": self.macs,
                "exps": self.exps,
                "by_role": {r: sum(1 for g in self.gemms if g.role == r)
                            for r in ("forward", "input grad", "weight grad")}}


# ----------------------------------------------------------------------------------
# Recording
# ----------------------------------------------------------------------------------
_PRODUCTS = {np.matmul, np.dot}
_UNACCOUNTED = {np.einsum, np.tensordot, np.inner, np.vdot, np.outer, np.kron}
_active: list = []          # the recorder of the forward pass being accounted, if any


def _plain(obj):
    """``obj`` with every recorded weight turned back into a plain ndarray."""
    if isinstance(obj, _Weight):
        return obj.view(np.ndarray)
    if isinstance(obj, (tuple, list)):
        return type(obj)(_plain(o) for o in obj)
    return obj


class _Weight(np.ndarray):
    """A view of a weight that reports the products it takes part in."""

    def __array_finalize__(self, obj):
        # Views of a weight (``W.T``, ``W[:H]``) keep its name.
        self.weight_name = getattr(obj, "weight_name", None)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc is np.matmul and method == "__call__" and _active:
            _active[-1].product(*inputs[:2])
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        return getattr(ufunc, method)(*_plain(inputs), **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if _active and func in _PRODUCTS:
            _active[-1].product(*args[:2])
        elif _active and func in _UNACCOUNTED:
            raise AccountingError(f"np.{func.__name__} with a weight: the floor cannot account for it")
        out = func(*_plain(args), **_plain(kwargs))
        if func is np.concatenate and isinstance(out, np.ndarray) and out.ndim == 2:
            # weights stacked into one product (minGRU's [W_z; W_h]) stay a weight: "a+b"
            names = [getattr(a, "weight_name", None) for a in args[0]]
            if all(names):
                out = out.view(_Weight)
                out.weight_name = "+".join(names)
        return out


class _Recorder:
    def __init__(self):
        self.products = []      # (m, k, n, count, weight, side)
        self.exps = 0

    def product(self, a, b) -> None:
        wa, wb = getattr(a, "weight_name", None), getattr(b, "weight_name", None)
        if wa is None and wb is None:
            return
        if wa is not None and wb is not None:
            raise AccountingError(f"product of two weights ({wa}, {wb})")
        A, B = np.shape(a), np.shape(b)
        if wb is not None and len(B) == 2:
            # rows of a stacked operand fold into M: (b, L, K) @ (K, N) is one (b*L, K) @ (K, N)
            m = int(np.prod(A[:-1])) if len(A) > 1 else 1
            self.products.append((m, A[-1], B[1], 1, wb, "b"))
        elif wa is not None and len(A) == 2:
            n = B[-1] if len(B) > 1 else 1
            count = int(np.prod(B[:-2])) if len(B) > 2 else 1
            self.products.append((A[0], A[1], n, count, wa, "a"))
        else:
            raise AccountingError(f"product of shapes {A} and {B} with a weight of more than 2 dimensions")

    def counting(self, fn):
        def counted(*args, **kwargs):
            out = fn(*args, **kwargs)
            self.exps += int(np.size(out))
            return out
        return counted


def _walk(module, prefix=""):
    """``(full name prefix, module)`` for a module and all its descendants."""
    yield prefix, module
    # The layer contract has no public "replace a parameter"; the floor needs views of
    # the live arrays, so it uses the registry of engine.module.Module directly.
    for name, child in module._children.items():
        yield from _walk(child, prefix + name + ".")


def _is_weight(name: str, arr: np.ndarray) -> bool:
    return arr.ndim == 2 and name.rsplit(".", 1)[-1].startswith("weight")


@contextlib.contextmanager
def _recording(model):
    rec = _Recorder()
    swapped = []
    for prefix, mod in _walk(model):
        for name, arr in list(mod._params.items()):
            if _is_weight(name, arr):
                view = arr.view(_Weight)
                view.weight_name = prefix + name
                mod._params[name] = view
                swapped.append((mod, name, arr))
    originals = {name: getattr(np, name) for name in ("exp", "expm1", "tanh")}
    for name, fn in originals.items():
        setattr(np, name, rec.counting(fn))
    _active.append(rec)
    try:
        yield rec
    finally:
        _active.pop()
        for name, fn in originals.items():
            setattr(np, name, fn)
        for mod, name, arr in swapped:
            mod._params[name] = arr


def account_forward(model, x) -> Account:
    """The products and exponentials of one train step of ``model`` on ``x``.

    Parameters
    ----------
    model : engine.module.Module
        Built with the NumPy backend, whose kernels do their products in Python.
    x : ndarray
        One batch.

    Returns
    -------
    Account
        Forward products in call order, then each one's input-gradient product, then one
        weight-gradient product per weight; the exponentials of the forward pass.

    Raises
    ------
    AccountingError
        If a 2-D weight took part in no product that could be seen (its products would
        be missing from the floor), or in one the floor cannot count.
    """
    if model.backend != "numpy":
        raise AccountingError("account a NumPy-backend model: compiled kernels hide their products")
    with _recording(model) as rec:
        model.forward(x)
    weights = {prefix + n for prefix, mod in _walk(model) for n, a in mod._params.items() if _is_weight(n, a)}
    seen = {name for p in rec.products for name in p[4].split("+")}
    if weights - seen:
        raise AccountingError(f"weights in no recorded product: {sorted(weights - seen)}")
    acc = Account(exps=rec.exps)
    for m, k, n, count, w, _ in rec.products:
        acc.gemms += [Gemm(m, k, n, "forward", w)] * count
    for m, k, n, count, w, side in rec.products:
        g = Gemm(m, n, k, "input grad", w) if side == "b" else Gemm(k, m, n, "input grad", w)
        acc.gemms += [g] * count
    merged: dict = {}
    for m, k, n, count, w, side in rec.products:
        # the weight's gradient sums over its calls: one product whose inner size adds up
        key, inner = ((w, side, k, n), m * count) if side == "b" else ((w, side, m, k), n * count)
        merged[key] = merged.get(key, 0) + inner
    for (w, _, p, q), inner in merged.items():
        acc.gemms.append(Gemm(p, inner, q, "weight grad", w))
    return acc


def account_train_step(model_name: str, size: Size, dtype, seed: int = 0) -> Account:
    """:func:`account_forward` for a forecaster of :func:`models.build_model` at ``size``."""
    from bench.harness.cases import build_forecaster, make_train_data

    model = build_forecaster(model_name, size, "numpy", dtype, seed)
    x, _ = make_train_data(size, dtype, seed)
    return account_forward(model, x)


# ----------------------------------------------------------------------------------
# The floor as something a worker can step
# ----------------------------------------------------------------------------------
def floor_cores() -> int:
    """The cores this process may run on: the floor's exponentials use every one."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class FloorPart:
    """The GEMMs or the exponentials of a train step's floor, as one callable step.

    Parameters
    ----------
    spec : dict
        ``part`` (one of :data:`FLOOR_PARTS`: ``"gemm"``, ``"exp"`` for NumPy's exp,
        ``"exp-engine"`` for the engine's), ``model``, ``dtype``, ``size`` (a dict) and
        ``seed``.

    Notes
    -----
    GEMMs run as ``np.matmul(a, b, out=c)`` on preallocated operands, one array set per
    distinct shape (products of one shape reuse it, as a time loop reuses its weight);
    BLAS uses its default threads. Exponentials run in calls of :data:`EXP_CHUNK` values,
    split evenly over one thread per core (:func:`floor_cores`), each thread on its own
    input and output buffers: NumPy's ufunc and the engine's compiled loop both release
    the GIL, so the threads compute side by side, as the kernels' thread pool does.
    """

    def __init__(self, spec: dict):
        self.part = spec["part"]
        dtype = np.dtype(spec["dtype"])
        size = Size(**spec["size"])
        if self.part not in FLOOR_PARTS:
            raise ValueError(f"unknown floor part {self.part!r}; choose one of {', '.join(FLOOR_PARTS)}")
        self.account = account_train_step(spec["model"], size, dtype, int(spec.get("seed", 0)))
        rng = np.random.default_rng(0)
        self.info = {"impl": f"floor {self.part}", "account": self.account.summary(),
                     "shapes": self.account.shapes()}
        if self.part == "gemm":
            arrays = {}
            for (m, k, n), _ in self.account.shapes():
                arrays[(m, k, n)] = (rng.standard_normal((m, k)).astype(dtype),
                                     rng.standard_normal((k, n)).astype(dtype), np.empty((m, n), dtype))
            self.calls = [arrays[(g.m, g.k, g.n)] for g in self.account.gemms]
            return
        n = self.account.exps
        chunk = min(EXP_CHUNK, max(n, 1))
        full, rest = divmod(n, chunk)
        cores = floor_cores()
        if EXP_PARTS[self.part] == "numpy":
            self.exp = lambda x, out: np.exp(x, out=out)
        else:
            from engine.kernels.numba._math import _elementwise_kernel

            self.exp = lambda x, out: _elementwise_kernel(x, 0, out)     # 0: exp
        # Each thread: its own buffers (the range of delta * A at Mamba's initialisation),
        # its share of the full calls, and the remainder goes to the first thread.
        self.work = []
        for t in range(min(cores, max(full, 1))):
            x = -rng.uniform(1e-3, 1.6, chunk).astype(dtype)
            calls = full // cores + (t < full % cores)
            self.work.append((x, np.empty_like(x), calls, rest if t == 0 else 0))
        self.exp(self.work[0][0][:1], self.work[0][1][:1])       # compile or load outside the timing
        self.pool = None
        if len(self.work) > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(len(self.work), thread_name_prefix="floor-exp")
        self.info.update({"exp": "numpy.exp (SVML where available)" if EXP_PARTS[self.part] == "numpy"
                          else "engine exp (engine.kernels.numba._math)", "exp threads": len(self.work),
                          "exp chunk": chunk})

    def _exp_thread(self, work) -> None:
        x, out, calls, rest = work
        for _ in range(calls):
            self.exp(x, out)
        if rest:
            self.exp(x[:rest], out[:rest])

    def step(self) -> None:
        """All the step's products, or all its exponentials."""
        if self.part == "gemm":
            for a, b, c in self.calls:
                np.matmul(a, b, out=c)
            return
        if self.pool is None:
            self._exp_thread(self.work[0])
            return
        for future in [self.pool.submit(self._exp_thread, w) for w in self.work]:
            future.result()

    def outputs(self) -> tuple:
        """The floor is not an implementation of the step: nothing to compare."""
        return ()
