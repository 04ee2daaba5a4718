"""Reference kernels: the time loops in plain NumPy.

This module is the definition of correct. Every function here has a twin of the same
name and signature in :mod:`engine.kernels.numba`; parity tests hold them together.
Loops run over time in Python and are vectorised over batch, channels and states.

Shapes use ``b`` batch, ``L`` sequence length, ``d`` channels, ``n`` SSM states,
``H`` hidden units, ``k`` convolution width. Every output has the dtype of the inputs.
The reference keeps whatever intermediate arrays make the backward pass easy to read;
the compiled twins may recompute instead.
"""
from __future__ import annotations

import numpy as np

from engine.functional import sigmoid, softplus
from engine.kernels.api import API, KERNELS

__all__ = list(API)


# ----------------------------------------------------------------------------------
# Affine map over the last axis (the layers' matrix products)
#   y = x @ weight.T + bias
# ----------------------------------------------------------------------------------
def linear_fwd(x, weight, bias=None):
    """Affine map forward.

    Parameters
    ----------
    x : ndarray, shape (N, in)
    weight : ndarray, shape (out, in)
    bias : ndarray, shape (out,), or None

    Returns
    -------
    y : ndarray, shape (N, out)
        ``x @ weight.T + bias``.
    """
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_bwd(x, weight, dy):
    """Affine map backward.

    Parameters
    ----------
    x : ndarray, shape (N, in)
        Forward input.
    weight : ndarray, shape (out, in)
    dy : ndarray, shape (N, out)
        Gradient with respect to the output.

    Returns
    -------
    dx : ndarray, shape (N, in)
    dweight : ndarray, shape (out, in)
    dbias : ndarray, shape (out,)
    """
    return dy @ weight, dy.T @ x, dy.sum(axis=0)


# ----------------------------------------------------------------------------------
# RMS normalisation over the last axis
#   y = x * rstd * weight,   rstd = 1 / sqrt(mean(x^2) + eps)
# ----------------------------------------------------------------------------------
def rmsnorm_fwd(x, weight, eps):
    """RMS normalisation forward.

    Parameters
    ----------
    x : ndarray, shape (N, d)
    weight : ndarray, shape (d,)
        Gain.
    eps : float
        Added to the mean square before the square root.

    Returns
    -------
    y : ndarray, shape (N, d)
    rstd : ndarray, shape (N,)
        ``1 / sqrt(mean(x**2, axis=-1) + eps)``, kept for the backward.
    """
    rstd = 1 / np.sqrt(np.mean(x * x, axis=-1) + eps)                 # (N,)
    return x * rstd[:, None] * weight, rstd.astype(x.dtype, copy=False)


def rmsnorm_bwd(x, weight, rstd, dy):
    """RMS normalisation backward.

    Parameters
    ----------
    x, weight
        As in :func:`rmsnorm_fwd`.
    rstd : ndarray, shape (N,)
        From :func:`rmsnorm_fwd`.
    dy : ndarray, shape (N, d)

    Returns
    -------
    dx : ndarray, shape (N, d)
    dweight : ndarray, shape (d,)
    """
    xhat = x * rstd[:, None]                                           # (N, d)
    dxhat = dy * weight
    # xhat = x * rstd(x): the second term is the path through the mean square.
    proj = np.mean(dxhat * xhat, axis=-1, keepdims=True)              # (N, 1)
    return rstd[:, None] * (dxhat - xhat * proj), (dy * xhat).sum(axis=0)


# ----------------------------------------------------------------------------------
# Selective scan (Mamba's S6 recurrence)
#   h[t] = exp(delta[t] * A) * h[t-1] + delta[t] * B[t] * u[t],   h[-1] = 0
#   y[t] = sum_n C[t, n] * h[t, n] + D * u[t]
# ----------------------------------------------------------------------------------
def _scan_states(u, delta, A, B):
    """All hidden states. Returns ``dA (b, L, d, n)`` and ``hs (b, L+1, d, n)`` with hs[:, 0] = 0."""
    b, L, d = u.shape
    n = A.shape[1]
    dA = np.exp(delta[..., None] * A)                                   # (b, L, d, n)
    hs = np.zeros((b, L + 1, d, n), dtype=u.dtype)                     # hs[:, t+1] = h[t]
    for t in range(L):
        dBu = (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]   # (b, d, n)
        hs[:, t + 1] = dA[:, t] * hs[:, t] + dBu
    return dA, hs


