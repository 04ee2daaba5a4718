"""The report's answer from the significance tests (Markdown lines).

Words the answers of :func:`forecast.study.significance.judge` (the study summary holds
them): which models forecast significantly better or worse than the naive forecast,
whether the hybrid differs from its branches and from the classical baselines, with the
table of every test behind it.
Nothing is judged here and nothing is written by hand.
"""
from __future__ import annotations

import math

from forecast.stats import DM_METHOD
from forecast.study.significance import NAIVE, ONE_RUN, SEED_METRIC
from models.names import CLASSICAL

__all__ = ["significance_lines"]

#: How the naive sentence orders and names the verdicts.
_ORDER = ("better", "worse", "no significant difference", "undefined")
_LABELS = {"better": "significantly better", "worse": "significantly worse",
           "no significant difference": "no significant difference", "undefined": "not testable"}


def _p(x) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.3g}" if x >= 1e-4 else f"{x:.1e}"


def _num(x, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}g}"


def _combined(pair) -> str:
    """One verdict for a pair over its steps: ``better`` or ``better at step 1; ...``."""
    if len(pair.steps) == 1:
        return pair.steps[0][0]
    return "; ".join(f"{v} at step{'s' if len(steps) > 1 else ''} {', '.join(map(str, steps))}"
                     for v, steps in pair.steps)


def _naive_sentence(answer) -> str:
    groups: dict = {}
    for pair in answer.pairs:
        if pair.against == NAIVE:
            groups.setdefault(_combined(pair), []).append(pair.model)
    if not groups:
        return ""
    parts = [f"{_LABELS.get(v, v)}: {', '.join(models)}"
             for v, models in sorted(groups.items(), key=lambda kv: _ORDER.index(kv[0])
                                     if kv[0] in _ORDER else len(_ORDER))]
    better = groups.get("better", [])
    head = (f"{len(better)} of {sum(map(len, groups.values()))} models forecast significantly better "
            "than the naive forecast (tomorrow = today)")
    return f"- {head}: " + "; ".join(parts) + "."


def _pair_text(pair) -> str:
    text = f"{pair.model} vs {pair.against}: {_combined(pair)}"
    if len(pair.dm) == 1:
        text += f" (DM p = {_p(pair.dm[0]['p_value'])}, Holm {_p(pair.dm[0]['p_holm'])})"
    if pair.welch is not None and pair.welch.get("note") != ONE_RUN:
        text += (f"; over seeds: {pair.welch_verdict} (Welch p = {_p(pair.welch['p_value'])}, "
                 f"Holm {_p(pair.welch['p_holm'])})")
    return text


def _fusion_sentence(answer) -> str:
    pairs = [p for p in answer.pairs if p.against != NAIVE and p.against not in CLASSICAL]
    if not pairs:
        return ("- Does fusing help? Not tested (the hybrid and at least one of its branches "
                "must both be in the study).")
    return "- Does fusing help? " + "; ".join(_pair_text(p) for p in pairs) + "."


def _classical_sentence(answer) -> str:
    """The hybrid against the classical baselines (empty when the study has none)."""
    pairs = [p for p in answer.pairs if p.against in CLASSICAL]
    if not pairs:
        return ""
    return ("- Against the classical baselines (one run each, so no test over seeds): "
            + "; ".join(_pair_text(p) for p in pairs) + ".")


def _table(answer, unit) -> list:
    several_steps = any(t.get("step", 1) != 1 for t in answer.dm)
    head = ["model", "against"] + (["step"] if several_steps else []) + [
        f"MSE model ({unit}²)", f"MSE against ({unit}²)", "DM statistic", "p", "p Holm", "verdict",
        f"seeds: Welch t on {SEED_METRIC} (p, p Holm)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    welch = {(p.model, p.against): p.welch for p in answer.pairs}
    for t, verdict in zip(answer.dm, answer.verdicts):
        seeds = welch[(t["model"], t["against"])]
        cells = [t["model"], t["against"]] + ([str(t.get("step", 1))] if several_steps else [])
        cells += [_num(t.get("mse_model")), _num(t.get("mse_against")), _num(t["statistic"], 3),
                  _p(t["p_value"]), _p(t["p_holm"]), verdict + (f" ({t['note']})" if t.get("note") else "")]
        if seeds and seeds.get("note") == ONE_RUN:
            cells.append(f"– ({ONE_RUN})")
        else:
            cells.append(f"{_num(seeds['statistic'], 3)} ({_p(seeds['p_value'])}, {_p(seeds['p_holm'])})"
                         if seeds else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def significance_lines(answers, unit: str = "USD") -> list:
    """The answer and the test table for one window length (per data source when several).

    Parameters
    ----------
    answers : list of forecast.study.significance.Answer
        The answers at one window length (:attr:`forecast.study.summary.StudySummary.answers`).
    unit : str
        Price currency, for the MSE columns.

    Returns
    -------
    list of str
        Markdown lines.
    """
    if not answers:
        return ["Significance: no tests (no runs with predictions at this window length).", ""]
    lines = []
    for answer in answers:
        where = f" on {answer.data}" if len(answers) > 1 else ""
        lines += [f"**Answer at the {answer.level:.0%} level{where}.** Diebold-Mariano tests of equal "
                  f"accuracy ({DM_METHOD}) on each model's seed-mean forecast over {answer.days} test days; "
                  "p-values Holm-adjusted over "
                  f"the {len(answer.dm)} tests of this window (the MSE columns are those of the seed-mean "
                  "forecasts). A negative statistic means the model's error is the smaller one. "
                  "Beside each, Welch's t-test on the per-seed test "
                  f"{SEED_METRIC} asks whether the difference exceeds the spread over seeds.", ""]
        lines += [s for s in (_naive_sentence(answer), _fusion_sentence(answer), _classical_sentence(answer))
                  if s]
        lines += [""] + _table(answer, unit) + [""]
    return lines
