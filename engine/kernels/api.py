"""The names every kernel set exports: one list, checked by the tests for both backends.

A kernel is a plain function of arrays. :mod:`engine.kernels.numpy_ref` (the
reference) and :mod:`engine.kernels.numba` (the compiled twins) each define every name
below with the same signature and the same outputs; :func:`engine.backend.get_kernels`
hands out one set or the other.
"""
from __future__ import annotations

#: The three time loops, forward and backward.
TIME_LOOPS = (
    "selective_scan_fwd",
    "selective_scan_bwd",
    "mingru_fwd",
    "mingru_bwd",
    "gru_fwd",
    "gru_bwd",
)
#: The time loops, the convolution, the fused variants and the layer kernels the layers call.
KERNELS = TIME_LOOPS + (
    "causal_conv1d_fwd",
    "causal_conv1d_bwd",
    "selective_scan_gated_fwd",
    "selective_scan_gated_bwd",
    "mingru_logits_fwd",
    "mingru_logits_bwd",
    "causal_conv1d_silu_fwd",
    "causal_conv1d_silu_bwd",
    # The layers' matrix products and normalisation, so that a kernel set owns all of
    # a layer's parallel work.
    "linear_fwd",
    "linear_bwd",
    "rmsnorm_fwd",
    "rmsnorm_bwd",
)
#: Everything a kernel set exports: the kernels, and ``warmup`` (compile ahead of use;
#: a no-op for the reference).
API = KERNELS + ("warmup",)
