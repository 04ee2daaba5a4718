"""The Mamba block (Gu & Dao 2023), reference "slow path", forward and backward.

Data flow for an input ``h (b, L, d_model)``, with ``E = d_inner = expand * d_model``,
``R = dt_rank`` and ``N = d_state``::

    xz    = in_proj(h)                    (b, L, 2E)  -> x (b, L, E), z (b, L, E)
    u     = silu(conv1d(x))               (b, L, E)   causal depthwise, width d_conv
    dtBC  = x_proj(u)                     (b, L, R + 2N) -> dt (b, L, R), B, C (b, L, N)
    delta = softplus(dt_proj(dt))         (b, L, E)   bias inside the softplus
    A     = -exp(A_log)                   (E, N)
    y     = selective_scan(u, delta, A, B, C, D)      (b, L, E)
    out   = out_proj(y * silu(z))         (b, L, d_model)

The elementwise steps run inside fused kernels: ``silu(conv1d(x))`` is
``causal_conv1d_silu`` (``CausalConv1d(activation="silu")``), and softplus, scan and
``* silu(z)`` are one ``selective_scan_gated`` call, so neither ``delta`` nor the gate
is ever stored; backward recomputes them.

State-dict keys and shapes follow ``mamba_ssm`` / ``mambapy`` so weights can be moved
to and from PyTorch.
"""
from __future__ import annotations

import math

import numpy as np

from engine.functional import softplus_inverse
from engine.layers import CausalConv1d, Linear
from engine.module import Module, derive_seed

DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 1e-1, 1e-4


