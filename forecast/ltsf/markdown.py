"""``benchmark.md``: the long-horizon benchmark report rendered from its summary.

:func:`render_markdown` writes every table and sentence from the
:class:`forecast.ltsf.summary.BenchmarkSummary` alone: the answer paragraph (assembled from
the verdicts and standings), the results tables beside the published figures, the
Diebold-Mariano tests, test MSE against lookback, training, how the study was run and the
sources.
"""
from __future__ import annotations

import json
import math

from forecast.fileio import to_jsonable
from forecast.ltsf.labels import dataset_label, row_label
from forecast.ltsf.published import HORIZONS, MAIN_LOOKBACK, REPEAT, published_name
from forecast.ltsf.runs import NAN
from forecast.ltsf.summary import (BASELINE, DM_NOTE, LINEAR_OURS, MODEL, PUBLISHED, REPEAT_OURS, VS_BRANCH,
                                   BenchmarkSummary, Entry, Standing, Verdict)
from forecast.study.tuned import changed_text
from models.names import BRANCHES, HYBRID

__all__ = ["render_markdown", "TUNED_MARK"]

#: How the tables mark a model whose runs used a best.json of ``compare --tuned``.
TUNED_MARK = "(tuned)"

_AVERAGE = "average"


def _num(x: float, digits: int = 3) -> str:
    return f"{x:.{digits}f}" if x is not None and math.isfinite(x) else "–"


def _p(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.2e}" if x < 1e-3 else f"{x:.3f}"


def _source_numbers(summary: BenchmarkSummary) -> dict:
    """Citation number per source text, in order of first appearance."""
    numbers: dict = {}
    for e in summary.entries:
        if e.group == PUBLISHED and e.source not in numbers:
            numbers[e.source] = len(numbers) + 1
    return numbers


def _table_rows(summary: BenchmarkSummary, dataset: str, lookback: int, columns) -> list[tuple]:
    """``(label, n seeds text, {column: entry})`` for every row of one table."""
    numbers = _source_numbers(summary)
    rows = []

    def cells(group, name, lb):
        return {c: summary.entry(dataset, lb, None if c == _AVERAGE else c, group, name) for c in columns}

    for model in summary.models:
        found = cells(MODEL, model, lookback)
        if any(found.values()):
            n = sorted({e.n_seeds for c, e in found.items() if e is not None and c != _AVERAGE})
            rows.append((_tuned_label(model, found), "/".join(map(str, n)), found))
    for name in (REPEAT_OURS, LINEAR_OURS):
        rows.append((row_label(BASELINE, name), "–", cells(BASELINE, name, lookback)))
    seen = []
    for e in summary.published(dataset, lookback):
        if (e.name, e.lookback) not in seen:
            seen.append((e.name, e.lookback))
            label = f"{e.name} (published) [{numbers[e.source]}]" if e.name == REPEAT else \
                f"{e.name} [{numbers[e.source]}]"
            rows.append((label, "–", cells(PUBLISHED, e.name, e.lookback)))
    return rows


def _tuned_label(model: str, found: dict) -> str:
    """A model's row label, with ``(tuned)`` when its runs used a best.json of ``compare
    --tuned`` at every horizon of the row, ``(tuned at H = 96)`` when at some only."""
    label = row_label(MODEL, model)
    horizons = [c for c, e in found.items() if e is not None and c != _AVERAGE]
    tuned = [c for c in horizons if found[c].tuned]
    if not tuned:
        return label
    return f"{label} {TUNED_MARK}" if tuned == horizons else f"{label} (tuned at H = {', '.join(map(str, tuned))})"


def _model_label(summary: BenchmarkSummary, dataset, lookback, horizon, model) -> str:
    """A model's label in a per-horizon row (tests, training): ``(tuned)`` when tuned there."""
    entry = summary.entry(dataset, lookback, horizon, MODEL, model)
    return row_label(MODEL, model) + (f" {TUNED_MARK}" if entry is not None and entry.tuned else "")


