"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"), sequential mode.

For an input ``x (b, L, d_in)``::

    z  = sigmoid(linear_z(x))             (b, L, H)   update gate
    h~ = linear_h(x)                      (b, L, H)   candidate, no tanh, no h[t-1]
    h[t] = (1 - z[t]) * h[t-1] + z[t] * h~[t],   h[-1] = 0

Neither gate looks at ``h[t-1]``, which is what makes the recurrence a linear scan.
Both linears run as one product with their weights stacked, ``zh = x @ [W_z; W_h].T``, and
the sigmoid runs inside the kernel (``mingru_logits_fwd/bwd`` take the packed ``zh``).
"""
from __future__ import annotations

import numpy as np

from engine.layers import Linear
from engine.module import Module, derive_seed


class MinGRULayer(Module):
    """minGRU layer mapping ``(b, L, d_in)`` to all hidden states ``(b, L, d_hidden)``.

    Parameters
    ----------
    d_in : int
        Input features.
    d_hidden : int
        Hidden units ``H``.
    backend, dtype, seed
        See :class:`engine.module.Module`.

    Notes
    -----
    Keys ``linear_z.weight (H, d_in)``, ``linear_z.bias (H,)``, ``linear_h.weight (H, d_in)``,
    ``linear_h.bias (H,)``.
    """

    def __init__(self, d_in: int, d_hidden: int, backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(backend=backend, dtype=dtype, seed=seed)
        self.d_in = int(d_in)
        self.d_hidden = int(d_hidden)
        kw = dict(backend=self.backend, dtype=self.dtype)
        self.linear_z = self.add_child(
            "linear_z", Linear(self.d_in, self.d_hidden, seed=derive_seed(seed, 0), **kw))
        self.linear_h = self.add_child(
            "linear_h", Linear(self.d_in, self.d_hidden, seed=derive_seed(seed, 1), **kw))
        self._cache = None

    def _stacked(self):
        """``[W_z; W_h] (2H, d_in)`` and ``[b_z; b_h] (2H,)``: one product for both linears."""
        lz, lh = self.linear_z, self.linear_h
        return (np.concatenate([lz.p("weight"), lh.p("weight")]),
                np.concatenate([lz.p("bias"), lh.p("bias")]))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, d_in) -> h (b, L, H)``."""
        x = self._as_input(x)
        b, L, _ = x.shape
        x2 = x.reshape(-1, self.d_in)                                    # (bL, d_in)
        W, bias = self._stacked()
        zh = self.kernels.linear_fwd(x2, W, bias).reshape(b, L, 2 * self.d_hidden)   # [z_logit | h~]
        h = self.kernels.mingru_logits_fwd(zh)                           # (b, L, H)
        self._cache = (x2, W, zh, h)
        return h

    def backward(self, dh: np.ndarray) -> np.ndarray:
        """``dh (b, L, H) -> dx (b, L, d_in)``; accumulates both linears' grads."""
        dh = np.ascontiguousarray(self._as_input(dh))
        x2, W, zh, h = self._cache
        H = self.d_hidden
        # dzh = [dz_logit | dh_tilde], dz_logit already through the sigmoid; (b, L, 2H)
        dzh = self.kernels.mingru_logits_bwd(zh, h, dh)
        dx, dW, db = self.kernels.linear_bwd(x2, W, dzh.reshape(-1, 2 * H))
        self.linear_z.g("weight")[...] += dW[:H]
        self.linear_z.g("bias")[...] += db[:H]
        self.linear_h.g("weight")[...] += dW[H:]
        self.linear_h.g("bias")[...] += db[H:]
        return dx.reshape(dh.shape[:-1] + (self.d_in,))
