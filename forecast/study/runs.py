"""Read the runs of a comparison study back from disk.

A study keeps every training run in its own folder (``runs/<model>/seed<k>/`` or,
when several window lengths are compared, ``runs/seq<L>/<model>/seed<k>/``), each
holding the pipeline's files (see :mod:`forecast.pipeline`): ``config.json``,
``history.json``, ``metrics.json``, ``predictions.csv``, ``summary.json`` (data
description, training outcome, seconds) and ``checkpoint.npz`` (a classical baseline's
folder has no checkpoint and an empty history: it is fitted, not trained). This module
loads those folders as :class:`RunRecord`: one (:func:`load_run`) or a whole study
(:func:`load_study`). The summary (:func:`forecast.study.summary.summarize`) is computed
from them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.study.names import model_rank
from forecast.study.tuned import study_window

__all__ = ["RunRecord", "load_run", "load_study", "read_json", "as_float"]


def read_json(path: Path, default=None):
    """A run folder's JSON file; ``default`` when it does not exist (None: FileNotFoundError)."""
    if not path.exists():
        if default is not None:
            return default
        raise FileNotFoundError(f"missing {path}")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _split_metrics(obj: dict) -> tuple[dict, dict]:
    """Return ``(test metrics, {baseline: metrics})`` from a ``metrics.json`` object.

    The pipeline stores ``{"test": {...}, "naive": {...}, "drift": {...}}``: the model,
    the last-value forecast (tomorrow = today) and the drift forecast. They become the
    baselines ``last`` and ``drift``. A flat object is the test metrics alone.
    """
    if "test" not in obj:
        return _floats(obj), {}
    baselines = {}
    for key, name in (("naive", "last"), ("drift", "drift")):
        if isinstance(obj.get(key), dict):
            baselines[name] = _floats(obj[key])
    return _floats(obj["test"]), baselines


def _floats(d: dict) -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[str(key)] = float(value)
        elif value is None:
            out[str(key)] = float("nan")
    return out


@dataclass
class RunRecord:
    """One finished training run, as read back from its folder.

    Attributes
    ----------
    model, seed, seq_len : str, int, int
        What was trained (from ``config.json``); ``seq_len`` is the study's window length
        the run belongs to, which a tuned run's own (in ``config``) may differ from.
    path : Path
        The run folder.
    metrics : dict
        Test metrics of the model, in original price units.
    naive : dict
        ``{baseline: metrics}`` of the naive forecasts on the same test set.
    history : list of dict
        Per-epoch records (``train_loss``, ``val_loss``, ``epoch_seconds``...).
    config : dict
        The run's configuration.
    info : dict
        The run's ``summary.json``: ``data`` description, ``training`` outcome,
        ``seconds`` (empty when absent).
    intervals : dict
        ``metrics.json``'s ``intervals`` block: level, method, calibration and every
        method's coverage and width (:func:`forecast.calibration.interval_metrics`); empty
        for a run written before intervals existed.
    """

    model: str
    seed: int
    seq_len: int
    path: Path
    metrics: dict
    naive: dict
    history: list
    config: dict
    info: dict = field(default_factory=dict)
    intervals: dict = field(default_factory=dict)
    _predictions: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def tuned(self) -> dict | None:
        """The run's record of ``compare --tuned`` (best.json path, options changed), or None."""
        return self.info.get("tuned") or None

    @property
    def epochs(self) -> int:
        """Number of epochs actually run (early stopping may end a run early)."""
        return len(self.history)

    @property
    def epoch_seconds(self) -> float:
        """Mean wall time of one epoch in seconds."""
        times = [float(h["epoch_seconds"]) for h in self.history if "epoch_seconds" in h]
        return float(np.mean(times)) if times else float("nan")

    def series(self, key: str) -> np.ndarray:
        """Per-epoch values of ``key`` in the history (NaN where missing)."""
        return np.array([as_float(h.get(key)) for h in self.history], dtype=float)

    @property
    def predictions(self) -> pd.DataFrame:
        """Test predictions, read on first use.

        Columns ``date, actual, predicted, naive``; for horizon > 1 also
        ``origin_date, step`` (one row per window and step).
        """
        if self._predictions is None:
            frame = pd.read_csv(self.path / "predictions.csv")
            if "date" in frame.columns:
                frame["date"] = pd.to_datetime(frame["date"])
            self._predictions = frame
        return self._predictions

    @property
    def label(self) -> str:
        """``model seed k (seq L)`` for messages."""
        return f"{self.model} seed {self.seed} (seq_len {self.seq_len})"


def as_float(value) -> float:
    """A value of a run's JSON files as one number: None (a NaN written as null by
    :func:`forecast.fileio.to_jsonable`) is NaN, lists (per-channel values) become their mean."""
    if value is None:
        return float("nan")
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value, dtype=float)
        return float(arr.mean()) if arr.size else float("nan")
    return float(value)


def load_run(path) -> RunRecord:
    """Load one run folder.

    Parameters
    ----------
    path : str or Path
        A folder holding ``config.json``, ``history.json`` and ``metrics.json``.

    Returns
    -------
    RunRecord
    """
    path = Path(path)
    config = read_json(path / "config.json")
    history = read_json(path / "history.json")
    if isinstance(history, dict):          # tolerate {"history": [...]} as well as [...]
        history = history.get("history", history.get("epochs", []))
    metrics = read_json(path / "metrics.json")
    test, naive = _split_metrics(metrics)
    info = read_json(path / "summary.json", default={})
    block = metrics.get("intervals") if isinstance(metrics.get("intervals"), dict) else {}
    return RunRecord(model=str(config["model"]), seed=int(config["seed"]),
                     seq_len=study_window(config, info), path=path, metrics=test, naive=naive,
                     history=list(history), config=config, info=info, intervals=block)


def load_study(runs_dir) -> list[RunRecord]:
    """Load every run below ``runs_dir`` (any folder holding a ``metrics.json``).

    Returns
    -------
    list of RunRecord
        Sorted by window length, model (:data:`models.names.STUDY_ORDER`) and seed, so results do
        not depend on the order the file system lists folders in.
    """
    runs_dir = Path(runs_dir)
    records = [load_run(p.parent) for p in runs_dir.rglob("metrics.json")]
    return sorted(records, key=lambda r: (r.seq_len, model_rank(r.model), r.seed))
