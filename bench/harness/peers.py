"""PyTorch counterparts: the CPU code a user would otherwise pick, on the same shapes and weights.

* mambapy's MambaBlock (``pscan=True``, its parallel scan) against our MambaBlock;
* ``torch.nn.GRU`` against our GRULayer.
"""
from __future__ import annotations

import numpy as np

from bench.harness.cases import Size, numba_threads
from models.gru import GRULayer
from models.mamba import MambaBlock

__all__ = ["make_torch_mamba_pair", "make_torch_gru_pair"]


def _torch_setup(dtype):
    import torch

    # The fair comparison gives PyTorch exactly the cores Numba uses.
    torch.set_num_threads(numba_threads())
    return torch, {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]


def make_torch_mamba_pair(size: Size, backend: str, dtype=np.float32, seed: int = 0):
    """mambapy's MambaBlock (parallel scan) and our MambaBlock with the same weights.

    Returns
    -------
    torch_step, ours_step : callable
        Each does one forward + backward of the block (parameter and input gradients)
        and returns ``(out, dx)`` as NumPy arrays.
    """
    torch, tdtype = _torch_setup(dtype)
    from mambapy.mamba import MambaBlock as TorchMambaBlock, MambaConfig

    torch.manual_seed(seed)
    cfg = MambaConfig(d_model=size.d_model, n_layers=1, d_state=size.d_state, pscan=True)
    tblock = TorchMambaBlock(cfg).to(tdtype)
    ours = MambaBlock(size.d_model, d_state=size.d_state, backend=backend, dtype=dtype, seed=seed)
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in tblock.state_dict().items()})
    return _torch_layer_steps(torch, tblock, ours, size, size.d_model, dtype, seed, lambda o: o)


def make_torch_gru_pair(size: Size, backend: str, dtype=np.float32, seed: int = 0):
    """``torch.nn.GRU`` and our GRULayer with the same weights (d_in = H = d_model).

    Returns
    -------
    torch_step, ours_step : callable
        As in :func:`make_torch_mamba_pair`.
    """
    torch, tdtype = _torch_setup(dtype)
    torch.manual_seed(seed)
    H = size.hidden
    tgru = torch.nn.GRU(H, H, batch_first=True).to(tdtype)
    ours = GRULayer(H, H, backend=backend, dtype=dtype, seed=seed)
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in tgru.state_dict().items()})
    return _torch_layer_steps(torch, tgru, ours, size, H, dtype, seed, lambda o: o[0])


def _torch_layer_steps(torch, tmod, ours, size, d_in, dtype, seed, first_output):
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((size.batch, size.seq_len, d_in)).astype(dtype)
    dy = rng.standard_normal((size.batch, size.seq_len, d_in)).astype(dtype)   # both layers keep the width
    tx = torch.from_numpy(x).requires_grad_(True)
    tdy = torch.from_numpy(dy)

    def torch_step():
        tmod.zero_grad(set_to_none=True)
        tx.grad = None
        out = first_output(tmod(tx))
        out.backward(tdy)
        return out.detach().numpy(), tx.grad.numpy()

    def ours_step():
        ours.zero_grad()
        out = ours.forward(x)
        return out, ours.backward(dy)

    return torch_step, ours_step