def selective_scan_fwd(u, delta, A, B, C, D):
    """Selective scan forward.

    Parameters
    ----------
    u : ndarray, shape (b, L, d)
        Input sequence (after the causal convolution and SiLU).
    delta : ndarray, shape (b, L, d)
        Positive step sizes (after softplus).
    A : ndarray, shape (d, n)
        State matrix (negative: ``-exp(A_log)``).
    B, C : ndarray, shape (b, L, n)
        Input and output projections, shared across channels.
    D : ndarray, shape (d,)
        Skip connection.

    Returns
    -------
    y : ndarray, shape (b, L, d)
    """
    b, L, d = u.shape
    n = A.shape[1]
    h = np.zeros((b, d, n), dtype=u.dtype)                             # (b, d, n)
    y = np.empty_like(u)                                               # (b, L, d)
    for t in range(L):
        dA = np.exp(delta[:, t, :, None] * A)                          # (b, d, n)
        dBu = (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]   # (b, d, n)
        h = dA * h + dBu
        y[:, t] = np.einsum("bdn,bn->bd", h, C[:, t]) + D * u[:, t]
    return y


def selective_scan_bwd(u, delta, A, B, C, D, dy):
    """Selective scan backward: gradients of ``sum(dy * y)``.

    Parameters
    ----------
    u, delta, A, B, C, D
        As in :func:`selective_scan_fwd`.
    dy : ndarray, shape (b, L, d)
        Gradient with respect to ``y``.

    Returns
    -------
    du, ddelta : ndarray, shape (b, L, d)
    dA : ndarray, shape (d, n)
    dB, dC : ndarray, shape (b, L, n)
    dD : ndarray, shape (d,)
    """
    return _scan_bwd_from_states(u, delta, A, B, C, D, dy, *_scan_states(u, delta, A, B))


def _scan_bwd_from_states(u, delta, A, B, C, D, dy, dA_t, hs):
    """:func:`selective_scan_bwd` given the states ``dA_t (b, L, d, n)``, ``hs (b, L+1, d, n)``."""
    L = u.shape[1]
    du = dy * D                                                        # (b, L, d)
    ddelta = np.zeros_like(u)
    dA = np.zeros_like(A)
    dB = np.zeros_like(B)
    dC = np.einsum("bld,bldn->bln", dy, hs[:, 1:])                     # (b, L, n)
    dD = np.einsum("bld,bld->d", dy, u)
    g = np.zeros_like(hs[:, 0])                                        # dLoss/dh[t], (b, d, n)
    for t in range(L - 1, -1, -1):
        g = g + dy[:, t, :, None] * C[:, t, None, :]
        # h[t] = a * h[t-1] + delta * B * u with a = exp(delta * A)
        ga = g * hs[:, t] * dA_t[:, t]                                 # dLoss/da * a, (b, d, n)
        gB = np.einsum("bdn,bn->bd", g, B[:, t])                       # (b, d)
        ddelta[:, t] = np.einsum("bdn,dn->bd", ga, A) + gB * u[:, t]
        du[:, t] += gB * delta[:, t]
        dA += np.einsum("bdn,bd->dn", ga, delta[:, t])
        dB[:, t] = np.einsum("bdn,bd->bn", g, delta[:, t] * u[:, t])
        g = g * dA_t[:, t]                                             # carried to h[t-1]
    return du, ddelta, dA, dB, dC, dD


# ----------------------------------------------------------------------------------
# minGRU (sequential mode)
#   h[t] = (1 - z[t]) * h[t-1] + z[t] * h_tilde[t],   h[-1] = 0
# ----------------------------------------------------------------------------------
def mingru_fwd(z, h_tilde):
    """minGRU recurrence forward.

    Parameters
    ----------
    z : ndarray, shape (b, L, H)
        Update gate, already through the sigmoid.
    h_tilde : ndarray, shape (b, L, H)
        Candidate state.

    Returns
    -------
    h : ndarray, shape (b, L, H)
        Hidden state at every step.
    """
    b, L, H = z.shape
    h = np.empty_like(z)
    prev = np.zeros((b, H), dtype=z.dtype)
    for t in range(L):
        prev = (1 - z[:, t]) * prev + z[:, t] * h_tilde[:, t]
        h[:, t] = prev
    return h


