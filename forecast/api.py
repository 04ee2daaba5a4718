"""The Python API: every command of ``cli.py`` as a function, results as pandas objects.

The command line is argument parsing over these functions; a notebook calls them with
the same options as keyword arguments (``--batch-size 32`` is ``batch_size=32``; a list
option takes a list or the command line's comma-separated text)::

    from forecast import api

    run = api.train(model="hybrid", data="sample:IBM", epochs=5)
    run.metrics                     # metric x forecast (model, naive, drift)
    run.predictions.tail()          # date, actual, predicted, naive, lower, upper
    model = api.load(run.checkpoint)
    model.predict(steps=5)          # date, step, forecast, lower, upper
    study = api.compare(data=["sample:IBM", "sample:MSFT"], models=["mingru", "hybrid", "arima"], seeds=2)
    study.summary                   # one row per source x model

Bad arguments raise :class:`forecast.errors.UserInputError` (a ``ValueError``-like
exception whose message is one line saying what to do): an unknown option name (with
the closest known one), an impossible value, a missing file. Nothing is printed unless
``progress=True``.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from forecast.errors import UserInputError

__all__ = ["run_config", "train", "Run", "load", "Model", "evaluate", "Evaluation", "predict", "backtest",
           "Backtest", "compare", "Study"]


# -- options ---------------------------------------------------------------------------------

def _unknown(names, known, what: str) -> None:
    """Refuse option names not in ``known``, suggesting the closest."""
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserInputError(f"{what}: unknown option {name!r}{hint}")


def run_config(config=None, **options):
    """A validated :class:`forecast.config.RunConfig` from keyword options.

    Parameters
    ----------
    config : RunConfig, dict or path-like, optional
        Options to start from: a RunConfig, a dict of its fields, or a JSON file such as
        the ``best.json`` of ``tune`` (what ``--config FILE`` reads).
    **options
        RunConfig fields (the ``train`` options, ``_`` for ``-``); they override ``config``.

    Raises
    ------
    UserInputError
        An unknown option or an impossible value.
    """
    from forecast.config import RunConfig
    from forecast.config_file import train_defaults

    fields = {f.name for f in dataclasses.fields(RunConfig)}
    _unknown(options, fields, "train")
    base: dict = {}
    if isinstance(config, RunConfig):
        base = config.to_dict()
    elif isinstance(config, dict):
        _unknown(config, fields, "config")
        base = dict(config)
    elif config is not None:
        base = train_defaults(os.fspath(config))
    return RunConfig(**{**base, **options}).validate()


# -- train -----------------------------------------------------------------------------------

def _metric_frame(metrics: dict) -> pd.DataFrame:
    """metric x forecast from a ``metrics.json`` object (stock: model / naive / drift;
    ``--protocol ltsf``: model / repeat / linear)."""
    if metrics.get("protocol") == "ltsf":
        columns = {"model": metrics["test"], "repeat": metrics["repeat"], "linear": metrics["linear"]}
    else:
        columns = {"model": metrics["test"], "naive": metrics["naive"], "drift": metrics["drift"]}
    frame = pd.DataFrame(columns)
    return frame.apply(pd.to_numeric)     # null (undefined) becomes NaN


def _read_table(path: Path) -> pd.DataFrame | None:
    return pd.read_csv(path) if path.exists() else None


@dataclass
class Run:
    """A finished training run (what ``cli.py train`` writes).

    Attributes
    ----------
    metrics : pandas.DataFrame
        Metric x forecast on the test part (stock: ``model``, ``naive``, ``drift`` in price
        units, with interval ``coverage`` and ``interval_width``; ltsf: ``model``,
        ``repeat``, ``linear`` MSE and MAE on the standardised scale).
    predictions : pandas.DataFrame or None
        ``predictions.csv`` (stock runs); None for ltsf runs (their per-window losses are
        in ``window_losses.csv``) or when nothing was written.
    history : pandas.DataFrame
        One row per epoch.
    config : dict
        The run's options (RunConfig fields).
    out_dir : str or None
        The run folder; None with ``write=False``.
    raw : dict
        Everything :func:`forecast.pipeline.run_training` returned.
    """

    metrics: pd.DataFrame
    predictions: pd.DataFrame | None
    history: pd.DataFrame
    config: dict
    out_dir: str | None
    raw: dict = field(repr=False)

    @property
    def checkpoint(self) -> str | None:
        """Path of the run's ``checkpoint.npz`` (None when nothing was written)."""
        return None if self.out_dir is None else os.path.join(self.out_dir, "checkpoint.npz")

    def load(self) -> "Model":
        """The trained model (:func:`load` of :attr:`checkpoint`)."""
        if self.checkpoint is None:
            raise UserInputError("this run was not written (write=False): there is no checkpoint to load")
        return load(self.checkpoint)


