"""The benchmark harness, shared by ``cli.py bench`` and the pytest-benchmark files in ``bench/``.

* :mod:`bench.harness.sizes` - shapes (importable without the engine);
* :mod:`bench.harness.cases` - kernel inputs, train steps, what can run here;
* :mod:`bench.harness.peers` - the PyTorch peers of our layers;
* :mod:`bench.harness.floor` - a train step's machine floor, read from the model;
* :mod:`bench.harness.worker` - the process that hosts one implementation (and the
  stand-alone command that reproduces a published figure);
* :mod:`bench.harness.protocol`, :mod:`bench.harness.client` - talking to workers;
* :mod:`bench.harness.timing` - interleaved medians, in this process or across workers;
* :mod:`bench.harness.layers`, :mod:`bench.harness.steps` - the layer pairs and the
  train steps, each implementation in its own process;
* :mod:`bench.harness.torch_models`, :mod:`bench.harness.wholemodel` - the forecasters
  assembled in PyTorch from the peers, and whole models against them;
* :mod:`bench.harness.longseq` - the layer pairs at L = 256 to 16,384: time and memory per step;
* :mod:`bench.harness.wholeprocess`, :mod:`bench.harness.compile_cost`,
  :mod:`bench.harness.study_rate` - whole ``cli.py`` runs, compile cost, study throughput;
* :mod:`bench.harness.run` - one measurement of everything (:func:`run_benchmarks`);
* :mod:`bench.harness.targets`, :mod:`bench.harness.markdown` - targets judged, the report;
* :mod:`bench.harness.cli` - the ``bench`` sub-command.

Parity (relative error, tolerances) comes from :mod:`engine.parity`, like the tests'.

The names the benchmark files use are gathered here, and imported on first use: a
worker process runs ``python -m bench.harness.worker``, which imports this package,
and a worker hosting a PyTorch peer must not load the engine (nor Numba) with it.
"""
from __future__ import annotations

import importlib

_HOMES = {
    "bench.harness.sizes": ("Size", "SIZES", "SMOKE_SIZES", "TRAIN_SIZE", "SMOKE_TRAIN_SIZE", "CLI_TRAIN_SIZE",
                            "SMOKE_CLI_TRAIN_SIZE", "DTYPES", "sizes_for", "train_sizes_for"),
    "bench.harness.cases": ("BACKENDS", "KERNELS", "MODEL_NAMES", "make_exp_floor", "make_kernel_args",
                            "numba_available", "peer_available", "numba_threads"),
    "bench.harness.compile_cost": ("compile_run",),
    "bench.harness.client": ("Worker", "WorkerPool"),
    "bench.harness.layers": ("PAIRS", "IMPLS", "impl_spec", "pair_reference", "check_layer_parity", "start_impl"),
    "bench.harness.specs": ("layer_spec", "train_spec", "floor_spec", "model_spec", "command_for"),
    "bench.harness.steps": ("train_cases", "train_reference", "check_train_parity", "start_step", "start_floor"),
    "bench.harness.wholemodel": ("MODEL_IMPLS", "model_reference", "start_model", "impl_model_spec",
                                 "model_peer_available"),
    "bench.harness.timing": ("time_median", "time_medians", "time_workers", "benchmark_worker"),
    "bench.harness.wholeprocess": ("E2E_ARGS", "README_ARGS", "train_command", "run_train_process",
                                   "measure_train_process", "train_end_to_end", "readme_runs", "compile_wait"),
    "engine.backend": ("get_kernels",),
    "engine.parity": ("assert_parity",),
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'bench.harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
