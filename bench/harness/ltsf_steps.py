"""The long-horizon workload (issue 19, item 2): section ``ltsf`` of ``cli.py bench``.

The long-horizon forecaster (:class:`models.longhorizon.LongHorizonForecaster` at the
protocol's settings: RevIN, segments of 12, linear path, hidden 64, one layer, batch 64)
against the same model assembled in PyTorch (:mod:`bench.harness.torch_ltsf`), for the
four encoders, in two workloads:

* **train step** rows (:data:`bench.harness.ltsf_data.STEP_SHAPES`): lookback 96, 336 and
  720 x horizon 96 and 720, 7 channels, channel-independent, plus the channel-mixing
  layout at lookback 96; float32 (the protocol's dtype), plus float64 at the protocol's
  own shape (96 -> 96, independent). One step = forward, MSE, backward, Adam on a random
  batch;
* **epoch** rows: one epoch of ETTh1's training windows at the protocol's shape, float32,
  every window once in a fixed shuffled order, one train step per mini-batch, the same
  batches on both sides (:mod:`bench.harness.ltsf_data`). The timed unit is the whole
  epoch.

Each row goes as a row of :mod:`bench.harness.wholemodel` does (its functions, given the
long-horizon spec builder): a float64 reference (the PyTorch model in float64 and our
NumPy-backend model on its weights, which must agree; on the step's batch, or on the
epoch's first batch), then ours (numba), PyTorch eager and ``torch.compile`` (compile
wait reported apart), each in a fresh worker, checked against the reference, taking
turns. The ratio is the better PyTorch variant's time over ours.
"""
from __future__ import annotations

import functools

import numpy as np

from bench.harness.ltsf_data import EPOCH_SHAPE, SMOKE_EPOCH_SHAPE, SMOKE_STEP_SHAPES, STEP_SHAPES, LtsfShape
from bench.harness.specs import ltsf_spec

__all__ = ["LTSF_TIMERS", "ltsf_rows", "ltsf_reference", "run_ltsf"]

#: ``time_workers`` settings of this section per mode, apart from the other sections':
#: 36 step rows and 4 epochs, each implementation in a fresh worker and ``torch.compile``
#: compiling every row (10 to 20 s), took 2 minutes a row at :data:`run.WORKER_TIMERS`'s
#: settings (an hour and more in all). Here no probe and two rounds: each turn is one untimed
#: step (the pools wake up) then one timed step, the contenders alternating. The PyTorch
#: variants' steps are 0.1 to 5 s, 5-50x ours, so a ratio keeps its first digit; ours is the
#: noisier side (tens of ms after an untimed step, not a 0.2 s burst). An epoch is a loop
#: of 100+ steps: no untimed step before it (its first batch wakes the pools), one epoch
#: per turn.
LTSF_TIMERS = {
    "full": {"step": dict(min_rounds=2, probe=False), "epoch": dict(min_rounds=2, probe=False, warmup=0)},
    "quick": {"step": dict(min_rounds=2, probe=False), "epoch": dict(min_rounds=1, probe=False, warmup=0)},
    "smoke": {"step": dict(min_rounds=1, probe=False), "epoch": dict(min_rounds=1, probe=False, warmup=0)},
}


def ltsf_rows(mode: str) -> list[tuple[str, LtsfShape, str]]:
    """``(workload, shape, dtype)`` of every row of one model, in the order they run.

    Full: every step shape in float32, the protocol's step shape in float64, the epoch.
    Quick: the step shapes at both ends (96 -> 96, 720 -> 720) and mixed 96 -> 96, float32,
    then the epoch. Smoke: the tiny shapes, both dtypes on the first.
    """
    if mode == "smoke":
        steps = [(s, "float32") for s in SMOKE_STEP_SHAPES] + [(SMOKE_STEP_SHAPES[0], "float64")]
        return [("step", s, d) for s, d in steps] + [("epoch", SMOKE_EPOCH_SHAPE, "float32")]
    shapes = STEP_SHAPES
    if mode == "quick":
        shapes = tuple(s for s in STEP_SHAPES if (s.lookback, s.horizon) in ((96, 96), (720, 720)))
    steps = [(s, "float32") for s in shapes] + [(STEP_SHAPES[0], "float64")]
    return [("step", s, d) for s, d in steps] + [("epoch", EPOCH_SHAPE, "float32")]


def spec_builder(workload: str):
    """:func:`bench.harness.specs.ltsf_spec` for ``workload``, with :func:`model_spec`'s signature."""
    return functools.partial(ltsf_spec, workload=workload)


def ltsf_reference(pool, model: str, dtype, shape: LtsfShape, workload: str = "step", threads: int | None = None):
    """The float64 reference of one row (:func:`bench.harness.wholemodel.model_reference`)."""
    from bench.harness.wholemodel import model_reference

    return model_reference(pool, model, dtype, shape, threads, spec=spec_builder(workload))


def run_ltsf(report, pool, mode: str, log, impls=None) -> None:
    """The ``ltsf`` section: one row per model, workload, shape and dtype in ``report.ltsf``.

    Parameters
    ----------
    report : bench.harness.run.Report
    pool : bench.harness.client.WorkerPool
    mode : {"full", "quick", "smoke"}
        Rows (:func:`ltsf_rows`) and timers (:data:`LTSF_TIMERS`).
    log : callable
    impls : tuple of str, optional
        Which of :data:`bench.harness.wholemodel.MODEL_IMPLS` to time (default all).
    """
    from bench.harness.cases import MODEL_NAMES, numba_available, with_peers
    from bench.harness.peers import default_threads
    from bench.harness.protocol import WorkerError
    from bench.harness.torch_models import MODEL_PEERS
    from bench.harness.wholemodel import MODEL_IMPLS, model_peer_available, row_summary, time_model_row

    impls = impls or MODEL_IMPLS
    has_numba, why = numba_available()
    if not has_numba:
        report.skipped.append(f"long-horizon workload: {why}")
        return
    threads = default_threads()
    for model in with_peers(report, log, MODEL_NAMES, model_peer_available):
        for workload, shape, dtype in ltsf_rows(mode):
            try:
                ref = ltsf_reference(pool, model, np.dtype(dtype), shape, workload, threads)
            except WorkerError as exc:
                if exc.kind != "import":
                    raise
                report.skipped.append(f"{model} long-horizon model in PyTorch: {str(exc).splitlines()[-1]}")
                break
            row = {"model": model, "workload": workload, "dtype": dtype, "lookback": shape.lookback,
                   "horizon": shape.horizon, "layout": shape.layout, "shape_name": shape.name,
                   "shape": shape.label(), "peer_impl": MODEL_PEERS[model]}
            if workload == "epoch":
                row.update(ref.peer_info.get("epoch", {}))
            row.update(time_model_row(pool, model, np.dtype(dtype), shape, ref, threads,
                                      LTSF_TIMERS[mode][workload], impls, spec=spec_builder(workload)))
            report.ltsf.append(row)
            log(f"ltsf {model} {workload} L={shape.lookback} H={shape.horizon} {shape.layout} {dtype}: "
                + row_summary(row))