def train(config=None, *, resume: bool = False, progress: bool = False, write: bool = True, **options) -> Run:
    """Train one model and evaluate it on the test part (``cli.py train``).

    Parameters
    ----------
    config : RunConfig, dict or path-like, optional
        Options to start from (see :func:`run_config`).
    resume : bool
        Continue the interrupted run of ``out=DIR``; options given must equal the run's.
    progress : bool
        Progress bar on stderr.
    write : bool
        False: keep everything in memory, write no run folder.
    **options
        The ``train`` options (RunConfig fields), e.g. ``model="hybrid"``, ``epochs=5``.

    Returns
    -------
    Run
    """
    from forecast.pipeline import run_training

    if resume:
        from forecast.config import RunConfig
        from forecast.resume import resume_config

        _unknown(options, {f.name for f in dataclasses.fields(RunConfig)}, "train")
        if not options.get("out"):
            raise UserInputError("resume needs out=DIR, the folder of the interrupted run")
        cfg = resume_config(options["out"], {k: v for k, v in options.items() if k != "out"})
    else:
        cfg = run_config(config, **options)
    raw = run_training(cfg, progress=progress, resume=resume, write=write)
    out = raw.get("out_dir")
    predictions = _read_table(Path(out) / "predictions.csv") if out else None
    return Run(_metric_frame(raw["metrics"]), predictions, pd.DataFrame(raw["history"]), raw["config"], out, raw)


# -- a saved model ---------------------------------------------------------------------------

@dataclass
class Evaluation:
    """Metrics of a saved model on one part of some data (``cli.py evaluate``)."""

    metrics: pd.DataFrame
    predictions: pd.DataFrame | None
    part: str
    raw: dict = field(repr=False)


def evaluate(checkpoint, *, data: str | None = None, start=None, end=None, part: str = "test",
             backend: str | None = None) -> Evaluation:
    """Re-evaluate a saved model, on its own data or another source (``cli.py evaluate``).

    Returns
    -------
    Evaluation
        ``metrics`` (metric x forecast), ``predictions`` (stock runs), ``part``.
    """
    from forecast.pipeline import evaluate_checkpoint

    raw = evaluate_checkpoint(os.fspath(checkpoint), data=data, start=start, end=end, part=part, backend=backend)
    return Evaluation(_metric_frame(raw["metrics"]), raw.get("predictions"), raw["part"], raw)


def predict(checkpoint, *, data: str | None = None, steps: int | None = None, level: float | None = None,
            interval: str | None = None, calendar: str | None = None, backend: str | None = None,
            refresh: bool = True) -> pd.DataFrame:
    """Forecast the periods after the data's last row (``cli.py predict``).

    Returns
    -------
    pandas.DataFrame
        ``date, step, forecast, lower, upper``; ``.attrs`` holds how the forecasts and
        their intervals were made (see :class:`forecast.predict.Prediction`).
    """
    from forecast.predict import predict_checkpoint

    result = predict_checkpoint(os.fspath(checkpoint), data=data, steps=steps, level=level, method=interval,
                                backend=backend, calendar=calendar, refresh=refresh)
    table = result.table.copy()
    table.attrs.update(result.info)
    return table


class Model:
    """A trained model loaded from its ``checkpoint.npz``: evaluate it, forecast with it."""

    def __init__(self, checkpoint):
        from forecast.checkpoint import load_checkpoint

        self.checkpoint = os.fspath(checkpoint)
        _, meta = load_checkpoint(self.checkpoint)      # fails here, clearly, on a bad file
        #: The run's options (RunConfig fields).
        self.config = dict(meta.get("run_config", {}))

    def __repr__(self) -> str:
        return f"Model({self.config.get('model')!r} on {self.config.get('data')!r}, {self.checkpoint!r})"

    def evaluate(self, **kwargs) -> Evaluation:
        """:func:`evaluate` of this model (same keyword arguments)."""
        return evaluate(self.checkpoint, **kwargs)

    def predict(self, **kwargs) -> pd.DataFrame:
        """:func:`predict` with this model (same keyword arguments)."""
        return predict(self.checkpoint, **kwargs)


def load(checkpoint) -> Model:
    """Load a trained model from a ``checkpoint.npz`` (``allow_pickle=False``)."""
    return Model(checkpoint)


# -- backtest --------------------------------------------------------------------------------

@dataclass
class Backtest:
    """A walk-forward backtest (``cli.py backtest``).

    Attributes
    ----------
    overall : pandas.DataFrame
        Metric x forecast over all folds.
    folds : pandas.DataFrame
        One row per fold: dates, windows, the model's and naive's MAE and the coverage.
    tests : pandas.DataFrame
        Diebold-Mariano tests against naive and drift, per step.
    predictions : pandas.DataFrame
    out_dir : str or None
    raw : dict
    """

    overall: pd.DataFrame
    folds: pd.DataFrame
    tests: pd.DataFrame
    predictions: pd.DataFrame
    out_dir: str | None
    raw: dict = field(repr=False)