def mingru_bwd(z, h_tilde, h, dh):
    """minGRU recurrence backward.

    Parameters
    ----------
    z, h_tilde : ndarray, shape (b, L, H)
        Forward inputs.
    h : ndarray, shape (b, L, H)
        Forward output.
    dh : ndarray, shape (b, L, H)
        Gradient with respect to every ``h[t]``.

    Returns
    -------
    dz, dh_tilde : ndarray, shape (b, L, H)
    """
    b, L, H = z.shape
    dz = np.empty_like(z)
    dh_tilde = np.empty_like(z)
    g = np.zeros((b, H), dtype=z.dtype)                                # dLoss/dh[t] incl. the future
    for t in range(L - 1, -1, -1):
        g = g + dh[:, t]
        h_prev = h[:, t - 1] if t > 0 else np.zeros_like(g)
        dz[:, t] = g * (h_tilde[:, t] - h_prev)
        dh_tilde[:, t] = g * z[:, t]
        g = g * (1 - z[:, t])
    return dz, dh_tilde


# ----------------------------------------------------------------------------------
# GRU (torch.nn.GRU equations, gate order r, z, n)
#   gi = x W_ih^T + b_ih is computed outside (one matmul for all steps)
#   gh = h[t-1] W_hh^T + b_hh
#   r = s(gi_r + gh_r); z = s(gi_z + gh_z); n = tanh(gi_n + r * gh_n)
#   h[t] = (1 - z) * n + z * h[t-1],   h[-1] = 0
# ----------------------------------------------------------------------------------
def gru_fwd(gi, W_hh, b_hh):
    """GRU recurrence forward.

    Parameters
    ----------
    gi : ndarray, shape (b, L, 3H)
        Input projections ``x @ W_ih.T + b_ih`` in gate order r, z, n.
    W_hh : ndarray, shape (3H, H)
    b_hh : ndarray, shape (3H,)

    Returns
    -------
    h : ndarray, shape (b, L, H)
        Hidden state at every step.
    gates : ndarray, shape (b, L, 4H)
        ``r, z, n, gh_n`` per step (``gh_n = W_hn h[t-1] + b_hn``), kept for the backward.
    """
    b, L, H3 = gi.shape
    H = H3 // 3
    h = np.empty((b, L, H), dtype=gi.dtype)
    gates = np.empty((b, L, 4 * H), dtype=gi.dtype)
    prev = np.zeros((b, H), dtype=gi.dtype)
    for t in range(L):
        gh = prev @ W_hh.T + b_hh                                      # (b, 3H)
        r = sigmoid(gi[:, t, :H] + gh[:, :H])
        z = sigmoid(gi[:, t, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, t, 2 * H:] + r * gh[:, 2 * H:])
        prev = (1 - z) * n + z * prev
        h[:, t] = prev
        gates[:, t] = np.concatenate([r, z, n, gh[:, 2 * H:]], axis=1)
    return h, gates


