"""Long-horizon forecaster: every channel in, every step of the horizon out.

The stock forecasters map one price window to its next values. Long-horizon benchmarks
(ETT, Exchange) ask for ``horizon`` steps of ``C`` channels at once, and the models that
lead those tables share a few traits, each an option here around any of the four
sequence encoders (the *inner* forecaster of :mod:`models.forecasters`)::

    x (b, L, C) -> instance norm -> segments -> inner forecaster -> (b, C, H)  --+
                                 `-> linear path (L -> H per channel) -----------+-> add
                -> de-normalise -> y (b, H * C), step-major (y.reshape(b, H, C))

- ``norm``, instance normalisation: each window's level is taken out per channel before
  the encoder and added back to the forecast, so the level of a window needs no
  learning, which is most of what a long forecast gets wrong when the series drifts:
  ``"last"`` subtracts the last input value (NLinear, SegRNN), ``"mean"`` the window's
  mean, ``"revin"`` also divides by the window's standard deviation and multiplies the
  forecast back by it (reversible instance normalisation, Kim et al. 2022, without the
  affine part); ``"none"`` feeds the window as it is.
- ``channels="independent"``: every channel is its own univariate series through shared
  weights (the batch grows ``C``-fold); ``"mixed"``: one sequence whose tokens hold all
  channels and whose head emits ``H * C`` values.
- ``seg_len``: the window is cut into ``L / seg_len`` segments of consecutive steps, each
  embedded as one token (as SegRNN and PatchTST do). The recurrence runs over a few
  tokens instead of hundreds of steps, which is cheaper and, on these data, better.
- ``linear_path``: a linear map from the (normalised) window to the horizon, shared by
  channels, added to the encoder's forecast: the deep part learns what a regression
  cannot (RLinear/DLinear are this map alone).

Forward and backward are written side by side; the instance normalisation's backward
is exact (its statistics depend on the input), so gradients check against finite
differences for the input as well as for every parameter.
"""
from __future__ import annotations

import numpy as np

from engine.layers import Linear
from engine.module import Module, derive_seed

__all__ = ["CHANNEL_MODES", "INSTANCE_NORMS", "REVIN_EPS", "LongHorizonForecaster"]

#: How channels meet the encoder (see the module docstring); the first is the default.
CHANNEL_MODES = ("independent", "mixed")
#: Instance normalisations of a window (see the module docstring).
INSTANCE_NORMS = ("none", "last", "mean", "revin")
#: Added to each window's variance before the square root (RevIN's value).
REVIN_EPS = 1e-5


