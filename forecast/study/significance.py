"""Significance tests of a comparison study, computed from its run folders.

For every data source and window length (the runs' ``config.json`` say which):

* **Diebold-Mariano** (:func:`forecast.stats.diebold_mariano`, HLN-corrected, two-sided,
  Student's t with ``n - 1`` degrees of freedom) on the squared error of each model's
  *seed-mean forecast* (the mean over seeds of its predicted price per date): every
  model against the naive forecast "tomorrow = today", the hybrid against each of its
  branches and against each classical baseline (``arima``, ``ets``, ``theta``). Horizon
  ``H > 1``: one test per step ``s = 1..H``, on the series of ``s``-step-ahead forecasts
  in origin order, with the autocovariances up to lag
  ``s - 1`` that ``s``-step forecast errors carry (consecutive origins share ``s - 1``
  target days). Pooling all steps into one series would mix forecasts of different
  difficulty and give them an autocorrelation the lag rule does not describe.
* **Welch's t-test** (:func:`forecast.stats.welch_t_test`) on the per-seed test
  :data:`SEED_METRIC` of the same pairs: is the difference larger than the spread over
  seeds? The naive forecast's metric is the same for every seed, so against it the test
  asks whether the models' per-seed values have the naive forecast's value as mean.
  A classical baseline runs once (it has no seed), so every Welch test it is part of is
  left undefined with the note :data:`ONE_RUN`.

Each test's p-value is also Holm-adjusted (``p_holm``) within its *family*: the tests
of one kind at one data source and window length. A difference is called significant
when ``p_holm`` is below :data:`forecast.stats.SIGNIFICANCE_LEVEL`.

Sign convention: the statistic is for ``model - against``; a negative value means the
model's loss (or metric) is smaller.

:func:`judge` turns the test entries into the answers the report states (a verdict per
test, per pair and step), once, so the Markdown and the cross-source page only word them.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecast.stats import (DM_METHOD, DM_TEST, SIGNIFICANCE_LEVEL, WELCH_TEST, diebold_mariano, holm_adjust,
                            squared_error_differential, welch_t_test)
from models.names import BRANCHES, CLASSICAL, HYBRID

__all__ = ["NAIVE", "SEED_METRIC", "TESTS_NOTE", "ONE_RUN", "PairVerdict", "Answer", "comparisons",
           "seed_mean_forecasts", "study_tests", "verdict", "judge"]

#: ``against`` of the tests with the naive forecast.
NAIVE = "naive"
#: The per-seed metric of the Welch test: the DM test's loss, averaged over the test days.
SEED_METRIC = "mse"
#: Note of a Welch test involving a classical baseline: one run, no spread over seeds to test.
ONE_RUN = "one run"
#: What summary.json says about its ``tests``.
TESTS_NOTE = ("statistic of model minus against (negative: the model's loss is smaller); "
              f"{DM_TEST}: the seed-mean forecast, {DM_METHOD}; "
              f"{WELCH_TEST}: per-seed test {SEED_METRIC} (undefined for a classical baseline: {ONE_RUN}); "
              "p_holm: Holm-adjusted within the tests of one kind at one data source and window length")


def comparisons(models, hybrid: str = HYBRID, branches=BRANCHES,
                classical=CLASSICAL) -> list[tuple[str, str]]:
    """The ``(model, against)`` pairs tested: every model against naive, then the
    hybrid against each of its branches, then against each classical baseline, that
    the study has."""
    models = list(models)
    pairs = [(m, NAIVE) for m in models]
    if hybrid in models:
        pairs += [(hybrid, b) for b in branches if b in models]
        pairs += [(hybrid, c) for c in classical if c in models]
    return pairs


def _keys(frame: pd.DataFrame) -> list[str]:
    return ["origin_date", "step"] if "step" in frame.columns else ["date"]


def seed_mean_forecasts(records) -> pd.DataFrame:
    """One row per forecast, columns ``step``, ``actual``, ``naive`` and one per model.

    Parameters
    ----------
    records : list of RunRecord
        Runs of one data source and window length.

    Returns
    -------
    pandas.DataFrame
        Indexed by date (horizon 1) or by ``(origin_date, step)``, sorted in time; a
        model's column is the mean over its seeds of the predicted price (NaN where a
        seed's prediction is not finite). Only forecasts every run made are kept.
    """
    columns = {}
    first = records[0].predictions
    keys = _keys(first)
    base = first.set_index(keys)
    columns["actual"] = base["actual"]
    columns[NAIVE] = base["naive"]
    by_model: dict = {}
    for rec in records:
        by_model.setdefault(rec.model, []).append(rec.predictions.set_index(keys)["predicted"])
    for model, series in by_model.items():
        # A diverged seed makes the mean undefined rather than quietly dropping that seed.
        columns[model] = pd.concat(series, axis=1, join="inner").mean(axis=1, skipna=False)
    table = pd.concat(columns, axis=1, join="inner").sort_index()
    if "step" not in keys:
        table["step"] = 1
    else:
        table = table.reset_index(level="step")
    return table


def _dm_entries(table: pd.DataFrame, pairs) -> list[dict]:
    entries = []
    for model, against in pairs:
        for step in sorted(table["step"].unique()):
            part = table[table["step"] == step]
            actual = part["actual"].to_numpy()
            a, b = part[model].to_numpy(), part[against].to_numpy()
            result = diebold_mariano(squared_error_differential(actual, a, b), horizon=int(step))
            entries.append({"model": model, "against": against, "test": DM_TEST, "step": int(step),
                            "statistic": result.statistic, "p_value": result.p_value, "n": result.n,
                            "mse_model": float(np.mean((a - actual) ** 2)),
                            "mse_against": float(np.mean((b - actual) ** 2)), "note": result.note})
    return entries


def _seed_values(records, model: str, name: str) -> list[float]:
    """Per-seed :data:`SEED_METRIC` of ``name``; for the naive forecast, as each of
    ``model``'s runs measured it (the same value every time)."""
    if name == NAIVE:
        return [r.naive.get("last", {}).get(SEED_METRIC, float("nan")) for r in records if r.model == model]
    return [r.metrics.get(SEED_METRIC, float("nan")) for r in records if r.model == name]


