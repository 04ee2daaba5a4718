"""The tuning session: from options to a study with more trials and its outputs.

:func:`plan_tune` turns the options into the shared run options and the search space
(checked before anything runs); :func:`run_tune` opens or continues the study, runs the
trials (:mod:`forecast.tune.runner`) and writes the outputs (:mod:`forecast.tune.report`).

Order matters for "bad input writes nothing": every option, the data source, a given
``--storage`` URL and the ``--scheduler`` are checked before the output folder is
created, and a folder this command created is removed again if the default storage
cannot be opened in it.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from forecast.config import RunConfig
from forecast.errors import UserInputError
from forecast.ltsf.protocol import LTSF
from forecast.tune import space as spaces
from forecast.tune.storage import ATTR, DB_FILE

__all__ = ["TUNE_DEFAULTS", "TunePlan", "plan_tune", "run_tune", "make_pruner", "PRUNERS", "default_out",
           "default_study_name"]

#: Options whose default differs for tuning (stock protocol): a trial's budget. Many
#: trials are trained, and pruning cuts the hopeless ones anyway; with early stopping
#: (patience 5) most runs of the stock models end before 15 epochs.
TUNE_DEFAULTS = {"epochs": 15}
#: ``--pruner`` choices: Optuna's median pruner (a trial stops when its best validation
#: loss so far is worse than the median of the completed trials at the same epoch), or none.
PRUNERS = ("median", "none")
#: Completed trials before the median pruner judges anyone, and epochs every trial runs.
MEDIAN_STARTUP_TRIALS, MEDIAN_WARMUP_EPOCHS = 5, 2


@dataclass
class TunePlan:
    """What a tuning session searches: the shared options, the space, the first trial."""

    base: RunConfig           # validated; the first trial's values for the tuned options
    space: dict               # option -> dimension
    start: dict               # the first trial's values of the tuned options

    def searched(self) -> dict:
        """What the study stores and compares when continued (JSON-ready)."""
        base = self.base.to_dict()
        base.pop("out", None)
        return {"model": self.base.model, "protocol": self.base.protocol, "base": base,
                "space": spaces.describe(self.space)}


def plan_tune(typed: dict, config_file: dict | None = None, space_specs=()) -> TunePlan:
    """Shared options, space and first trial from the command line.

    Parameters
    ----------
    typed : dict
        Run options given on the command line (RunConfig fields): fixed, not tuned.
    config_file : dict or None
        Options of ``--config`` (:func:`forecast.config_file.read_config_file`): the
        starting configuration; its tuned options stay tuned.
    space_specs : iterable of str
        ``--space NAME=SPEC`` texts (:func:`forecast.tune.space.narrow`).
    """
    values = {**(config_file or {}), **typed}
    protocol = str(values.get("protocol") or RunConfig.protocol).strip().lower()
    if protocol != LTSF:
        for name, default in TUNE_DEFAULTS.items():
            values.setdefault(name, default)
    values.pop("out", None)
    base = RunConfig(**values).validate()
    space = spaces.without(spaces.default_space(base.model, base.protocol), typed)
    space, fixed = spaces.narrow(space, space_specs, base.model)
    clash = sorted((set(space) | set(fixed)) & set(typed))
    if clash:
        raise UserInputError(f"--space {clash[0]}: the option --{clash[0].replace('_', '-')} given on the "
                             "command line fixes it; give one or the other")
    if fixed:
        base = dataclasses.replace(base, **fixed).validate()
    if not space:
        raise UserInputError("nothing to tune: every option of the search space is fixed")
    spaces.check_space(space, base)
    start = spaces.start_params(space, base)
    return TunePlan(dataclasses.replace(base, **start).validate(), space, start)


def make_pruner(name):
    """An Optuna pruner from ``--pruner`` (or a pruner object, returned as is)."""
    import optuna

    if not isinstance(name, str):
        return name
    if name == "none":
        return None
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS,
                                           n_warmup_steps=MEDIAN_WARMUP_EPOCHS)
    raise UserInputError(f"--pruner: unknown value {name!r}; choose one of {', '.join(PRUNERS)}")


def default_out(base: RunConfig) -> Path:
    """``results/tune-<model>`` (``-ltsf`` under the long-horizon protocol): a fixed name,
    so that the same command continues the same study."""
    return Path("results") / (f"tune-{base.model}" + ("-ltsf" if base.protocol == LTSF else ""))


def default_study_name(base: RunConfig) -> str:
    """``<protocol>-<model>-<data>``, e.g. ``stock-hybrid-sample:AAPL``."""
    return f"{base.protocol}-{base.model}-{base.data}"


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--out {out}: it is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not ((out / DB_FILE).exists() or (out / "tune.json").exists()):
        raise UserInputError(f"--out {out}: the folder holds other files and no tuning study; "
                             "choose another --out")


def _check_data(plan: TunePlan, frame, info) -> None:
    """Build the dataset of every lookback the space can draw: a series too short fails here."""
    from forecast.pipeline import dataset_from_frame

    dim = plan.space.get("seq_len")
    lookbacks = dim.values if isinstance(dim, spaces.Choice) else (
        (dim.low, dim.high) if dim is not None else (plan.base.seq_len,))
    for seq_len in lookbacks:
        dataset_from_frame(dataclasses.replace(plan.base, seq_len=seq_len), frame, info)


def run_tune(plan: TunePlan, trials: int, timeout: float | None = None, scheduler: str | None = None,
             storage: str | None = None, out=None, study_name: str | None = None, pruner="median",
             sampler_seed: int = 0, progress: bool = True) -> dict:
    """Run ``trials`` more trials of the study, then write its outputs.

    Parameters
    ----------
    plan : TunePlan
    trials : int
        Trials to add (at least 1).
    timeout : float or None
        Seconds after which no new trial starts.
    scheduler : str or None
        ``tcp://HOST:PORT`` or ``local[:N]``: trials on Dask workers; None: this process.
    storage : str or None
        An Optuna RDB URL; None: ``<out>/study.db``.
    out : path-like or None
        Output folder (:func:`default_out`).
    study_name : str or None
        (:func:`default_study_name`).
    pruner : {"median", "none"} or optuna.pruners.BasePruner
    sampler_seed : int
        Seeds the TPE sampler (offset by the trials already in the study, so that a
        continued study does not draw its first trials again).
    progress : bool
        One line per finished trial on stderr.

    Returns
    -------
    dict
        The content of ``tune.json`` (see :mod:`forecast.tune.report`), plus ``out``.

    Raises
    ------
    UserInputError
        Bad options, data, storage or scheduler; nothing is written then.
    """
    import optuna

    from forecast.pipeline import load_frame
    from forecast.study.plan import parse_scheduler
    from forecast.tune import report, runner
    from forecast.tune.storage import (check_compatible, connect, default_url, open_study,
                                       remove_new_folder, safe_url)

    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise UserInputError(f"--trials must be at least 1, got {trials}")
    if timeout is not None and not float(timeout) > 0:
        raise UserInputError(f"--timeout must be a positive number of seconds, got {timeout}")
    pruner = make_pruner(pruner)
    kind, workers = parse_scheduler(scheduler)
    out = Path(out) if out is not None else default_out(plan.base)
    _check_out(out)
    frame, info = load_frame(plan.base)
    _check_data(plan, frame, info)
    optuna.logging.set_verbosity(optuna.logging.WARNING)   # the trials have our own progress lines
    store = connect(storage) if storage is not None else None
    executor = runner.make_executor(kind, workers, plan.base.backend, plan.base.dtype)
    started = time.perf_counter()
    with executor:
        cluster_seconds = time.perf_counter() - started
        existed = out.exists()
        if store is None:
            os.makedirs(out, exist_ok=True)
            try:
                store = connect(default_url(out))
            except UserInputError:
                remove_new_folder(out, existed)
                raise
        url = storage if storage is not None else default_url(out)
        name = study_name or default_study_name(plan.base)
        study = open_study(store, name, optuna.samplers.TPESampler(seed=sampler_seed))
        searched = plan.searched()
        try:
            check_compatible(study, searched)
        except UserInputError:
            remove_new_folder(out, existed)
            raise
        earlier = len(study.trials)
        study.sampler = optuna.samplers.TPESampler(seed=sampler_seed + earlier)
        if study.user_attrs.get(ATTR) is None:
            study.set_user_attr(ATTR, searched)
            study.enqueue_trial(plan.start, user_attrs={"start": True})   # the default is trial 0
        if progress:
            print(f"tune: {trials} trial(s) of {plan.base.model} on {plan.base.data} ({plan.base.protocol}), "
                  f"{len(plan.space)} options tuned, {earlier} earlier trial(s); "
                  f"{executor.describe()['executor']}; storage {safe_url(url)}", flush=True, file=sys.stderr)
        done = runner.drive(study, plan.space, plan.base, executor, frame, info, trials, timeout, pruner,
                            progress)
        context = {"storage": safe_url(url), **executor.describe(), "executor start seconds": cluster_seconds,
                   "trials this run": done["trials"], "wall seconds": done["seconds"],
                   "trials per minute": 60.0 * done["trials"] / max(done["seconds"], 1e-9)}
    summary = report.write_outputs(out, study, searched, context)
    return {**summary, "out": str(out)}
