"""Classic GRU layer with the equations, gate order and parameter names of ``torch.nn.GRU``.

For an input ``x (b, L, d_in)`` and hidden size ``H``::

    gi = x @ weight_ih_l0.T + bias_ih_l0                      (b, L, 3H), all steps at once
    gh = h[t-1] @ weight_hh_l0.T + bias_hh_l0                 (b, 3H), inside the time loop
    r = sigmoid(gi_r + gh_r);  z = sigmoid(gi_z + gh_z)
    n = tanh(gi_n + r * gh_n)
    h[t] = (1 - z) * n + z * h[t-1],   h[-1] = 0

The time loop (everything that touches ``h[t-1]``) lives in the kernels.
"""
from __future__ import annotations

import numpy as np

from engine.module import Module


class GRULayer(Module):
    """One GRU layer returning every hidden state, ``(b, L, d_in) -> (b, L, H)``.

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
    Keys ``weight_ih_l0 (3H, d_in)``, ``weight_hh_l0 (3H, H)``, ``bias_ih_l0 (3H,)``,
    ``bias_hh_l0 (3H,)``, rows in gate order r, z, n, all ``U(-1/sqrt(H), 1/sqrt(H))`` as
    in PyTorch, so ``torch.nn.GRU(d_in, H, batch_first=True).load_state_dict`` accepts them.
    """

    def __init__(self, d_in: int, d_hidden: int, backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(backend=backend, dtype=dtype, seed=seed)
        self.d_in = int(d_in)
        self.d_hidden = int(d_hidden)
        H = self.d_hidden
        bound = 1 / np.sqrt(H)
        rng = self.rng()
        self.add_param("weight_ih_l0", rng.uniform(-bound, bound, (3 * H, self.d_in)))
        self.add_param("weight_hh_l0", rng.uniform(-bound, bound, (3 * H, H)))
        self.add_param("bias_ih_l0", rng.uniform(-bound, bound, 3 * H))
        self.add_param("bias_hh_l0", rng.uniform(-bound, bound, 3 * H))
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, d_in) -> h (b, L, H)``."""
        x = self._as_input(x)
        b, L, _ = x.shape
        x2 = x.reshape(-1, self.d_in)                                    # (bL, d_in)
        # All input projections at once, outside the time loop.
        gi = self.kernels.linear_fwd(x2, self.p("weight_ih_l0"), self.p("bias_ih_l0"))
        gi = gi.reshape(b, L, 3 * self.d_hidden)                         # (b, L, 3H)
        h, gates = self.kernels.gru_fwd(gi, self.p("weight_hh_l0"), self.p("bias_hh_l0"))
        self._cache = (x2, gi, h, gates)
        return h

    def backward(self, dh: np.ndarray) -> np.ndarray:
        """``dh (b, L, H) -> dx (b, L, d_in)``; accumulates all four parameter grads."""
        dh = np.ascontiguousarray(self._as_input(dh))
        x2, gi, h, gates = self._cache
        dgi, dW_hh, db_hh = self.kernels.gru_bwd(
            gi, self.p("weight_hh_l0"), self.p("bias_hh_l0"), h, gates, dh)   # dgi (b, L, 3H)
        self.g("weight_hh_l0")[...] += dW_hh
        self.g("bias_hh_l0")[...] += db_hh
        dx, dW_ih, db_ih = self.kernels.linear_bwd(x2, self.p("weight_ih_l0"),
                                                   dgi.reshape(-1, 3 * self.d_hidden))
        self.g("weight_ih_l0")[...] += dW_ih
        self.g("bias_ih_l0")[...] += db_ih
        return dx.reshape(dh.shape[:-1] + (self.d_in,))                  # (b, L, d_in)