def _welch_entries(records, pairs) -> list[dict]:
    entries = []
    for model, against in pairs:
        a, b = _seed_values(records, model, model), _seed_values(records, model, against)
        result = welch_t_test(a, b)
        if model in CLASSICAL or against in CLASSICAL:
            # One run has no spread to test; say so rather than "needs two values".
            result = dataclasses.replace(result, statistic=float("nan"), p_value=float("nan"), df=float("nan"),
                                         note=ONE_RUN)
        entries.append({"model": model, "against": against, "test": WELCH_TEST, "metric": SEED_METRIC,
                        "statistic": result.statistic, "p_value": result.p_value, "df": result.df,
                        "n": result.n, "mean_model": _mean(a), "mean_against": _mean(b),
                        "note": result.note})
    return entries


def _mean(values) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _data_of(record) -> str:
    return str(record.config.get("data", (record.info.get("data") or {}).get("spec", "?")))


def study_tests(records, models=None) -> list[dict]:
    """Every test of the study, as plain dicts for ``summary.json``'s ``tests``.

    Parameters
    ----------
    records : list of RunRecord
        The study's runs (several data sources and window lengths allowed).
    models : list of str, optional
        Model order; default: as the runs come.

    Returns
    -------
    list of dict
        Keys ``data, seq_len, model, against, test, statistic, p_value, p_holm, n, note``;
        Diebold-Mariano entries add ``step, mse_model, mse_against`` (the seed-mean
        forecast's MSE), Welch entries ``metric, df, mean_model, mean_against``.
        Undefined tests carry NaN (``null`` in JSON) and say why in ``note``.
    """
    tests = []
    groups: dict = {}
    for rec in records:
        groups.setdefault((_data_of(rec), rec.seq_len), []).append(rec)
    for (data, seq_len), group in groups.items():
        names = list(dict.fromkeys(models or [r.model for r in group]))
        names = [m for m in names if any(r.model == m for r in group)]
        pairs = comparisons(names)
        family = []
        for entries in (_dm_entries(seed_mean_forecasts(group), pairs), _welch_entries(group, pairs)):
            for entry, p_holm in zip(entries, holm_adjust([e["p_value"] for e in entries])):
                entry["p_holm"] = float(p_holm)
            family += entries
        tests += [{"data": data, "seq_len": int(seq_len), **entry} for entry in family]
    return tests


