"""minGRU (Feng et al. 2024, "Were RNNs All We Needed?"), sequential mode.

For an input ``x (b, L, d_in)``::

    z  = sigmoid(linear_z(x))             (b, L, H)   update gate
    h~ = linear_h(x)                      (b, L, H)   candidate, no tanh, no h[t-1]
    h[t] = (1 - z[t]) * h[t-1] + z[t] * h~[t],   h[-1] = 0

Neither gate looks at ``h[t-1]``, which is what makes the recurrence a linear scan.
The sigmoid runs inside the kernel (``mingru_logits_fwd/bwd`` take ``linear_z(x)``).
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

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, d_in) -> h (b, L, H)``."""
        x = self._as_input(x)
        z_logit = self.linear_z.forward(x)                               # (b, L, H), z pre-sigmoid
        h_tilde = self.linear_h.forward(x)                               # (b, L, H)
        h = self.kernels.mingru_logits_fwd(z_logit, h_tilde)             # (b, L, H)
        self._cache = (z_logit, h_tilde, h)
        return h

    def backward(self, dh: np.ndarray) -> np.ndarray:
        """``dh (b, L, H) -> dx (b, L, d_in)``; accumulates both linears' grads."""
        dh = np.ascontiguousarray(self._as_input(dh))
        z_logit, h_tilde, h = self._cache
        # dz_logit is already through the sigmoid (dz * z * (1 - z)); (b, L, H) each.
        dz_logit, dh_tilde = self.kernels.mingru_logits_bwd(z_logit, h_tilde, h, dh)
        dx = self.linear_z.backward(dz_logit)
        return dx + self.linear_h.backward(dh_tilde)