def backtest(config=None, *, folds: int = 5, refit: str = "full", finetune_epochs: int | None = None,
             progress: bool = False, write: bool = True, **options) -> Backtest:
    """Walk-forward backtest: retrain before each fold of the test part (``cli.py backtest``).

    Parameters
    ----------
    config : RunConfig, dict or path-like, optional
    folds : int
    refit : {"full", "finetune"}
    finetune_epochs : int, optional
    progress, write : bool
    **options
        The ``train`` options; ``model`` may also be ``arima``, ``ets`` or ``theta``.
    """
    from forecast.backtest import DEFAULT_FINETUNE_EPOCHS, run_backtest

    cfg = run_config(config, **options)
    raw = run_backtest(cfg, folds=folds, refit=refit,
                       finetune_epochs=DEFAULT_FINETUNE_EPOCHS if finetune_epochs is None else finetune_epochs,
                       progress=progress, write=write)
    rows = []
    for f in raw["folds"]:
        m = f["metrics"]
        rows.append({"fold": f["fold"], "first_date": f["first_date"], "last_date": f["last_date"],
                     "windows": f["windows"], "mae": m["model"]["mae"], "naive_mae": m["naive"]["mae"],
                     "rel_mae": m["model"]["rel_mae"], "coverage": m["model"].get("coverage")})
    overall = pd.DataFrame({k: raw["overall"][k] for k in ("model", "naive", "drift")}).apply(pd.to_numeric)
    return Backtest(overall, pd.DataFrame(rows), pd.DataFrame(raw["tests"]), raw["predictions"],
                    raw.get("out_dir"), raw)


# -- compare ---------------------------------------------------------------------------------

@dataclass
class Study:
    """A comparison of models over seeds and sources (``cli.py compare``).

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per (source,) model: the means and spreads over seeds of the test metrics
        (``summary.csv``; the long-horizon protocol: ``benchmark.csv``).
    report : str or None
        Path of ``report.md`` (``benchmark.md``).
    out_dir : str
    failures : dict
        ``{run label: error}`` of runs that failed (empty when all finished).
    """

    summary: pd.DataFrame | None
    report: str | None
    out_dir: str
    failures: dict


def _summary_table(out: Path) -> pd.DataFrame | None:
    for name in ("benchmark.csv", "summary.csv"):
        if (out / name).exists():
            return pd.read_csv(out / name)
    frames = [pd.read_csv(p).assign(source=p.parent.name) for p in sorted(out.glob("sources/*/summary.csv"))]
    return pd.concat(frames, ignore_index=True) if frames else None


def _listed(value):
    """A list option as the command line's comma-separated text (what plan_study parses)."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return value


def compare(config=None, *, models=None, data=None, seeds=None, seq_lens=None, horizons=None, jobs=None,
            scheduler=None, out: str = "results/compare", tuned=None, force: bool = False, resume: bool = False,
            progress: bool = False, **options) -> Study:
    """Compare models over seeds (and sources) with significance tests (``cli.py compare``).

    Parameters
    ----------
    config : dict or path-like, optional
        Shared run options to start from (e.g. a ``best.json``).
    models, data, seeds, seq_lens, horizons : list or str, optional
        As the options of the same names (``seeds``: a count or a list).
    jobs, scheduler, out, tuned, force, resume
        As the options of the same names.
    progress : bool
        Progress on stderr.
    **options
        Training options shared by every run (RunConfig fields but model, data, seed, out).

    Returns
    -------
    Study
    """
    from forecast.config_file import compare_defaults
    from forecast.study.compare import run_study
    from forecast.study.plan import DEFAULT_SEEDS, plan_study, shared_fields
    from models.names import STUDY_ORDER

    shared = set(shared_fields())
    if "seq_len" in options:        # as on the command line, --seq-len is --seq-lens with one value
        if seq_lens is not None:
            raise UserInputError("compare: give seq_lens (several) or seq_len (one), not both")
        seq_lens = options.pop("seq_len")
    _unknown(options, shared, "compare")
    if config is not None:
        # As --config: the file's per-run options (model, seed) do not apply, its seq_len
        # is the study's window, and keywords given here override it.
        base = {k: v for k, v in dict(config).items() if k not in ("model", "seed", "out")} \
            if isinstance(config, dict) else compare_defaults(os.fspath(config))
        if "seq_len" in base:
            base["seq_lens"] = str(base.pop("seq_len"))
        seq_lens = base.pop("seq_lens", None) if seq_lens is None else seq_lens
        base.pop("seq_lens", None)
        _unknown(base, shared, "config")
        options = {**base, **options}
    args = SimpleNamespace(**{name: None for name in shared})
    for name, value in options.items():
        setattr(args, name, _listed(value))
    args.models = _listed(models) if models is not None else ",".join(STUDY_ORDER)
    args.seeds = str(_listed(seeds) if seeds is not None else DEFAULT_SEEDS)
    args.data, args.seq_lens, args.horizons = _listed(data), _listed(seq_lens), _listed(horizons)
    args.jobs, args.scheduler, args.out, args.tuned = jobs, scheduler, os.fspath(out), tuned
    plan = plan_study(args)
    result = run_study(plan, force=force, resume=resume, progress=progress)
    failures = {spec.label: str(why) for spec, why in result.failures.items()}
    out_dir = Path(plan.out_dir)
    return Study(_summary_table(out_dir), None if result.report is None else str(result.report), str(out_dir),
                 failures)