def gru_bwd(gi, W_hh, b_hh, h, gates, dh):
    """GRU recurrence backward.

    Parameters
    ----------
    gi, W_hh, b_hh
        As in :func:`gru_fwd`.
    h, gates : ndarray
        Outputs of :func:`gru_fwd`.
    dh : ndarray, shape (b, L, H)
        Gradient with respect to every ``h[t]``.

    Returns
    -------
    dgi : ndarray, shape (b, L, 3H)
    dW_hh : ndarray, shape (3H, H)
    db_hh : ndarray, shape (3H,)
    """
    b, L, H3 = gi.shape
    H = H3 // 3
    dgi = np.empty_like(gi)
    dgh = np.empty_like(gi)                                            # dLoss/dgh, (b, L, 3H)
    g = np.zeros((b, H), dtype=gi.dtype)
    for t in range(L - 1, -1, -1):
        g = g + dh[:, t]
        r, z, n, ghn = (gates[:, t, i * H:(i + 1) * H] for i in range(4))
        h_prev = h[:, t - 1] if t > 0 else np.zeros_like(g)
        dn = g * (1 - z) * (1 - n * n)                                 # through tanh
        dz = g * (h_prev - n) * z * (1 - z)                            # through sigmoid
        dr = dn * ghn * r * (1 - r)
        dgi[:, t] = np.concatenate([dr, dz, dn], axis=1)
        dgh[:, t] = np.concatenate([dr, dz, dn * r], axis=1)
        g = g * z + dgh[:, t] @ W_hh
    h_prev_all = np.concatenate([np.zeros_like(h[:, :1]), h[:, :-1]], axis=1)   # (b, L, H)
    dW_hh = np.einsum("blg,blh->gh", dgh, h_prev_all)
    db_hh = dgh.sum(axis=(0, 1))
    return dgi, dW_hh, db_hh


# ----------------------------------------------------------------------------------
# Causal depthwise 1-D convolution, left padding k - 1
#   y[t, c] = bias[c] + sum_j weight[c, j] * x[t - (k - 1) + j, c]
# ----------------------------------------------------------------------------------
def causal_conv1d_fwd(x, weight, bias):
    """Causal depthwise convolution forward.

    Parameters
    ----------
    x : ndarray, shape (b, L, d)
    weight : ndarray, shape (d, k)
    bias : ndarray, shape (d,)

    Returns
    -------
    y : ndarray, shape (b, L, d)
    """
    b, L, d = x.shape
    k = weight.shape[1]
    xp = np.concatenate([np.zeros((b, k - 1, d), dtype=x.dtype), x], axis=1)   # (b, L+k-1, d)
    y = np.broadcast_to(bias, x.shape).copy()
    for j in range(k):
        y += weight[:, j] * xp[:, j:j + L]
    return y


def causal_conv1d_bwd(x, weight, dy):
    """Causal depthwise convolution backward.

    Returns
    -------
    dx : ndarray, shape (b, L, d)
    dweight : ndarray, shape (d, k)
    dbias : ndarray, shape (d,)
    """
    b, L, d = x.shape
    k = weight.shape[1]
    xp = np.concatenate([np.zeros((b, k - 1, d), dtype=x.dtype), x], axis=1)
    dxp = np.zeros_like(xp)
    dweight = np.empty_like(weight)
    for j in range(k):
        dweight[:, j] = np.einsum("bld,bld->d", dy, xp[:, j:j + L])
        dxp[:, j:j + L] += weight[:, j] * dy
    dbias = dy.sum(axis=(0, 1))
    return dxp[:, k - 1:], dweight, dbias


# ----------------------------------------------------------------------------------
# Fused variants: the same time loops with the elementwise work around them folded in,
# so the compiled twins save the full-size temporaries (and sigmoid calls) that the
# layers would otherwise make. Each is defined by composing the kernels above.
# ----------------------------------------------------------------------------------
def selective_scan_gated_fwd(u, dt, A, B, C, D, z):
    """Mamba's scan with its elementwise neighbours: ``delta = softplus(dt)`` before,
    the gate ``* silu(z)`` after.

    Parameters
    ----------
    u : ndarray, shape (b, L, d)
    dt : ndarray, shape (b, L, d)
        Step sizes before the softplus (``dt_proj`` output, bias included).
    A, B, C, D
        As in :func:`selective_scan_fwd`.
    z : ndarray, shape (b, L, d)
        Gate branch before the SiLU.

    Returns
    -------
    out : ndarray, shape (b, L, d)
        ``selective_scan_fwd(u, softplus(dt), A, B, C, D) * z * sigmoid(z)``.
    """
    y = selective_scan_fwd(u, softplus(dt), A, B, C, D)
    return y * (z * sigmoid(z))


