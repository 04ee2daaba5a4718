"""Read the runs of a comparison study from disk and reduce them to numbers.

A study keeps every training run in its own folder (``runs/<model>/seed<k>/`` or,
when several window lengths are compared, ``runs/seq<L>/<model>/seed<k>/``), each
holding the pipeline's files (see :mod:`forecast.pipeline`): ``config.json``,
``history.json``, ``metrics.json``, ``predictions.csv``, ``summary.json`` (data
description, training outcome, seconds) and ``checkpoint.npz``. This module loads those
folders (:func:`load_study`), aggregates them over seeds (:func:`summarize`) and
draws the conclusions that the report states (:func:`conclude`). It knows nothing
about training or plotting, so the report can be rebuilt from the files alone.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.fileio import atomic_write_json, atomic_write_text
from forecast.metrics import HIGHER_IS_BETTER, METRIC_NAMES
from models.names import BRANCHES, HYBRID, STUDY_ORDER

__all__ = [
    "NAIVE_PREFIX", "RunRecord", "Stat", "SummaryRow",
    "Gap", "MetricVerdict", "Conclusion", "load_run", "load_study", "summarize",
    "conclude", "model_rank", "write_summary_csv", "write_summary_json", "is_naive", "sample_std",
]

#: Summary rows of naive baselines are named ``naive_<baseline>`` (``naive_last``...).
NAIVE_PREFIX = "naive_"
#: Per-run quantities that are summarised beside the metrics.
RUN_STATS = ("epoch_seconds", "epochs")
SPREAD_RULE = ("|difference of means| > sqrt(std_a^2 + std_b^2), with std the sample "
               "standard deviation (ddof=1) over seeds")


def is_naive(name: str) -> bool:
    """Whether a summary row name denotes a naive baseline."""
    return name.startswith(NAIVE_PREFIX)


def sample_std(values) -> float:
    """Sample standard deviation (ddof=1); 0 for fewer than two values.

    One seed carries no information about spread, and 0 (rather than NaN) keeps the
    tables and the separation rule well defined in that case.
    """
    arr = np.asarray(values, dtype=float)
    return float(arr.std(ddof=1)) if arr.size > 1 else 0.0


# -- loading ---------------------------------------------------------------------------

def _read_json(path: Path, default=None):
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
        What was trained (from ``config.json``).
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
    _predictions: pd.DataFrame | None = field(default=None, repr=False)

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
        return np.array([_scalar(h.get(key)) for h in self.history], dtype=float)

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


def _scalar(value) -> float:
    """A history entry as one number: lists (per-channel values) become their mean."""
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
    config = _read_json(path / "config.json")
    history = _read_json(path / "history.json")
    if isinstance(history, dict):          # tolerate {"history": [...]} as well as [...]
        history = history.get("history", history.get("epochs", []))
    test, naive = _split_metrics(_read_json(path / "metrics.json"))
    info = _read_json(path / "summary.json", default={})
    return RunRecord(model=str(config["model"]), seed=int(config["seed"]),
                     seq_len=int(config["seq_len"]), path=path, metrics=test, naive=naive,
                     history=list(history), config=config, info=info)


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


def model_rank(name: str) -> tuple:
    """Sort key of a model name: the study's usual order first, then alphabetical."""
    return (STUDY_ORDER.index(name) if name in STUDY_ORDER else len(STUDY_ORDER), name)


# -- aggregation -----------------------------------------------------------------------

