"""The report's answer from the significance tests (Markdown lines).

Reads the test entries of :func:`forecast.study.significance.study_tests` (or the same
dicts read back from ``summary.json``) and states, at
:data:`forecast.stats.SIGNIFICANCE_LEVEL`, which models forecast significantly better or
worse than the naive forecast and whether the hybrid differs from its branches, with
the table of every test behind it. Nothing is written by hand.
"""
from __future__ import annotations

import math

from forecast.stats import DM_METHOD, DM_TEST, SIGNIFICANCE_LEVEL, WELCH_TEST
from forecast.study.significance import NAIVE, SEED_METRIC, verdict

__all__ = ["significance_lines"]


def _p(x) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.3g}" if x >= 1e-4 else f"{x:.1e}"


def _num(x, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}g}"


def _combined(entries, level) -> str:
    """One verdict for a pair over its steps: ``better`` or ``better at step 1, ...``."""
    by_verdict: dict = {}
    for e in entries:
        by_verdict.setdefault(verdict(e, level), []).append(e.get("step", 1))
    if len(by_verdict) == 1:
        return next(iter(by_verdict))
    return "; ".join(f"{v} at step{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))}"
                     for v, steps in by_verdict.items())


def _pairs(tests) -> list:
    return list(dict.fromkeys((t["model"], t["against"]) for t in tests))


def _naive_sentence(dm, level) -> str:
    groups: dict = {}
    for model, against in _pairs(dm):
        if against == NAIVE:
            groups.setdefault(_combined([t for t in dm if t["model"] == model and t["against"] == against],
                                        level), []).append(model)
    if not groups:
        return ""
    order = ["better", "worse", "no significant difference", "undefined"]
    labels = {"better": "significantly better", "worse": "significantly worse",
              "no significant difference": "no significant difference", "undefined": "not testable"}
    parts = [f"{labels.get(v, v)}: {', '.join(models)}"
             for v, models in sorted(groups.items(), key=lambda kv: order.index(kv[0])
                                     if kv[0] in order else len(order))]
    better = groups.get("better", [])
    head = (f"{len(better)} of {sum(map(len, groups.values()))} models forecast significantly better "
            "than the naive forecast (tomorrow = today)")
    return f"- {head}: " + "; ".join(parts) + "."


def _fusion_sentence(dm, welch, level) -> str:
    pairs = [(m, a) for m, a in _pairs(dm) if a != NAIVE]
    if not pairs:
        return ("- Does fusing help? Not tested (the hybrid and at least one of its branches "
                "must both be in the study).")
    parts = []
    for model, against in pairs:
        entries = [t for t in dm if t["model"] == model and t["against"] == against]
        text = f"{model} vs {against}: {_combined(entries, level)}"
        if len(entries) == 1:
            text += f" (DM p = {_p(entries[0]['p_value'])}, Holm {_p(entries[0]['p_holm'])})"
        seeds = [t for t in welch if t["model"] == model and t["against"] == against]
        if seeds:
            text += (f"; over seeds: {verdict(seeds[0], level)} (Welch p = {_p(seeds[0]['p_value'])}, "
                     f"Holm {_p(seeds[0]['p_holm'])})")
        parts.append(text)
    return "- Does fusing help? " + "; ".join(parts) + "."


def _table(dm, welch, unit) -> list:
    several_steps = any(t.get("step", 1) != 1 for t in dm)
    head = ["model", "against"] + (["step"] if several_steps else []) + [
        f"MSE model ({unit}²)", f"MSE against ({unit}²)", "DM statistic", "p", "p Holm", "verdict",
        f"seeds: Welch t on {SEED_METRIC} (p, p Holm)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in dm:
        seeds = next((w for w in welch if (w["model"], w["against"]) == (t["model"], t["against"])), None)
        cells = [t["model"], t["against"]] + ([str(t.get("step", 1))] if several_steps else [])
        cells += [_num(t.get("mse_model")), _num(t.get("mse_against")), _num(t["statistic"], 3),
                  _p(t["p_value"]), _p(t["p_holm"]), verdict(t) + (f" ({t['note']})" if t.get("note") else "")]
        cells.append(f"{_num(seeds['statistic'], 3)} ({_p(seeds['p_value'])}, {_p(seeds['p_holm'])})"
                     if seeds else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def significance_lines(tests, seq_len: int, unit: str = "USD", level: float = SIGNIFICANCE_LEVEL) -> list:
    """The answer and the test table for one window length (per data source when several).

    Parameters
    ----------
    tests : list of dict
        Entries of :func:`forecast.study.significance.study_tests`.
    seq_len : int
    unit : str
        Price currency, for the MSE columns.
    level : float
        Significance level, applied to the Holm-adjusted p-values.
    """
    here = [t for t in tests if t.get("seq_len") == seq_len]
    if not here:
        return ["Significance: no tests (no runs with predictions at this window length).", ""]
    sources = list(dict.fromkeys(t["data"] for t in here))
    lines = []
    for data in sources:
        dm = [t for t in here if t["data"] == data and t["test"] == DM_TEST]
        welch = [t for t in here if t["data"] == data and t["test"] == WELCH_TEST]
        n = max((t.get("n") or 0 for t in dm), default=0)
        where = f" on {data}" if len(sources) > 1 else ""
        lines += [f"**Answer at the {level:.0%} level{where}.** Diebold-Mariano tests of equal "
                  f"accuracy ({DM_METHOD}) on each model's seed-mean forecast over {n} test days; "
                  "p-values Holm-adjusted over "
                  f"the {len(dm)} tests of this window (the MSE columns are those of the seed-mean "
                  "forecasts). A negative statistic means the model's error is the smaller one. "
                  "Beside each, Welch's t-test on the per-seed test "
                  f"{SEED_METRIC} asks whether the difference exceeds the spread over seeds.", ""]
        lines += [s for s in (_naive_sentence(dm, level), _fusion_sentence(dm, welch, level)) if s]
        lines += [""] + _table(dm, welch, unit) + [""]
    return lines
