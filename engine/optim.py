"""Optimisers and training helpers: Adam/AdamW, cosine schedule, clipping, early stopping.

Parameters are handled as ``(name, param, grad)`` triples of live arrays, exactly what
``model.named_parameters()`` yields; updates are in place.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable, Iterable

import numpy as np

__all__ = ["decays", "Adam", "AdamW", "clip_grad_norm", "global_norm", "CosineSchedule", "EarlyStopping"]

_NO_DECAY_LEAVES = {"A_log", "D", "alpha", "bias"}


def decays(name: str, param: np.ndarray) -> bool:
    """Whether weight decay applies to parameter ``name``.

    Decay shrinks weights towards zero, which is a prior only for weight matrices.
    Excluded: Mamba's ``A_log`` (it sets the state decay rates; shrinking it changes the
    dynamics) and ``D``, biases, normalisation weights (their neutral value is 1, not 0),
    and the hybrid's fusion ``alpha``. Anything with fewer than two dimensions is
    excluded as well, which catches biases and norm weights under any name.
    """
    leaf = name.rsplit(".", 1)[-1]
    if leaf in _NO_DECAY_LEAVES or leaf.startswith("bias") or "alpha" in leaf:
        return False
    if "norm" in name.lower():
        return False
    return np.ndim(param) >= 2


class Adam:
    """Adam with bias correction (Kingma & Ba 2015).

    Parameters
    ----------
    params : iterable of (name, param, grad)
        Live arrays, updated in place.
    lr : float
    betas : (float, float)
    eps : float
    weight_decay : float
        L2 penalty added to the gradient (``g + wd * p``), on parameters that
        :func:`decays`. Use :class:`AdamW` for decoupled decay.
    """

    decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params = [(n, p, g) for n, p, g in params]
        self.lr = float(lr)
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.t = 0
        self.m = OrderedDict((n, np.zeros_like(p)) for n, p, _ in self.params)
        self.v = OrderedDict((n, np.zeros_like(p)) for n, p, _ in self.params)
        self.decay = {n: decays(n, p) for n, p, _ in self.params}

    def step(self, lr: float | None = None) -> None:
        """Apply one update with the current gradients (``lr`` overrides ``self.lr``)."""
        lr = self.lr if lr is None else float(lr)
        self.t += 1
        c1 = 1.0 - self.beta1 ** self.t
        c2 = 1.0 - self.beta2 ** self.t
        for name, p, g in self.params:
            wd = self.weight_decay if self.decay[name] else 0.0
            if wd and not self.decoupled:
                g = g + wd * p
            m, v = self.m[name], self.v[name]
            m *= self.beta1
            m += (1.0 - self.beta1) * g
            v *= self.beta2
            v += (1.0 - self.beta2) * (g * g)
            if wd and self.decoupled:
                p *= 1.0 - lr * wd
            p -= (lr * (m / c1) / (np.sqrt(v / c2) + self.eps)).astype(p.dtype, copy=False)

    def state_dict(self) -> dict:
        """What :meth:`step` changes: the step count ``t`` and the moments.

        Returns
        -------
        dict
            ``{"t": int, "m": {name: ndarray}, "v": {name: ndarray}}``, the moments as the
            live arrays (as PyTorch's optimisers do: saving them costs no copy; copy them
            to keep a snapshot). With :meth:`load_state_dict` a run continues as if never
            stopped.
        """
        return {"t": self.t, "m": OrderedDict(self.m), "v": OrderedDict(self.v)}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output (names and shapes must match the parameters).

        Raises
        ------
        KeyError, ValueError
            A moment is missing, unexpected or of another shape.
        """
        for key in ("m", "v"):
            saved, own = state[key], getattr(self, key)
            if set(saved) != set(own):
                raise KeyError(f"optimiser state {key!r} is for other parameters")
            for name, arr in own.items():
                value = np.asarray(saved[name])
                if value.shape != arr.shape:
                    raise ValueError(f"optimiser state {key!r} of {name}: shape {value.shape}, "
                                     f"expected {arr.shape}")
                # In place: the moments stay the arrays step() updates.
                arr[...] = value
        self.t = int(state["t"])


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019): ``p -= lr * wd * p``
    before the Adam step, on parameters that :func:`decays`."""

    decoupled = True


def global_norm(grads: Iterable[np.ndarray]) -> float:
    """L2 norm of all gradients taken together."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads))


def clip_grad_norm(grads: Iterable[np.ndarray], max_norm: float) -> float:
    """Scale gradients in place so their global norm is at most ``max_norm``.

    Parameters
    ----------
    grads : iterable of ndarray
        Live gradient buffers.
    max_norm : float
        ``0`` disables clipping.

    Returns
    -------
    float
        The norm before clipping (inf or NaN is returned as is, and nothing is scaled).
    """
    grads = list(grads)
    norm = global_norm(grads)
    if max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        coef = max_norm / (norm + 1e-6)
        for g in grads:
            g *= coef
    return norm


class CosineSchedule:
    """Linear warm-up, then cosine annealing from ``base_lr`` to ``min_lr``.

    Parameters
    ----------
    base_lr : float
    total_steps : int
        Number of optimiser steps of the whole run.
    warmup_steps : int
        Steps of linear warm-up (``lr = base_lr * (step + 1) / warmup_steps``).
    min_lr : float
    """

    def __init__(self, base_lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0):
        self.base_lr = float(base_lr)
        self.total_steps = max(int(total_steps), 1)
        self.warmup_steps = max(int(warmup_steps), 0)
        self.min_lr = float(min_lr)

    def __call__(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based)."""
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        span = max(self.total_steps - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.min_lr + 0.5 * (self.base_lr - self.min_lr) * (1.0 + math.cos(math.pi * progress))


class EarlyStopping:
    """Track the best validation loss, keep its weights, say when to stop.

    Parameters
    ----------
    patience : int
        Epochs without improvement before stopping; ``0`` never stops early (the best
        weights are still kept).
    min_delta : float
        Improvement smaller than this does not count.
    """

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self.best_state = None
        self.bad_epochs = 0

    def update(self, val_loss: float, epoch: int, snapshot: Callable[[], dict]) -> bool:
        """Record an epoch's validation loss; returns True when it is a new best.

        ``snapshot`` is called (to copy the weights) only on a new best.
        """
        if math.isfinite(val_loss) and val_loss < self.best_loss - self.min_delta:
            self.best_loss = float(val_loss)
            self.best_epoch = int(epoch)
            self.best_state = snapshot()
            self.bad_epochs = 0
            return True
        self.bad_epochs += 1
        return False

    def state_dict(self) -> dict:
        """The counters and the best weights (``best_state``, None before any best)."""
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` output."""
        self.best_loss = float(state["best_loss"])
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.best_state = state["best_state"]

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` epochs in a row brought no improvement."""
        return self.patience > 0 and self.bad_epochs >= self.patience