def _tuned_section(summary: BenchmarkSummary) -> list[str]:
    """``## Tuned configurations``: which models trained with a best.json, where, and what it changed."""
    if not summary.tuned:
        return []
    folder = ((summary.context.get("study") or {}).get("tuned") or {}).get("folder")
    lines = ["## Tuned configurations", "",
             f"Rows marked {TUNED_MARK} (or \"tuned at H = ...\") trained with the options `cli.py tune` found "
             "for that dataset, model and horizon" + (f" (`compare --tuned {folder}`)" if folder else "")
             + ", over the study's shared options; every other row used the shared options. An average over "
             "horizons that mixes tuned and untuned horizons is marked as tuned at those horizons.", "",
             "| dataset | lookback | H | model | best.json | tuned options (shared → tuned) |",
             "|---|---|---|---|---|---|"]
    for t in summary.tuned:
        record = {"changed": t.changed, "not_applied": t.not_applied}
        lines.append(f"| {dataset_label(t.dataset)} | {t.lookback} | {t.horizon} | {row_label(MODEL, t.model)} | "
                     f"`{t.best_json}` | {changed_text(record)} |")
    return lines + [""]


def _best(rows, column, metric) -> float:
    """Lowest value of a column, at the printed precision (published figures have three
    decimals, so a tie there is a tie)."""
    values = [round(getattr(r[2][column], metric), 3) for r in rows
              if r[2][column] is not None and math.isfinite(getattr(r[2][column], metric))]
    return min(values) if values else NAN


def _cell(entry: Entry | None, best: tuple[float, float]) -> str:
    if entry is None:
        return "–"
    parts = []
    for metric, low in zip(("mse", "mae"), best):
        value = getattr(entry, metric)
        text = _num(value)
        if math.isfinite(value) and round(value, 3) == low:
            text = f"**{text}**"
        spread = getattr(entry, metric + "_std")
        parts.append(f"{text} ± {_num(spread)}" if math.isfinite(spread) else text)
    return " / ".join(parts)


