"""The layer contract shared by every layer and model.

A :class:`Module` owns named parameters (NumPy arrays) with a gradient buffer of the
same shape and dtype each, and named child modules. Full names join the path with dots
(``blocks.0.mixer.in_proj.weight``), exactly as PyTorch's ``state_dict`` does, so weights
move between this engine and PyTorch code.

Subclasses implement ``forward(x)`` (caching what ``backward`` needs) and
``backward(dy) -> dx``, which *accumulates* into the parameter gradients. On a
numba-backend module both run inside :func:`engine.backend.exclusive_cores` (every
subclass's ``forward`` and ``backward`` are wrapped when the class is defined), so a model
called from a plain script gets the cores to itself for the whole call, the same speed
the training pipeline gets, and leaves the BLAS thread limits as it found them.
"""
from __future__ import annotations

import functools
import time
from collections import OrderedDict
from typing import Iterator

import numpy as np

from engine.backend import exclusive_cores, get_kernels, resolve_backend

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def resolve_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as a NumPy dtype, accepting only float32 and float64.

    Parameters
    ----------
    dtype : str, type or numpy.dtype
        ``"float64"``, ``np.float32`` and so on.

    Returns
    -------
    numpy.dtype
    """
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"unknown dtype {dtype!r}; use float64 or float32") from exc
    if dt not in _FLOAT_DTYPES:
        raise ValueError(f"unsupported dtype {dt}; use float64 or float32")
    return dt


def derive_seed(seed: int, stream: int) -> int:
    """An independent seed for sub-module ``stream`` of a module seeded with ``seed``.

    Parameters
    ----------
    seed : int
        The parent module's seed.
    stream : int
        Index of the sub-module; different streams give unrelated seeds.

    Returns
    -------
    int
        A seed in ``[0, 2**31)``.
    """
    # SeedSequence hashes the pair, so (seed, 1) and (seed + 1, 0) do not collide.
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0] >> 1)


def _owning_cores(method):
    """Run ``method`` inside :func:`engine.backend.exclusive_cores` on numba modules."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if self.backend != "numba":
            return method(self, *args, **kwargs)
        with exclusive_cores():
            return method(self, *args, **kwargs)

    wrapper._owns_cores = True
    return wrapper


class Module:
    """Base class: parameters, gradients, children, state dicts.

    Parameters
    ----------
    backend : {"numpy", "numba"} or None
        Kernel set for the time loops; ``None`` takes the process default (see
        :func:`engine.backend.default_backend`: ``MAMBA_GRU_BACKEND``, else ``"numba"``
        when Numba imports).
    dtype : numpy dtype
        float64 (default) or float32; parameters, outputs and gradients keep it.
    seed : int
        Seed of this module's parameter initialisation.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("forward", "backward"):
            method = cls.__dict__.get(name)
            if method is not None and not getattr(method, "_owns_cores", False):
                setattr(cls, name, _owning_cores(method))

    def __init__(self, backend=None, dtype=np.float64, seed: int = 0):
        self.backend = resolve_backend(backend)
        self.dtype = resolve_dtype(dtype)
        self.seed = int(seed)
        self.kernels = get_kernels(self.backend)
        self._params: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._grads: "OrderedDict[str, np.ndarray]" = OrderedDict()
        self._children: "OrderedDict[str, Module]" = OrderedDict()

    # -- construction -------------------------------------------------------------
    def add_param(self, name: str, value: np.ndarray) -> np.ndarray:
        """Register a parameter (stored as a C-contiguous copy in ``self.dtype``)."""
        arr = np.ascontiguousarray(np.asarray(value, dtype=self.dtype)).copy()
        self._params[name] = arr
        self._grads[name] = np.zeros_like(arr)
        return arr

    def add_child(self, name: str, module: "Module") -> "Module":
        """Register a child module under ``name``; returns it."""
        self._children[name] = module
        return module

    def rng(self, offset: int = 0) -> np.random.Generator:
        """A generator derived from this module's seed (``offset`` separates streams)."""
        return np.random.default_rng([self.seed, offset])

    # -- parameter access ---------------------------------------------------------
    def p(self, name: str) -> np.ndarray:
        """This module's own parameter ``name`` (the live array)."""
        return self._params[name]

    def g(self, name: str) -> np.ndarray:
        """The gradient buffer of this module's own parameter ``name``."""
        return self._grads[name]

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Yield ``(full_name, param, grad)`` for every parameter, live arrays."""
        for name, arr in self._params.items():
            yield prefix + name, arr, self._grads[name]
        for cname, child in self._children.items():
            yield from child.named_parameters(prefix + cname + ".")

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of all parameters under their full (PyTorch-style) names."""
        return OrderedDict((k, p.copy()) for k, p, _ in self.named_parameters())

    def grads(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of all gradients, with exactly the keys of :meth:`state_dict`."""
        return OrderedDict((k, g.copy()) for k, _, g in self.named_parameters())

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy values into the parameters, checking names and shapes.

        Parameters
        ----------
        state_dict : mapping of str to array-like
        strict : bool
            If True, missing or unexpected keys raise ``KeyError``.
        """
        own = {k: p for k, p, _ in self.named_parameters()}
        if strict:
            missing = sorted(set(own) - set(state_dict))
            unexpected = sorted(set(state_dict) - set(own))
            if missing or unexpected:
                raise KeyError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
        for k, value in state_dict.items():
            if k not in own:
                continue
            value = np.asarray(value)
            if value.shape != own[k].shape:
                raise ValueError(f"shape mismatch for {k}: expected {own[k].shape}, got {value.shape}")
            own[k][...] = value.astype(self.dtype, copy=False)

    def zero_grad(self) -> None:
        """Reset every gradient buffer to zero."""
        for _, _, g in self.named_parameters():
            g.fill(0)

    def num_parameters(self) -> int:
        """Total number of scalar parameters."""
        return int(sum(p.size for _, p, _ in self.named_parameters()))

    # -- computation --------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def warm_up(self, x: np.ndarray) -> float:
        """Compile (or load from Numba's on-disk cache) exactly the kernels this module uses.

        Runs one forward and one backward pass on ``x`` (keep it tiny: kernels compile
        per dtype and array layout, not per shape). Parameter gradients are left as they
        were; the cached activations are replaced, as by any forward pass. A kernel that
        only some inputs reach (the scan's checkpoint pass of sequences longer than one
        block) compiles when it is first reached. Cheap for the numpy backend.

        Parameters
        ----------
        x : ndarray
            An input this module accepts.

        Returns
        -------
        float
            Seconds spent.
        """
        start = time.perf_counter()
        saved = [g.copy() for _, _, g in self.named_parameters()]
        y = self.forward(x)
        self.backward(np.ones_like(y))
        for (_, _, g), g0 in zip(self.named_parameters(), saved):
            g[...] = g0
        return time.perf_counter() - start

    def _as_input(self, x) -> np.ndarray:
        """Inputs are cast to the module's dtype so outputs keep it."""
        return np.asarray(x, dtype=self.dtype)
