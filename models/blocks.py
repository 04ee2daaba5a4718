"""Containers shared by the forecasters: a numbered stack and a pre-norm residual block."""
from __future__ import annotations

import numpy as np

from engine.module import Module


class Sequential(Module):
    """Apply child modules one after another; children are named ``"0"``, ``"1"``, ...

    Parameters
    ----------
    modules : list of Module
        Already built; their dtype and backend should match ``dtype`` and ``backend``.
    backend, dtype
        See :class:`engine.module.Module` (a container owns no parameters).
    """

    def __init__(self, modules, backend=None, dtype=np.float64):
        super().__init__(backend=backend, dtype=dtype)
        self.layers = list(modules)
        for i, module in enumerate(self.layers):
            self.add_child(str(i), module)

    def __len__(self) -> int:
        return len(self.layers)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Feed ``x`` through every child in order."""
        for module in self.layers:
            x = module.forward(x)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Back-propagate through the children in reverse order."""
        for module in reversed(self.layers):
            dy = module.backward(dy)
        return dy


class PreNormResidual(Module):
    """``x + mixer(norm(x))``: the residual block of Mamba-style stacks.

    Parameters
    ----------
    norm : Module
        Normalisation applied before the mixer (key prefix ``norm.``).
    mixer : Module
        Sequence mixer mapping ``(b, L, d)`` to ``(b, L, d)`` (key prefix ``mixer.``).
    backend, dtype
        See :class:`engine.module.Module`.
    """

    def __init__(self, norm: Module, mixer: Module, backend=None, dtype=np.float64):
        super().__init__(backend=backend, dtype=dtype)
        self.norm = self.add_child("norm", norm)
        self.mixer = self.add_child("mixer", mixer)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, d) -> x + mixer(norm(x)) (b, L, d)``."""
        return x + self.mixer.forward(self.norm.forward(x))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """The skip path passes ``dy`` through unchanged; the mixer path adds to it."""
        dx = self.norm.backward(self.mixer.backward(dy))                  # a fresh array
        dx += dy
        return dx