def _main_table(summary: BenchmarkSummary, dataset: str, lookback: int) -> list[str]:
    columns = sorted(set(HORIZONS) | set(summary.horizons)) + [_AVERAGE]
    rows = _table_rows(summary, dataset, lookback, columns)
    best = {c: (_best(rows, c, "mse"), _best(rows, c, "mae")) for c in columns}
    lines = [f"### {dataset_label(dataset)}, lookback {lookback}", "",
             "| forecast | seeds | " + " | ".join(f"H = {c}" if c != _AVERAGE else c for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for label, n, found in rows:
        lines.append(f"| {label} | {n} | " + " | ".join(_cell(found[c], best[c]) for c in columns) + " |")
    windows = {h: e.test_windows for h in summary.horizons
               if (e := summary.entry(dataset, lookback, h, BASELINE, REPEAT_OURS)) is not None}
    lines += ["", "Test windows (ours, every window): "
              + ", ".join(f"H = {h}: {n}" for h, n in windows.items()) + "."]
    return lines + [""]


def _at(hs, of) -> str:
    """Which horizons: "none", "all 4", or "H = 96, 336"."""
    if not hs:
        return "none"
    if len(of) > 1 and set(hs) == set(of):
        return f"all {len(of)}"
    return "H = " + ", ".join(str(h) for h in hs)


def _verdict_clause(v: Verdict, head: str) -> str:
    """``head`` ("Mamba lower", "lower than Mamba") at k of n horizons (which), and where
    the test says so."""
    k, n = len(v.lower), len(v.horizons)
    text = f"{head} at {k} of {n} horizon{'s' if n != 1 else ''}"
    if 0 < k < n:
        text += f" ({_at(v.lower, v.horizons)})"
    if v.tested:
        text += (f", significantly lower at {_at(v.significantly_lower, v.horizons)}, significantly higher at "
                 f"{_at(v.significantly_higher, v.horizons)}")
    return text


def _verdict_lines(summary: BenchmarkSummary, verdicts: list[Verdict]) -> list[str]:
    """Three bullets: the hybrid against its branches, every model against the linear
    map, every model against Repeat (compared by mean only: no test was asked for)."""
    def ordered(against):
        return sorted((v for v in verdicts if v.against in against), key=lambda v: (
            summary.models.index(v.model), against.index(v.against)))

    lines = []
    branch = ordered(BRANCHES)
    if branch:
        lines.append(f"- {row_label(MODEL, HYBRID)} against its branches: " + "; ".join(
            _verdict_clause(v, "lower MSE than " + row_label(MODEL, v.against)) for v in branch) + ".")
    for against, how in ((LINEAR_OURS, "our linear map"), (REPEAT_OURS, "our Repeat (mean test MSE, not tested)")):
        found = ordered((against,))
        if found:
            lines.append(f"- Against {how}: " + "; ".join(
                _verdict_clause(v, row_label(MODEL, v.model) + " lower") for v in found) + ".")
    return lines


def _standing_sentence(s: Standing) -> str:
    scope = "the four-horizon average" if s.horizon is None else f"horizon {s.horizon}"
    return (f"{dataset_label(s.dataset)}, {scope}: our best model is {row_label(MODEL, s.model)} "
            f"(MSE {_num(s.mse)}); the best published lookback-{MAIN_LOOKBACK} entry is "
            f"{s.published_model} ({_num(s.published_mse)}); ours ranks {s.rank} of {s.of} "
            f"(the published lookback-{MAIN_LOOKBACK} models and ours).")


def _answer(summary: BenchmarkSummary) -> list[str]:
    """The answer paragraph: facts from the verdicts and standings, nothing else."""
    level = f"{summary.level:g}"
    lines = ["## Answer", "",
             f"Generated from the runs. \"Significantly\" means a Holm-adjusted Diebold-Mariano p-value "
             f"below {level} (per-window losses; see the caveat under the tests).", ""]
    if summary.tuned:
        where = "; ".join(dict.fromkeys(f"{row_label(MODEL, t.model)} on {dataset_label(t.dataset)} at H = {t.horizon}"
                                        for t in summary.tuned))
        lines += [f"**Tuned rows:** {where} trained with a configuration of `cli.py tune` (see Tuned "
                  "configurations); the verdicts below compare them as they are.", ""]
    for dataset in summary.datasets:
        for lookback in summary.lookbacks:
            here = [v for v in summary.verdicts if v.dataset == dataset and v.lookback == lookback]
            if not here:
                continue
            lines += [f"**{dataset_label(dataset)}, lookback {lookback}.**"] + _verdict_lines(summary, here) + [""]
    lines.append(f"**Against the published table (lookback {MAIN_LOOKBACK}).**")
    for dataset in summary.datasets:
        found = [s for s in summary.standings if s.dataset == dataset]
        if found:
            lines += [f"- {_standing_sentence(s)}" for s in found]
        elif published_name(dataset) is None:
            lines.append(f"- {dataset_label(dataset)}: no published figures for this dataset.")
        else:
            lines.append(f"- {dataset_label(dataset)}: no like-for-like comparison; the study has no "
                         f"lookback-{MAIN_LOOKBACK} runs of this dataset.")
    return lines + [""]


def _tests_table(summary: BenchmarkSummary) -> list[str]:
    lines = ["## Diebold-Mariano tests", "", DM_NOTE, "",
             "| dataset | lookback | H | test | windows | mean MSE difference | DM statistic | p | p (Holm) | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for t in sorted(summary.tests, key=lambda t: (summary.datasets.index(t.dataset), t.lookback, t.kind != VS_BRANCH,
                                                  summary.models.index(t.model), t.against, t.horizon)):
        against = (_model_label(summary, t.dataset, t.lookback, t.horizon, t.against) if t.against in BRANCHES
                   else row_label(BASELINE, t.against))
        if not math.isfinite(t.p_holm):
            verdict = "undefined" + (f" ({t.note})" if t.note else "")
        elif t.p_holm < summary.level:
            verdict = "model lower" if t.statistic < 0 else "model higher"
        else:
            verdict = "no significant difference"
        lines.append(f"| {dataset_label(t.dataset)} | {t.lookback} | {t.horizon} | "
                     f"{_model_label(summary, t.dataset, t.lookback, t.horizon, t.model)} vs "
                     f"{against} | {t.n_windows} | {t.mean_difference:+.4f} | {_num(t.statistic, 2)} | "
                     f"{_p(t.p_value)} | {_p(t.p_holm)} | {verdict} |")
    return lines + [""]


def _lookback_section(summary: BenchmarkSummary) -> list[str]:
    if len(summary.lookbacks) < 2:
        return []
    lines = ["## Test MSE against lookback", "",
             "Mean ± std over seeds; the linear map is refitted at each lookback, Repeat does not depend on it.", "",
             "| dataset | H | forecast | " + " | ".join(f"L = {L}" for L in summary.lookbacks) + " |",
             "|---|---|---|" + "---|" * len(summary.lookbacks)]
    for dataset in summary.datasets:
        for horizon in summary.horizons:
            for group, name in [(MODEL, m) for m in summary.models] + [(BASELINE, LINEAR_OURS)]:
                found = [summary.entry(dataset, L, horizon, group, name) for L in summary.lookbacks]
                if not any(found):
                    continue
                cells = ["–" if e is None else (f"{_num(e.mse)} ± {_num(e.mse_std)}" if math.isfinite(e.mse_std)
                                                else _num(e.mse)) for e in found]
                tuned = f" {TUNED_MARK}" if any(e is not None and e.tuned for e in found) else ""
                lines.append(f"| {dataset_label(dataset)} | {horizon} | {row_label(group, name)}{tuned} | "
                             + " | ".join(cells) + " |")
    return lines + [""]


def _training_table(summary: BenchmarkSummary) -> list[str]:
    lines = ["## Training", "",
             "Means over seeds. Fusion weight: the hybrid's last logged weight of the Mamba branch, "
             "sigmoid(alpha) (0.5 = equal weights, 1 = Mamba only).", "",
             "| dataset | lookback | H | model | seeds | validation MSE | best epoch | seconds per run | fusion weight |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in summary.entries:
        if e.group == MODEL and e.horizon is not None:
            name = row_label(MODEL, e.name) + (f" {TUNED_MARK}" if e.tuned else "")
            lines.append(f"| {dataset_label(e.dataset)} | {e.lookback} | {e.horizon} | {name} | "
                         f"{e.n_seeds} | {_num(e.val_mse)} | {_num(e.best_epoch, 1)} | {_num(e.seconds, 1)} | "
                         f"{_num(e.fusion_weight)} |")
    return lines + [""]


def _wall(seconds) -> str:
    if seconds is None or not math.isfinite(float(seconds)):
        return "not recorded"
    s = float(seconds)
    return f"{s:.0f} s ({int(s // 3600)} h {int(s % 3600 // 60):02d} min)"


def _context_section(summary: BenchmarkSummary) -> list[str]:
    ctx = summary.context
    lines = ["## How this was run", "", f"- Wall time of the study: {_wall(ctx.get('wall_seconds'))}.",
             f"- Finished runs: {summary.n_runs}."]
    if ctx.get("command"):
        lines += ["", "```", str(ctx["command"]), "```"]
    for key in ("study", "environment"):
        if ctx.get(key):
            lines += ["", f"{key.capitalize()}:", "", "```json",
                      json.dumps(to_jsonable(ctx[key]), indent=2, sort_keys=True), "```"]
    if summary.skipped:
        lines += ["", f"Skipped run folders ({len(summary.skipped)}):", ""]
        lines += [f"- `{s}`" for s in summary.skipped]
    return lines + [""]


def render_markdown(summary: BenchmarkSummary, figures: dict | None = None) -> str:
    """``benchmark.md`` from the summary.

    Parameters
    ----------
    summary : BenchmarkSummary
    figures : dict, optional
        ``{title: path relative to the report}`` of the drawn figures, linked in order.
    """
    lines = ["# Long-horizon benchmark (`compare --protocol ltsf`)", "",
             "Test MSE / MAE on the standardised scale (scaler fitted on the training rows), every test "
             "window, step and channel, multivariate. Our models: mean ± std over seeds (std with ddof = 1, "
             "omitted for one seed). Repeat: the last input value for every step; linear map: the closed-form "
             "least-squares map from lookback to horizon, shared by the channels. Bold: the lowest value of "
             "each column among all rows, at three decimals. [n]: published figure, see Sources. Our figures "
             "use every test window; some published tables dropped the last incomplete test batch. Published averages "
             "are computed here from the four horizons and can differ from a paper's printed average in the "
             "last digit.", ""]
    lines += _answer(summary)
    lines += _tuned_section(summary)
    lines += ["## Results", ""]
    for dataset in summary.datasets:
        for lookback in summary.lookbacks:
            lines += _main_table(summary, dataset, lookback)
    for title, rel in (figures or {}).items():
        lines += [f"![{title}]({rel})", ""]
    lines += _tests_table(summary) + _lookback_section(summary) + _training_table(summary)
    lines += _context_section(summary)
    numbers = _source_numbers(summary)
    if numbers:
        lines += ["## Sources", ""] + [f"{k}. {src}" for src, k in numbers.items()] + [""]
    return "\n".join(lines)