class LongHorizonForecaster(Module):
    """All channels in, all horizon steps out, around an inner forecaster.

    Parameters
    ----------
    config : dict
        ``name, input_size`` (the channels ``C``), ``seq_len, horizon, channels, seg_len,
        norm, linear_path`` plus the inner forecaster's ``hidden_size, d_state, n_layers,
        fusion``: the keyword arguments of :func:`models.build_model`.
    inner_builder : callable
        ``inner_builder(input_size, horizon, seed) -> Forecaster``: the sequence encoder
        with its head (:func:`models.build_model` passes one).
    backend, dtype, seed
        See :class:`engine.module.Module`.

    Notes
    -----
    Keys ``encoder.*`` (the inner forecaster's keys) and, with ``linear_path``,
    ``linear.weight (H, L)``, ``linear.bias (H,)``.
    """

    def __init__(self, config: dict, inner_builder, backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(backend=backend, dtype=dtype, seed=seed)
        self.config = dict(config)
        self.name = config["name"]
        self.n_channels = C = int(config["input_size"])
        self.seq_len = L = int(config["seq_len"])
        self.horizon = H = int(config["horizon"])
        self.channels = config["channels"]
        self.seg_len = w = int(config["seg_len"])
        self.norm = config["norm"]
        self.linear_path = bool(config["linear_path"])
        self.hidden_size = int(config["hidden_size"])
        self.input_size = C                     # what the data must give per step
        if self.channels not in CHANNEL_MODES:
            raise ValueError(f"unknown channels mode {self.channels!r}; choose one of {', '.join(CHANNEL_MODES)}")
        if self.norm not in INSTANCE_NORMS:
            raise ValueError(f"unknown instance norm {self.norm!r}; choose one of {', '.join(INSTANCE_NORMS)}")
        if L % w:
            raise ValueError(f"seg_len {w} must divide seq_len {L}")
        self.n_tokens = L // w
        token = w if self.channels == "independent" else w * C
        out = H if self.channels == "independent" else H * C
        self.encoder = self.add_child("encoder", inner_builder(token, out, derive_seed(self.seed, 0)))
        if self.linear_path:
            self.linear = self.add_child("linear", Linear(L, H, backend=self.backend, dtype=self.dtype,
                                                          seed=derive_seed(self.seed, 1)))
        self._cache = None

    def init_linear_path(self, X: np.ndarray, y: np.ndarray) -> None:
        """Start from the least-squares linear forecast: the linear path takes the closed-form
        map of the normalised training windows to their normalised targets that minimises
        the training loss (on the de-normalised scale), and the encoder's head starts at
        zero, so training begins at that map's forecast and the encoder learns what it
        misses.

        Parameters
        ----------
        X : ndarray, shape (n, L, C)
            Training windows.
        y : ndarray, shape (n, H * C)
            Their targets, step-major.
        """
        if not self.linear_path:
            raise ValueError("init_linear_path needs a model built with linear_path=True")
        X = np.asarray(X, dtype=np.float64)
        n, L, C, H = len(X), self.seq_len, self.n_channels, self.horizon
        Y = np.asarray(y, dtype=np.float64).reshape(n, H, C)
        mu, sd = self._statistics(X)
        if mu is not None:
            X, Y = X - mu, Y - mu
        if sd is not None:
            X, Y = X / sd, Y / sd
        A = np.ascontiguousarray(X.transpose(0, 2, 1)).reshape(n * C, L)
        B = np.ascontiguousarray(Y.transpose(0, 2, 1)).reshape(n * C, H)
        A1 = np.hstack([A, np.ones((n * C, 1))])
        if sd is not None:
            # The training loss is taken after de-normalisation, sd^2 * |yn - f(xn)|^2: weigh
            # each (window, channel) row by its sd so the start minimises that same loss.
            # Unweighted, windows of nearly constant values (tiny sd, huge normalised
            # targets) would dominate the fit.
            w = np.ascontiguousarray(sd.transpose(0, 2, 1)).reshape(n * C, 1)
            A1, B = A1 * w, B * w
        coef, *_ = np.linalg.lstsq(A1, B, rcond=None)                                     # (L + 1, H)
        self.linear.p("weight")[...] = coef[:-1].T
        self.linear.p("bias")[...] = coef[-1]
        self.encoder.head.p("weight")[...] = 0
        self.encoder.head.p("bias")[...] = 0

    @property
    def fusion_weight(self):
        """The inner hybrid's fusion weight (None for the other encoders)."""
        return getattr(self.encoder, "fusion_weight", None)

    def warm_up(self, x: np.ndarray | None = None) -> float:
        """Compile the kernels this model uses on a tiny batch of full windows."""
        if x is None:
            x = np.random.default_rng(0).standard_normal((2, self.seq_len, self.n_channels))
        return super().warm_up(x.astype(self.dtype))

    # -- forward ---------------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, C) -> y (b, H * C)``, step-major: ``y.reshape(b, H, C)[:, s, c]``.

        Raises
        ------
        ValueError
            If ``x`` is not ``(batch, seq_len, n_channels)``.
        """
        x = self._as_input(x)
        b, L, C, H = x.shape[0], self.seq_len, self.n_channels, self.horizon
        if x.ndim != 3 or x.shape[1:] != (L, C):
            raise ValueError(f"{self.name} expects input of shape (batch, {L}, {C}), got {x.shape}")
        mu, sd = self._statistics(x)                                        # (b, 1, C) each
        xn = x if mu is None else (x - mu) if sd is None else (x - mu) / sd
        xc = np.ascontiguousarray(xn.transpose(0, 2, 1))                    # (b, C, L)
        if self.channels == "independent":
            tokens = xc.reshape(b * C, self.n_tokens, self.seg_len)         # (bC, T, w)
            deep = self.encoder.forward(tokens).reshape(b, C, H)
        else:
            tokens = np.ascontiguousarray(xn).reshape(b, self.n_tokens, self.seg_len * C)   # (b, T, wC)
            deep = self.encoder.forward(tokens).reshape(b, H, C).transpose(0, 2, 1)
        yc = deep + self.linear.forward(xc) if self.linear_path else deep   # (b, C, H)
        yn = yc.transpose(0, 2, 1)                                          # (b, H, C)
        y = yn if mu is None else (yn + mu) if sd is None else yn * sd + mu
        self._cache = (xn, yn, sd, b)
        return np.ascontiguousarray(y).reshape(b, H * C)

    def _statistics(self, x: np.ndarray):
        """``(level, scale)`` of each window and channel, ``(b, 1, C)``; None where unused."""
        if self.norm == "none":
            return None, None
        if self.norm == "last":
            return x[:, -1:, :], None
        mu = x.mean(axis=1, keepdims=True)
        if self.norm == "mean":
            return mu, None
        return mu, np.sqrt(x.var(axis=1, keepdims=True) + REVIN_EPS)

    # -- backward --------------------------------------------------------------------
    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy (b, H * C) -> dx (b, L, C)``; accumulates every parameter gradient."""
        xn, yn, sd, b = self._cache
        C, L, H = self.n_channels, self.seq_len, self.horizon
        dy = self._as_input(dy).reshape(b, H, C)
        dyn = dy if sd is None else dy * sd                                 # (b, H, C)
        dyc = np.ascontiguousarray(dyn.transpose(0, 2, 1))                  # (b, C, H)
        dxc = self.linear.backward(dyc) if self.linear_path else np.zeros((b, C, L), dtype=self.dtype)
        if self.channels == "independent":
            dtok = self.encoder.backward(dyc.reshape(b * C, H))             # (bC, T, w)
            dxc = dxc + dtok.reshape(b, C, L)
            dxn = dxc.transpose(0, 2, 1)
        else:
            dtok = self.encoder.backward(np.ascontiguousarray(dyn).reshape(b, H * C))   # (b, T, wC)
            dxn = dxc.transpose(0, 2, 1) + dtok.reshape(b, L, C)
        return self._statistics_backward(np.ascontiguousarray(dxn), dy, xn, yn, sd)

    def _statistics_backward(self, dxn, dy, xn, yn, sd) -> np.ndarray:
        """``dx`` from the gradient of the normalised window ``dxn`` and the output's ``dy``:
        the level and scale are functions of ``x`` too, on both sides of the encoder."""
        if self.norm == "none":
            return dxn
        dmu = dy.sum(axis=1, keepdims=True)                                 # (b, 1, C): y = yn + mu...
        if self.norm == "last":
            dx = dxn.copy()
            dx[:, -1:] += dmu - dxn.sum(axis=1, keepdims=True)              # mu = x[:, -1]
            return dx
        L = self.seq_len
        if self.norm == "mean":
            return dxn - dxn.mean(axis=1, keepdims=True) + dmu / L
        # xn = (x - mu) / sd with the window's own mu and sd: the layer-norm backward
        # (exact with eps too, since d sd / dx = xn / L), plus y = yn * sd + mu.
        dx = (dxn - dxn.mean(axis=1, keepdims=True)
              - xn * (dxn * xn).mean(axis=1, keepdims=True)) / sd
        dsd = (dy * yn).sum(axis=1, keepdims=True)                          # (b, 1, C)
        return dx + (dmu + dsd * xn) / L
