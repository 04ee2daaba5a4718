"""The benchmark harness, shared by ``cli.py bench`` and the pytest-benchmark files in ``bench/``.

* :mod:`bench.harness.cases` - shapes, inputs, train steps, what can run here;
* :mod:`bench.harness.peers` - the PyTorch counterparts;
* :mod:`bench.harness.timing` - interleaved medians;
* :mod:`bench.harness.compile_cost` - compile time in fresh interpreters;
* :mod:`bench.harness.run` - one measurement of everything (:func:`run_benchmarks`);
* :mod:`bench.harness.markdown` - the report as text and Markdown, targets judged;
* :mod:`bench.harness.cli` - the ``bench`` sub-command.

Parity (relative error, tolerances) comes from :mod:`engine.parity`, like the tests'.
The names the benchmark files use are gathered here.
"""
from __future__ import annotations

from bench.harness.cases import (BACKENDS, DTYPES, KERNELS, MODEL_NAMES, SIZES, SMOKE_SIZES,
                                 SMOKE_TRAIN_SIZE, TRAIN_SIZE, Size, build_forecaster, check_train_parity,
                                 make_exp_floor, make_kernel_args, make_optimizer, make_train_data,
                                 make_train_step, numba_available, numba_threads, sizes_for,
                                 torch_available)
from bench.harness.compile_cost import compile_run
from bench.harness.peers import make_torch_gru_pair, make_torch_mamba_pair
from bench.harness.timing import time_median, time_medians
from engine.backend import get_kernels
from engine.parity import assert_parity

__all__ = ["BACKENDS", "DTYPES", "KERNELS", "MODEL_NAMES", "SIZES", "SMOKE_SIZES", "SMOKE_TRAIN_SIZE",
           "TRAIN_SIZE", "Size", "build_forecaster", "check_train_parity", "make_exp_floor",
           "make_kernel_args", "make_optimizer", "make_train_data", "make_train_step", "numba_available",
           "numba_threads", "sizes_for", "torch_available", "compile_run", "make_torch_gru_pair",
           "make_torch_mamba_pair", "time_median", "time_medians", "get_kernels", "assert_parity"]