def verdict(test: dict, level: float = SIGNIFICANCE_LEVEL) -> str:
    """``"better"``, ``"worse"`` (model against ``against``, significant after Holm),
    ``"no significant difference"`` or ``"undefined"``."""
    p, statistic = test.get("p_holm"), test.get("statistic")
    if p is None or statistic is None or not (math.isfinite(p) and math.isfinite(statistic)):
        return "undefined"
    if p >= level:
        return "no significant difference"
    return "better" if statistic < 0 else "worse"


@dataclass(frozen=True)
class PairVerdict:
    """The verdicts of one tested pair (``model`` against ``against``) at one source and window.

    Attributes
    ----------
    model, against : str
    dm : tuple of dict
        The pair's Diebold-Mariano entries, one per forecast step.
    steps : tuple of (str, tuple of int)
        The steps grouped by their verdict, verdicts in the order first met.
    welch : dict or None
        The pair's Welch entry (the test over seeds), when there is one.
    welch_verdict : str or None
        Its verdict.
    """

    model: str
    against: str
    dm: tuple
    steps: tuple
    welch: dict | None
    welch_verdict: str | None


@dataclass(frozen=True)
class Answer:
    """The significance answer at one data source and window length.

    Attributes
    ----------
    data : str
        The source (the runs' ``--data`` spelling).
    seq_len : int
    level : float
        Significance level the verdicts apply to the Holm-adjusted p-values.
    days : int
        Test days (forecasts per step) behind the Diebold-Mariano tests.
    dm : tuple of dict
        The Diebold-Mariano entries, in the order of :func:`study_tests`.
    verdicts : tuple of str
        :func:`verdict` of each entry of ``dm``.
    pairs : tuple of PairVerdict
        Every pair of ``dm``, in the order first met.
    """

    data: str
    seq_len: int
    level: float
    days: int
    dm: tuple
    verdicts: tuple
    pairs: tuple


def _pair_verdict(model: str, against: str, dm, welch, level: float) -> PairVerdict:
    entries = tuple(t for t in dm if (t["model"], t["against"]) == (model, against))
    steps: dict = {}
    for entry in entries:
        steps.setdefault(verdict(entry, level), []).append(entry.get("step", 1))
    seeds = next((w for w in welch if (w["model"], w["against"]) == (model, against)), None)
    return PairVerdict(model=model, against=against, dm=entries,
                       steps=tuple((v, tuple(s)) for v, s in steps.items()), welch=seeds,
                       welch_verdict=None if seeds is None else verdict(seeds, level))


def judge(tests, level: float = SIGNIFICANCE_LEVEL) -> list[Answer]:
    """The verdicts of every test, per data source and window length.

    Parameters
    ----------
    tests : list of dict
        Entries of :func:`study_tests` (or the same dicts read back from ``summary.json``).
    level : float
        Significance level, applied to the Holm-adjusted p-values.

    Returns
    -------
    list of Answer
        One per (data source, window length) that has tests, in the order first met.
    """
    groups: dict = {}
    for test in tests:
        groups.setdefault((test.get("data"), test.get("seq_len")), []).append(test)
    answers = []
    for (data, seq_len), group in groups.items():
        dm = tuple(t for t in group if t["test"] == DM_TEST)
        welch = [t for t in group if t["test"] == WELCH_TEST]
        pairs = dict.fromkeys((t["model"], t["against"]) for t in dm)
        answers.append(Answer(
            data=data, seq_len=seq_len, level=level, days=max((t.get("n") or 0 for t in dm), default=0),
            dm=dm, verdicts=tuple(verdict(t, level) for t in dm),
            pairs=tuple(_pair_verdict(m, a, dm, welch, level) for m, a in pairs)))
    return answers