@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation of a quantity over seeds."""

    mean: float
    std: float
    values: tuple

    @classmethod
    def of(cls, values) -> "Stat":
        vals = tuple(float(v) for v in values)
        finite = [v for v in vals if math.isfinite(v)]
        mean = float(np.mean(finite)) if finite else float("nan")
        # Identical values (a naive baseline) have no spread; rounding in the mean
        # would otherwise leave a spurious 1e-16.
        std = 0.0 if len(set(finite)) <= 1 else sample_std(finite)
        return cls(mean=mean, std=std, values=vals)


@dataclass
class SummaryRow:
    """One line of the summary: a model (or a naive baseline) at one window length.

    Attributes
    ----------
    seq_len : int
    model : str
        Model name, or ``naive_<baseline>`` for a baseline.
    seeds : tuple of int
    stats : dict of str to Stat
        Every metric, plus ``epoch_seconds`` and ``epochs`` for trained models.
    """

    seq_len: int
    model: str
    seeds: tuple
    stats: dict

    @property
    def kind(self) -> str:
        """``"naive"`` for a baseline, ``"model"`` otherwise."""
        return "naive" if is_naive(self.model) else "model"

    def mean(self, key: str) -> float:
        stat = self.stats.get(key)
        return stat.mean if stat is not None else float("nan")

    def std(self, key: str) -> float:
        stat = self.stats.get(key)
        return stat.std if stat is not None else float("nan")


def _keys_in_order(mappings) -> list[str]:
    """The keys of several mappings, each once, in the order they are first seen."""
    return list(dict.fromkeys(key for mapping in mappings for key in mapping))


def metric_keys(records) -> list[str]:
    """Metric names present in the runs: the known ones in table order, then any extra."""
    seen = _keys_in_order(rec.metrics for rec in records)
    known = [m for m in METRIC_NAMES if m in seen]
    return known + [m for m in seen if m not in METRIC_NAMES]


def summarize(records) -> list[SummaryRow]:
    """Aggregate runs over seeds, per window length and model.

    Naive baselines become rows named ``naive_<baseline>``. Their metrics come from
    every run of that window length (they do not depend on the seed, so their spread
    is 0 unless two runs saw different test sets, which would be a bug worth seeing).

    Parameters
    ----------
    records : list of RunRecord

    Returns
    -------
    list of SummaryRow
        Trained models first (in the order they first appear), then baselines, for
        each window length in increasing order.
    """
    keys = metric_keys(records)
    rows: list[SummaryRow] = []
    for seq_len in sorted({r.seq_len for r in records}):
        group = [r for r in records if r.seq_len == seq_len]
        models = list(dict.fromkeys(r.model for r in group))
        for model in models:
            runs = [r for r in group if r.model == model]
            stats = {k: Stat.of(r.metrics.get(k, float("nan")) for r in runs) for k in keys}
            stats["epoch_seconds"] = Stat.of(r.epoch_seconds for r in runs)
            stats["epochs"] = Stat.of(r.epochs for r in runs)
            rows.append(SummaryRow(seq_len, model, tuple(r.seed for r in runs), stats))
        baselines = list(dict.fromkeys(b for r in group for b in r.naive))
        for base in baselines:
            runs = [r for r in group if base in r.naive]
            stats = {k: Stat.of(r.naive[base].get(k, float("nan")) for r in runs) for k in keys}
            rows.append(SummaryRow(seq_len, NAIVE_PREFIX + base, tuple(r.seed for r in runs),
                                   stats))
    return rows


def _stat_keys(rows) -> list[str]:
    return _keys_in_order(row.stats for row in rows)


def write_summary_csv(rows, path) -> Path:
    """Write the summary as CSV: one line per (seq_len, model), ``<key>_mean, <key>_std``."""
    path = Path(path)
    keys = _stat_keys(rows)
    header = ["seq_len", "model", "kind", "n_seeds"]
    for key in keys:
        header += [f"{key}_mean", f"{key}_std"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        line = [row.seq_len, row.model, row.kind, len(row.seeds)]
        for key in keys:     # repr: every digit, so the file reads back to the same floats
            line += [repr(row.mean(key)), repr(row.std(key))]
        writer.writerow(line)
    atomic_write_text(path, buffer.getvalue())
    return path


def _json_number(x: float):
    return x if math.isfinite(x) else None


def write_summary_json(rows, path, extra: dict | None = None) -> Path:
    """Write the summary as JSON (NaN becomes ``null``), with per-seed values kept."""
    path = Path(path)
    payload = {
        "std": "sample standard deviation over seeds (ddof=1; 0 for one seed)",
        "rows": [{
            "seq_len": row.seq_len, "model": row.model, "kind": row.kind,
            "n_seeds": len(row.seeds), "seeds": list(row.seeds),
            **{key: {"mean": _json_number(st.mean), "std": _json_number(st.std),
                     "values": [_json_number(v) for v in st.values]}
               for key, st in row.stats.items()},
        } for row in rows],
    }
    if extra:
        payload.update(extra)
    atomic_write_json(path, payload)
    return path


# -- conclusions -----------------------------------------------------------------------

@dataclass(frozen=True)
class Gap:
    """How the best model compares with another one on one metric."""

    other: str
    difference: float     # |mean(best) - mean(other)|
    spread: float         # sqrt(std_best^2 + std_other^2)

    @property
    def separated(self) -> bool:
        """Whether the gap is larger than the spread over seeds (see ``SPREAD_RULE``)."""
        return self.difference > self.spread


@dataclass(frozen=True)
class MetricVerdict:
    """Who wins one metric at one window length."""

    metric: str
    best: str                 # best row overall, naive baselines included
    best_model: str | None    # best trained model
    gaps: tuple               # Gap of best_model against every other trained model
    naive_best: bool          # a naive baseline beats every trained model


@dataclass(frozen=True)
class Conclusion:
    """Everything the report concludes for one window length."""

    seq_len: int
    verdicts: tuple                # MetricVerdict per metric
    beats_naive: dict              # model -> rel_mae mean < 1 (None without rel_mae)
    fusion: tuple                  # (metric, versus, hybrid better?, Gap) for the hybrid


def _better(metric: str, a: float, b: float) -> bool:
    """Whether value ``a`` is strictly better than ``b`` on ``metric`` (NaN never wins)."""
    if not math.isfinite(a):
        return False
    if not math.isfinite(b):
        return True
    return a > b if metric in HIGHER_IS_BETTER else a < b


def best_of(rows, metric: str) -> SummaryRow | None:
    """The row with the best mean on ``metric`` (first one on ties), or ``None``."""
    best = None
    for row in rows:
        if math.isfinite(row.mean(metric)) and (best is None
                                               or _better(metric, row.mean(metric),
                                                          best.mean(metric))):
            best = row
    return best


def _gap(a: SummaryRow, b: SummaryRow, metric: str) -> Gap:
    return Gap(other=b.model, difference=abs(a.mean(metric) - b.mean(metric)),
               spread=math.hypot(a.std(metric), b.std(metric)))


def conclude(rows, seq_len: int, metrics=None, hybrid: str = HYBRID,
             parts=BRANCHES) -> Conclusion:
    """Draw the conclusions for one window length from the summary rows.

    Parameters
    ----------
    rows : list of SummaryRow
        The summary (rows of other window lengths are ignored).
    seq_len : int
    metrics : list of str, optional
        Metrics to judge; all metrics in the rows by default.
    hybrid, parts : str, tuple of str
        The fused model and the models it fuses, for the fusion question.

    Returns
    -------
    Conclusion
    """
    here = [r for r in rows if r.seq_len == seq_len]
    models = [r for r in here if r.kind == "model"]
    if metrics is None:
        metrics = [k for k in _stat_keys(here) if k not in RUN_STATS]
    verdicts = []
    for metric in metrics:
        overall = best_of(here, metric)
        top = best_of(models, metric)
        if overall is None:
            continue
        gaps = tuple(_gap(top, r, metric) for r in models if r is not top) if top else ()
        verdicts.append(MetricVerdict(metric=metric, best=overall.model,
                                      best_model=top.model if top else None, gaps=gaps,
                                      naive_best=overall.kind == "naive"))
    beats = {}
    for row in models:
        # MAE relative to the naive forecast's on the same test days; MASE's in-sample
        # scale does not answer this (the naive forecast itself may score far from 1).
        rel = row.mean("rel_mae")
        beats[row.model] = (rel < 1.0) if math.isfinite(rel) else None
    fusion = []
    by_name = {r.model: r for r in models}
    if hybrid in by_name:
        for metric in metrics:
            for part in parts:
                if part in by_name and math.isfinite(by_name[hybrid].mean(metric)):
                    h, p = by_name[hybrid], by_name[part]
                    fusion.append((metric, part, _better(metric, h.mean(metric), p.mean(metric)),
                                   _gap(h, p, metric)))
    return Conclusion(seq_len=seq_len, verdicts=tuple(verdicts), beats_naive=beats,
                      fusion=tuple(fusion))
