"""Executors: where a study's runs train, and the one loop that collects them.

:func:`execute` loads every source once on the client, hands each run to an executor
as data (configuration + price frame), writes each returned run folder atomically as
it arrives (the client is the only writer, so workers need no shared file system),
shows progress, and carries on past failed runs: a run that fails for a reason of its
own is recorded in the :class:`Outcome` with one line, and every other run finishes.

Two executors share the interface ``with executor: for spec, result, error in
executor.run(tasks)``:

* :class:`forecast.study.local_pool.LocalPool` (the default): ``spawn``-ed worker
  processes on this machine;
* :class:`forecast.study.dask_executor.DaskExecutor`: a Dask distributed cluster
  (``--scheduler tcp://HOST:PORT``, or ``local[:N]`` for a LocalCluster).

Both run :func:`forecast.study.tasks.prepare_worker` once per worker and
:func:`forecast.study.tasks.train_one` per run, so a run's files are the same whichever
executor trained it.

This module stays cheap to import (no NumPy at module level).
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field

from forecast.errors import UserInputError
from forecast.study.local_pool import LocalPool
from forecast.study.tuned import stamp_summary
from forecast.study.workers import Failure, failure_line
from models.names import CLASSICAL

__all__ = ["RUN_COST", "Outcome", "frame_key", "load_sources", "make_executor", "execute"]

#: Relative cost of one epoch per model, so the longest runs start first and the
#: study does not end with one core training alone (the order changes no result).
RUN_COST = {"hybrid": 14.0, "mamba": 13.0, "gru": 1.7, "mingru": 1.0}


def make_executor(plan):
    """The executor ``plan.scheduler`` asks for (Dask is imported only when asked for)."""
    if plan.scheduler is None:
        return LocalPool(plan)
    from forecast.study.dask_executor import DaskExecutor

    return DaskExecutor(plan)


# -- the loop ----------------------------------------------------------------------------

@dataclass
class Outcome:
    """What :func:`execute` did: seconds of every finished run, the reason of every failure."""

    seconds: dict = field(default_factory=dict)      # RunSpec -> seconds in its worker
    failures: dict = field(default_factory=dict)     # RunSpec -> Failure
    executor: dict = field(default_factory=dict)     # the executor's describe()


def frame_key(spec) -> tuple:
    """What a run's loaded source depends on: the protocol, the source and its period.

    Runs with equal keys share one frame; each run still cuts its own windows from it in
    its worker (:func:`forecast.pipeline.dataset_from_frame` with its own ``seq_len``,
    window and scaling options), so runs of one source may differ in those (a tuned
    ``seq_len``) and share the frame.
    """
    config = spec.config
    return (config.get("protocol"), spec.source, config.get("start"), config.get("end"))


def load_sources(runs) -> tuple[dict, dict]:
    """Load every frame the runs need once: ``({frame_key: (frame, info)}, {frame_key: error line})``.

    Each source is read as the first run of its :func:`frame_key` says
    (:func:`forecast.pipeline.load_frame`: a multichannel series under ``--protocol ltsf``,
    a price frame cut to the study's dates otherwise).
    """
    from forecast.pipeline import RunConfig, load_frame

    first = {}
    for spec in runs:
        first.setdefault(frame_key(spec), spec)
    loaded, failed = {}, {}
    for key, spec in first.items():
        try:
            loaded[key] = load_frame(RunConfig.from_dict(spec.config))
        except Exception as exc:   # a bad source fails its runs, not the study
            failed[key] = Failure.of(exc)
    return loaded, failed


def _cost(spec) -> float:
    """Expected training time of a run, up to a constant (longest runs go first).

    A classical baseline is fitted once, not trained for epochs: it costs a few seconds
    whatever the budget, so it goes last and fills the cores the trained runs leave idle.
    """
    if spec.model in CLASSICAL:
        return 0.0
    seq_len = int(spec.config.get("seq_len") or spec.seq_len)    # a tuned run's own window
    return (RUN_COST.get(spec.model, 10.0) * seq_len * int(spec.config.get("epochs", 1))
            * (1 + (spec.horizon or 0) / 100))


def execute(plan, runs=None, progress=True, executor=None) -> Outcome:
    """Train ``runs`` (default: all of the plan) and write their folders as they finish.

    Parameters
    ----------
    plan : StudyPlan
    runs : list of RunSpec, optional
    progress : bool
        A progress bar and one line per finished or failed run, on stderr.
    executor : optional
        An executor already entered (``with executor:``) by the caller; default: a
        :func:`make_executor` ``(plan)`` started and closed here.

    Returns
    -------
    Outcome
        Failed runs are listed there, not raised: the other runs still finish.

    Raises
    ------
    UserInputError
        When the executor cannot run anything (an unreachable scheduler, workers with
        another version of the project); nothing is written then.
    """
    from forecast.pipeline import write_run_files

    runs = sorted(plan.runs if runs is None else runs, key=_cost, reverse=True)
    outcome = Outcome()
    if not runs:
        return outcome
    sources, bad = load_sources(runs)
    owned = executor is None
    executor = make_executor(plan) if owned else executor
    tasks = []
    for spec in runs:
        key = frame_key(spec)
        if key in bad:
            outcome.failures[spec] = bad[key]
        else:
            frame, info = sources[key]
            tasks.append((spec, {"config": spec.config, "frame": frame, "info": info,
                                 "threads": executor.threads}))
    bar = _progress_bar(len(runs), progress)
    try:
        for spec, message in outcome.failures.items():
            _report(bar, spec, f"FAILED: {message}")
        if tasks:
            with executor if owned else contextlib.nullcontext():
                for spec, result, error in executor.run(tasks):
                    _collect(outcome, bar, spec, result, error, write_run_files)
                outcome.executor = executor.describe()
    finally:
        bar.close()
    return outcome


def _collect(outcome: Outcome, bar, spec, result, error, write) -> None:
    """Write a finished run's folder (the client is the only writer) or record its failure.

    A tuned run's ``summary.json`` gets its record here (:func:`forecast.study.tuned.stamp_summary`):
    the worker trains from the configuration alone and need not know where it came from.
    """
    if error is None:
        try:
            write(spec.run_dir, stamp_summary(result["files"], spec.tuned))
        except (OSError, UserInputError) as exc:
            error = Failure(f"writing {spec.run_dir}: {failure_line(exc)}")
    if error is None:
        outcome.seconds[spec] = result["seconds"]
        _report(bar, spec, f"{result['brief']} in {result['seconds']:.1f} s")
    else:
        outcome.failures[spec] = error
        _report(bar, spec, f"FAILED: {error}")


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="runs", unit="run", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True, leave=False)


def _report(bar, spec, text: str) -> None:
    """Advance the bar and print one line above it (nothing when progress is off)."""
    bar.update(1)
    if not bar.disable:
        bar.write(f"[{bar.n:>{len(str(bar.total))}}/{bar.total}] {spec.label}: {text}", file=sys.stderr)