def selective_scan_gated_bwd(u, dt, A, B, C, D, z, dout):
    """Backward of :func:`selective_scan_gated_fwd`: gradients of ``sum(dout * out)``.

    Returns
    -------
    du, ddt : ndarray, shape (b, L, d)
        ``ddt`` is with respect to ``dt`` (through the softplus).
    dA : ndarray, shape (d, n)
    dB, dC : ndarray, shape (b, L, n)
    dD : ndarray, shape (d,)
    dz : ndarray, shape (b, L, d)
    """
    delta = softplus(dt)
    dA_t, hs = _scan_states(u, delta, A, B)                           # (b, L, d, n), (b, L+1, d, n)
    # y from the states the backward needs anyway, instead of a second forward scan.
    y = np.einsum("bldn,bln->bld", hs[:, 1:], C) + D * u              # (b, L, d)
    s = sigmoid(z)
    dz = dout * y * (s * (1 + z * (1 - s)))
    du, ddelta, dA, dB, dC, dD = _scan_bwd_from_states(
        u, delta, A, B, C, D, dout * (z * s), dA_t, hs)
    return du, ddelta * sigmoid(dt), dA, dB, dC, dD, dz


def mingru_logits_fwd(zh):
    """minGRU recurrence on the gate before its sigmoid and the candidate, packed.

    Parameters
    ----------
    zh : ndarray, shape (b, L, 2H)
        ``[z_logit | h_tilde]``, the output of one product ``x @ [W_z; W_h].T``:
        ``zh[..., :H]`` is ``linear_z(x)`` (the gate is ``sigmoid`` of it) and
        ``zh[..., H:]`` is ``h_tilde``.

    Returns
    -------
    h : ndarray, shape (b, L, H)
    """
    H = zh.shape[-1] // 2
    return mingru_fwd(sigmoid(zh[..., :H]), zh[..., H:])


def mingru_logits_bwd(zh, h, dh):
    """Backward of :func:`mingru_logits_fwd`.

    Returns
    -------
    dzh : ndarray, shape (b, L, 2H)
        ``[dz_logit | dh_tilde]``, packed like ``zh``.
    """
    H = zh.shape[-1] // 2
    z = sigmoid(zh[..., :H])
    dz, dh_tilde = mingru_bwd(z, zh[..., H:], h, dh)
    return np.concatenate([dz * (z * (1 - z)), dh_tilde], axis=-1)


def causal_conv1d_silu_fwd(x, weight, bias):
    """Causal depthwise convolution followed by SiLU: ``c * sigmoid(c)``, ``c = conv(x)``.

    Parameters
    ----------
    x : ndarray, shape (b, L, d)
    weight : ndarray, shape (d, k)
    bias : ndarray, shape (d,)

    Returns
    -------
    y : ndarray, shape (b, L, d)
    """
    c = causal_conv1d_fwd(x, weight, bias)
    return c * sigmoid(c)


def causal_conv1d_silu_bwd(x, weight, bias, dy):
    """Backward of :func:`causal_conv1d_silu_fwd` (the convolution is recomputed).

    Returns
    -------
    dx : ndarray, shape (b, L, d)
    dweight : ndarray, shape (d, k)
    dbias : ndarray, shape (d,)
    """
    c = causal_conv1d_fwd(x, weight, bias)
    s = sigmoid(c)
    return causal_conv1d_bwd(x, weight, dy * (s * (1 + c * (1 - s))))

# ----------------------------------------------------------------------------------
# Compilation (nothing to do here; the compiled twins in engine.kernels.numba do)
# ----------------------------------------------------------------------------------
def warmup(dtypes=(np.float64, np.float32), kernels=None):
    """Counterpart of :func:`engine.kernels.numba.warmup`: NumPy compiles nothing.

    Callers may warm up whichever backend they hold without checking which it is.

    Parameters
    ----------
    dtypes : iterable of dtype
        float32 and/or float64 (checked, then ignored).
    kernels : iterable of str, optional
        Kernel names (checked, then ignored).

    Returns
    -------
    float
        Seconds spent (always 0.0).
    """
    for dt in dtypes:
        if np.dtype(dt) not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"unsupported dtype {np.dtype(dt)}; use float64 or float32")
    unknown = sorted(set(kernels or ()) - set(KERNELS))
    if unknown:
        raise ValueError(f"unknown kernels {unknown}; choose from {', '.join(KERNELS)}")
    return 0.0
