"""Kernel benchmarks: every time-loop kernel, NumPy reference beside Numba.

One group per kernel family, size and dtype, so each NumPy/Numba pair prints in one
table. The selective-scan groups also hold the exp floor: one ``np.exp`` over
``b * L * d_inner * d_state`` values, the work no scan can avoid. Before timing, each
benchmark checks its output against the other backend's (float64: 1e-10, float32:
1e-4, relative to the largest reference value).
"""
from __future__ import annotations

import numpy as np
import pytest

from bench import harness as B

DTYPES = [np.dtype(np.float64), np.dtype(np.float32)]
DTYPE_IDS = [d.name for d in DTYPES]


def family(kernel: str) -> str:
    """``selective_scan_fwd`` -> ``selective_scan``: forward and backward share a group."""
    return kernel.rsplit("_", 1)[0]


def group_name(kernel: str, size, dtype) -> str:
    return f"{family(kernel)} {size.name} {np.dtype(dtype).name}"


def kernel_args(cache, kernel, size, dtype):
    key = ("args", kernel, size, dtype.name)
    if key not in cache:
        cache[key] = B.make_kernel_args(kernel, size, dtype)
    return cache[key]


def kernel_output(cache, kernel_sets, backend, kernel, size, dtype):
    key = ("out", backend, kernel, size, dtype.name)
    if key not in cache:
        cache[key] = getattr(kernel_sets[backend], kernel)(*kernel_args(cache, kernel, size, dtype))
    return cache[key]


def exp_floor_seconds(cache, size, dtype) -> float:
    """A quick median of the exp floor, so a scan's floor fraction never depends on test order."""
    key = ("floor", size, dtype.name)
    if key not in cache:
        cache[key] = B.time_median(B.make_exp_floor(size, dtype), budget=0.1, min_samples=5).median
    return cache[key]


@pytest.mark.parametrize("backend", B.BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("kernel", B.KERNELS)
def test_kernel(benchmark, record, kernel_sets, session_cache, kernel, size, dtype, backend):
    """Time one kernel on one backend after checking it against the other backend."""
    other = "numba" if backend == "numpy" else "numpy"
    got = kernel_output(session_cache, kernel_sets, backend, kernel, size, dtype)
    expected = kernel_output(session_cache, kernel_sets, other, kernel, size, dtype)
    err = B.assert_parity(got, expected, dtype, f"{kernel} {size.name} {dtype.name}: {backend} vs {other}")

    group = group_name(kernel, size, dtype)
    label = f"{kernel.rsplit('_', 1)[1]} {backend}"
    benchmark.group = group
    benchmark.extra_info.update({"kernel": kernel, "backend": backend, "size": size.label(kernel),
                                 "dtype": dtype.name, "parity_rel_err": err})
    args = kernel_args(session_cache, kernel, size, dtype)
    benchmark(getattr(kernel_sets[backend], kernel), *args)

    median = record.add(benchmark, group, label)
    if median and kernel.startswith("selective_scan"):
        floor = exp_floor_seconds(session_cache, size, dtype)
        benchmark.extra_info["exp_floor_s"] = floor
        benchmark.extra_info["floor_fraction"] = floor / median


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_exp_floor(benchmark, record, size, dtype):
    """The floor of the scan kernels: ``np.exp`` over b x L x d_inner x d_state values."""
    fn = B.make_exp_floor(size, dtype)
    group = group_name("selective_scan_fwd", size, dtype)
    benchmark.group = group
    benchmark.extra_info.update({"elements": size.batch * size.seq_len * size.d_inner * size.d_state,
                                 "size": size.label("exp_floor"), "dtype": dtype.name})
    out = benchmark(fn)
    assert np.all(out > 0)
    median = record.add(benchmark, group, "exp floor")
    if median:
        record.floor[group] = median