class MambaBlock(Module):
    """Selective state-space mixer mapping ``(b, L, d_model)`` to ``(b, L, d_model)``.

    Parameters
    ----------
    d_model : int
        Width of the input and output.
    d_state : int
        SSM state size ``N`` per channel.
    d_conv : int
        Width of the causal depthwise convolution.
    expand : int
        ``d_inner = expand * d_model``.
    dt_rank : int or "auto"
        Rank of the step-size projection; ``"auto"`` is ``ceil(d_model / 16)``.
    backend, dtype, seed
        See :class:`engine.module.Module`.

    Notes
    -----
    ``A_log`` starts at ``log(1..d_state)`` on every channel (S4D-real), ``D`` at one,
    ``dt_proj.bias`` at ``softplus^-1(dt)`` with ``dt`` log-uniform in ``[1e-3, 1e-1]``
    and ``dt_proj.weight`` uniform in ``+-dt_rank**-0.5``.
    """

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank="auto", backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(backend=backend, dtype=dtype, seed=seed)
        self.d_model = int(d_model)
        self.d_state = int(d_state)
        self.d_conv = int(d_conv)
        self.d_inner = int(expand) * self.d_model
        self.dt_rank = math.ceil(self.d_model / 16) if dt_rank == "auto" else int(dt_rank)
        E, R, N = self.d_inner, self.dt_rank, self.d_state
        kw = dict(backend=self.backend, dtype=self.dtype)

        self.in_proj = self.add_child(
            "in_proj", Linear(self.d_model, 2 * E, bias=False, seed=derive_seed(seed, 0), **kw))
        self.conv1d = self.add_child(
            "conv1d", CausalConv1d(E, self.d_conv, seed=derive_seed(seed, 1), activation="silu",
                                   **kw))
        self.x_proj = self.add_child(
            "x_proj", Linear(E, R + 2 * N, bias=False, seed=derive_seed(seed, 2), **kw))
        self.dt_proj = self.add_child(
            "dt_proj", Linear(R, E, bias=True, seed=derive_seed(seed, 3), **kw))
        self.add_param("A_log", np.log(np.tile(np.arange(1, N + 1, dtype=np.float64), (E, 1))))
        self.add_param("D", np.ones(E))
        self.out_proj = self.add_child(
            "out_proj", Linear(E, self.d_model, bias=False, seed=derive_seed(seed, 4), **kw))
        self._init_dt_proj(self.rng(5))
        self._cache = None

    def _init_dt_proj(self, rng: np.random.Generator) -> None:
        # Keeps the initial step sizes in a useful range instead of Linear's default.
        bound = self.dt_rank ** -0.5
        self.dt_proj.p("weight")[...] = rng.uniform(-bound, bound, (self.d_inner, self.dt_rank))
        log_dt = rng.uniform(math.log(DT_MIN), math.log(DT_MAX), self.d_inner)
        dt = np.maximum(np.exp(log_dt), DT_FLOOR)
        self.dt_proj.p("bias")[...] = softplus_inverse(dt)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, d_model) -> out (b, L, d_model)``."""
        x = self._as_input(x)
        b, L, _ = x.shape
        E, R, N = self.d_inner, self.dt_rank, self.d_state
        K = self.kernels

        # in_proj's two halves as two products, so that x and z come out contiguous
        # (slicing one (b, L, 2E) product would cost a copy of each half).
        x2 = x.reshape(-1, self.d_model)                                  # (bL, d_model)
        W_in = self.in_proj.p("weight")                                   # (2E, d_model)
        xs = K.linear_fwd(x2, W_in[:E]).reshape(b, L, E)                  # (b, L, E)
        z = K.linear_fwd(x2, W_in[E:]).reshape(b, L, E)                   # (b, L, E)
        u = self.conv1d.forward(xs)                                       # (b, L, E), silu fused

        dtBC = self.x_proj.forward(u)                                     # (b, L, R + 2N)
        dt = dtBC[..., :R]                                                # (b, L, R)
        # The kernels index B and C densely, so hand them contiguous copies.
        B = np.ascontiguousarray(dtBC[..., R:R + N])                      # (b, L, N)
        C = np.ascontiguousarray(dtBC[..., R + N:])                       # (b, L, N)
        dt_pre = self.dt_proj.forward(dt)                                 # (b, L, E), pre-softplus
        A = -np.exp(self.p("A_log"))                                      # (E, N)

        # yg = selective_scan(u, delta = softplus(dt_pre), A, B, C, D) * silu(z), one kernel
        yg = K.selective_scan_gated_fwd(u, dt_pre, A, B, C, self.p("D"), z)
        out = self.out_proj.forward(yg)                                   # (b, L, d_model)

        self._cache = (x2, u, z, dt_pre, A, B, C)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """``dout (b, L, d_model) -> dx (b, L, d_model)``; accumulates every parameter grad."""
        dout = self._as_input(dout)
        x2, u, z, dt_pre, A, B, C = self._cache
        E = self.d_inner
        K = self.kernels

        dyg = self.out_proj.backward(dout)                                # (b, L, E), d yg
        # Through the gate, the scan and the softplus; ddt_pre = ddelta * sigmoid(dt_pre).
        du, ddt_pre, dA, dB, dC, dD, dz = K.selective_scan_gated_bwd(
            u, dt_pre, A, B, C, self.p("D"), z, dyg)
        self.g("D")[...] += dD
        self.g("A_log")[...] += dA * A                                    # dA/dA_log = -exp(A_log) = A

        ddt = self.dt_proj.backward(ddt_pre)                              # (b, L, R)
        du += self.x_proj.backward(np.concatenate([ddt, dB, dC], axis=-1))
        dxs = self.conv1d.backward(du)                                    # (b, L, E), via silu

        W_in = self.in_proj.p("weight")
        gW_in = self.in_proj.g("weight")
        dx, dWx, _ = K.linear_bwd(x2, W_in[:E], dxs.reshape(-1, E))
        dxz, dWz, _ = K.linear_bwd(x2, W_in[E:], dz.reshape(-1, E))
        gW_in[:E] += dWx
        gW_in[E:] += dWz
        dx += dxz
        return dx.reshape(dout.shape[:-1] + (self.d_model,))             # (b, L, d_model)
