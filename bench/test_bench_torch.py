"""Against PyTorch: the CPU code a user would otherwise pick, same shapes, dtype and threads.

* mambapy's MambaBlock (``pscan=True``, its parallel scan) against our MambaBlock;
* ``torch.nn.GRU`` against our GRULayer;

both forward + backward (input and parameter gradients), float32, batch 64, seq_len 60,
d_model 64 (tiny in a smoke run). PyTorch gets ``torch.set_num_threads`` equal to
Numba's thread count. Our layers load the PyTorch weights, and outputs and input
gradients are checked to agree before anything is timed. Skipped without torch/mambapy.
"""
from __future__ import annotations

import numpy as np
import pytest

from bench import harness as B

PAIRS = {
    "MambaBlock": B.make_torch_mamba_pair,
    "GRULayer": B.make_torch_gru_pair,
}
DTYPE = np.dtype(np.float32)


@pytest.fixture(scope="module")
def torch_ok():
    ok, why = B.torch_available()
    if not ok:
        pytest.skip(why)


@pytest.mark.parametrize("impl", ["torch", "ours numpy", "ours numba"])
@pytest.mark.parametrize("layer", list(PAIRS))
def test_layer_vs_torch(benchmark, record, torch_ok, kernel_sets, layer, impl, train_size):
    """Forward + backward of one layer implementation, after a parity check with the other."""
    backend = "numba" if impl == "torch" else impl.split()[1]
    torch_step, ours_step = PAIRS[layer](train_size, backend, DTYPE)
    err = B.assert_parity(ours_step(), torch_step(), DTYPE, f"{layer} ({backend}) vs PyTorch")

    group = f"torch-vs-ours {layer} {DTYPE.name}"
    benchmark.group = group
    benchmark.extra_info.update({"layer": layer, "impl": impl, "dtype": DTYPE.name,
                                 "threads": B.numba_threads(), "parity_rel_err": err})
    benchmark(torch_step if impl == "torch" else ours_step)
    record.add(benchmark, group, impl)
