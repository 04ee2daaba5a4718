"""Read a long-horizon benchmark study back from its folder: the finished runs and ``study.json``.

The study folder (written by the study runner)::

    OUT/study.json                       command, environment, wall_seconds, study
    OUT/runs/<slug>/h<H>/seq<L>/<model>/seed<k>/
        config.json  metrics.json  window_losses.csv  history.json  summary.json  checkpoint.npz

A run folder counts once its ``summary.json`` exists (it is written last); others are
listed as skipped (:func:`load_runs`). Values are on the standardised scale of the protocol.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecast.ltsf.protocol import LTSF
from forecast.study.runs import as_float, read_json
from forecast.study.tuned import study_window
from models.names import HYBRID

__all__ = ["RunResult", "load_runs", "load_context"]

#: A value a run did not record or could not compute (the summary and the Markdown use it too).
NAN = float("nan")


@dataclass(frozen=True)
class RunResult:
    """One finished run as read back from its folder (standardised scale).

    ``repeat`` and ``linear`` are the deterministic baselines on the same test windows;
    ``window_losses`` has one row per test window in time order. ``lookback`` is the
    study's (the one the run was planned for); ``tuned`` is the run's ``compare --tuned``
    record (best.json, options changed, a tuned lookback among them), None without one.
    """

    dataset: str
    horizon: int
    lookback: int
    model: str
    seed: int
    path: Path
    test_mse: float
    test_mae: float
    val_mse: float
    repeat_mse: float
    repeat_mae: float
    linear_mse: float
    linear_mae: float
    test_windows: int
    seconds: float
    best_epoch: float
    fusion_weight: float
    window_losses: pd.DataFrame = field(repr=False, compare=False)
    tuned: dict | None = field(default=None, compare=False)


def _pair(metrics: dict, key: str) -> tuple[float, float]:
    part = metrics.get(key) or {}
    return as_float(part.get("mse")), as_float(part.get("mae"))


def _last_fusion_weight(history) -> float:
    """The hybrid's last logged Mamba weight; ``forecast.train`` logs ``sigmoid(alpha)``
    under ``alpha`` (``fusion_weight`` accepted too). NaN when never logged."""
    for record in reversed(list(history or [])):
        for key in ("fusion_weight", "alpha"):
            if isinstance(record, dict) and record.get(key) is not None:
                return as_float(record[key])
    return NAN


def _load_run(path: Path) -> RunResult:
    config = read_json(path / "config.json")
    metrics = read_json(path / "metrics.json")
    info = read_json(path / "summary.json")
    history = read_json(path / "history.json", default=[])
    if isinstance(history, dict):
        history = history.get("history", [])
    losses = pd.read_csv(path / "window_losses.csv").sort_values("window").set_index("window")
    test_mse, test_mae = _pair(metrics, "test")
    repeat = _pair(metrics, "repeat")
    linear = _pair(metrics, "linear")
    training = info.get("training") or {}
    return RunResult(
        dataset=str(config["data"]), horizon=int(config["horizon"]), lookback=study_window(config, info),
        model=str(config["model"]), seed=int(config["seed"]), path=path,
        test_mse=test_mse, test_mae=test_mae, val_mse=_pair(metrics, "val")[0],
        repeat_mse=repeat[0], repeat_mae=repeat[1], linear_mse=linear[0], linear_mae=linear[1],
        test_windows=int(metrics.get("test_windows") or len(losses)),
        seconds=as_float(info.get("seconds")), best_epoch=as_float(training.get("best_epoch")),
        fusion_weight=_last_fusion_weight(history) if config["model"] == HYBRID else NAN,
        window_losses=losses, tuned=info.get("tuned") or None)


def _skip_reason(path: Path) -> str | None:
    """Why a run folder cannot be used, or None."""
    if not (path / "summary.json").exists():
        return "unfinished (no summary.json)"
    missing = [n for n in ("config.json", "metrics.json", "window_losses.csv") if not (path / n).exists()]
    if missing:
        return "missing " + ", ".join(missing)
    protocol = read_json(path / "config.json").get("protocol")
    if protocol not in (None, LTSF):
        return f"protocol {protocol!r}, not {LTSF}"
    return None


def load_runs(runs_dir) -> tuple[list[RunResult], list[str]]:
    """Load every complete run below ``runs_dir``.

    Returns
    -------
    (runs, skipped) : tuple
        The runs, and one ``"<folder relative to runs_dir>: <reason>"`` per folder left out.
    """
    runs_dir = Path(runs_dir)
    runs, skipped = [], []
    # The layout is fixed; a hidden ".seed0.*.partial" folder being assembled does not match.
    for path in sorted(p for p in runs_dir.glob("*/h*/seq*/*/seed*") if p.is_dir()):
        reason = _skip_reason(path)
        if reason is None:
            runs.append(_load_run(path))
        else:
            skipped.append(f"{path.relative_to(runs_dir).as_posix()}: {reason}")
    return runs, skipped


def load_context(out_dir: Path, context: dict | None) -> dict:
    """``study.json`` if present, overridden key by key by ``context``.

    Parameters
    ----------
    out_dir : Path
        The study folder.
    context : dict or None
        Keys that win over ``study.json``'s (``command``, ``environment``,
        ``wall_seconds``, ``study``).

    Returns
    -------
    dict
        The study's context, empty when neither gives any.
    """
    found = read_json(out_dir / "study.json", default={})
    return {**found, **dict(context or {})}
