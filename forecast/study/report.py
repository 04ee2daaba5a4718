"""The Markdown report of a comparison study, built from the files of its runs.

:func:`build_report` reads ``<out>/runs``, summarises them once
(:func:`forecast.study.summary.summarize`) and renders that summary: ``summary.csv``,
``summary.json``, the figures (``figures/*.png``) and ``report.md``. Every number and
every verdict in the report comes from the run files through the summary; nothing is
written in advance, so the report can be rebuilt from a finished study at any time.
"""
from __future__ import annotations

import math
from pathlib import Path

from forecast.errors import UserInputError
from forecast.fileio import atomic_write_text
from forecast.metrics import HIGHER_IS_BETTER, METRIC_LABELS
from forecast.stats import SIGNIFICANCE_LEVEL
from forecast.study import figures
from forecast.study.coverage import intervals_json
from forecast.study.significance import TESTS_NOTE
from forecast.study.runs import load_study
from forecast.study.significance_report import significance_lines
from forecast.study.summary import SPREAD_RULE, summarize, write_summary_csv, write_summary_json
from forecast.study.tuned import changed_text
from models.names import CLASSICAL

__all__ = ["build_report", "render_report", "fmt", "fmt_stat", "metric_header", "figure_paths", "row_label",
           "tuned_section", "TUNED_MARK"]

FIGURES = ("convergence", "predictions", "fusion_weight", "errors", "metrics")
#: How the tables mark the rows of runs that used a best.json of ``compare --tuned``.
TUNED_MARK = "(tuned)"


def fmt(x: float, digits: int = 4) -> str:
    """A number as the report prints it: ``digits`` significant digits, exponent only
    for very large or very small magnitudes."""
    if x is None or not math.isfinite(x):
        return "–"      # undefined (e.g. the naive forecast's direction accuracy)
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-4):
        return f"{x:.{max(1, digits - 1)}e}"
    if abs(x) >= 10 ** digits:
        return f"{x:.0f}"
    return f"{x:.{digits}g}"


def fmt_stat(mean: float, std: float) -> str:
    """``mean ± std`` as the report prints it (the spread needs only 2 digits)."""
    return f"{fmt(mean)} ± {fmt(std, 2)}"


def metric_header(metric: str, unit: str) -> str:
    """Table header of a metric with its unit and an arrow for the better direction."""
    arrow = "↑" if metric in HIGHER_IS_BETTER else "↓"
    return f"{METRIC_LABELS.get(metric, metric).format(unit=unit)} {arrow}"


def figure_paths(out_dir, seq_len: int, several: bool) -> dict:
    """Where each figure of one window length goes (suffixed when there are several)."""
    sfx = f"_seq{seq_len}" if several else ""
    return {name: Path(out_dir) / "figures" / f"{i}_{name}{sfx}.png"
            for i, name in enumerate(FIGURES, start=1)}


# -- building --------------------------------------------------------------------------

def build_report(out_dir, context: dict | None = None, draw: bool = True) -> Path:
    """Summarise, plot and write the report of the study in ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        The study folder; its runs are read from ``out_dir/runs``.
    context : dict, optional
        What the run files do not know: ``command`` (str), ``study`` (options such as
        models, seeds, window lengths), ``environment`` (versions, CPU, jobs,
        threads), ``wall_seconds``.
    draw : bool
        False: tables and conclusions only, no figures (a rebuild in a second
        instead of several).

    Returns
    -------
    Path
        The written ``report.md``.
    """
    out_dir = Path(out_dir)
    context = dict(context or {})
    records = load_study(out_dir / "runs")
    if not records:
        raise UserInputError(f"no finished runs (metrics.json) below {out_dir / 'runs'}")
    summary = summarize(records)      # the one pass over the runs; everything below renders it
    write_summary_csv(summary.rows, out_dir / "summary.csv")
    write_summary_json(summary.rows, out_dir / "summary.json",
                       extra={"spread_rule": SPREAD_RULE, "significance_level": SIGNIFICANCE_LEVEL,
                              "tests_note": TESTS_NOTE, "tests": list(summary.tests),
                              "intervals": intervals_json(summary.intervals, summary.interval_rows,
                                                          str(summary.config.get("data", "?"))),
                              "environment": context.get("environment", {}),
                              "wall_seconds": context.get("wall_seconds")})
    for old in (out_dir / "figures").glob("*.png"):
        old.unlink()          # a rebuilt report must not link figures of an older study
    made = draw_figures(summary, out_dir) if draw else {}
    path = out_dir / "report.md"
    atomic_write_text(path, render_report(summary, made, context, out_dir))
    return path


def draw_figures(summary, out_dir) -> dict:
    """Draw every figure of every window length of ``summary`` below ``out_dir/figures``.

    Returns
    -------
    dict
        ``{seq_len: {figure name: Path or None}}`` (None: not drawn, see the figure).
    """
    several = len(summary.seq_lens) > 1
    made = {}
    for seq_len in summary.seq_lens:
        window, unit = summary.figures[seq_len], summary.unit
        paths = figure_paths(out_dir, seq_len, several)
        sub = f" — window {seq_len} days" if several else ""
        made[seq_len] = {
            "convergence": figures.plot_convergence(window, paths["convergence"], subtitle=sub),
            "predictions": figures.plot_predictions(window, paths["predictions"], unit=unit,
                                                    subtitle=sub),
            "fusion_weight": figures.plot_fusion_weight(window, paths["fusion_weight"],
                                                        subtitle=sub),
            "errors": figures.plot_errors(window, paths["errors"], unit=unit, subtitle=sub),
            "metrics": figures.plot_metrics(summary.rows_at(seq_len), paths["metrics"],
                                            summary.metrics, unit=unit, subtitle=sub),
        }
    return made


# -- rendering -------------------------------------------------------------------------

def _flatten(d: dict, prefix: str = "") -> list:
    items = []
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _flatten(value, name + ".")
        elif isinstance(value, (list, tuple)):
            items.append((name, ", ".join(str(v) for v in value)))
        else:
            items.append((name, value))
    return items


def _kv_table(pairs, head=("item", "value")) -> list:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in pairs]
    return lines


def _data_section(summary) -> list:
    """Source, period and the split (dates, rows, windows) of every window length."""
    lines = ["## Data", ""]
    infos = summary.data
    first = infos[summary.seq_lens[0]]
    cfg = summary.config
    pairs = [("source", first.get("spec", cfg.get("data", "?")))]
    for key in ("source", "ticker", "path"):
        if key in first and str(first[key]) not in str(pairs[0][1]):
            pairs.append((key, first[key]))
    if "first_date" in first:
        pairs.append(("period", f"{first['first_date']} to {first.get('last_date', '?')}"
                                f" ({first.get('rows', '?')} trading days)"))
    pairs.append(("split (train, validation fractions)", _value(cfg.get("split"))))
    lines += _kv_table(pairs)
    splits = {L: info.get("split") for L, info in infos.items() if info.get("split")}
    if splits:
        lines += ["", "| window | part | first date | last date | rows | windows |",
                  "|---|---|---|---|---|---|"]
        for L, split in splits.items():
            for part, d in split.items():
                lines.append(f"| {L} | {part} | {d.get('first_date', '?')} | "
                             f"{d.get('last_date', '?')} | {d.get('rows', '?')} | "
                             f"{d.get('windows', '?')} |")
    for seq_len in summary.mixed_data:
        lines += ["", f"**Warning:** runs with window {seq_len} saw different data; the "
                      "comparison is not like for like."]
    return lines + [""]


def _value(v) -> str:
    """A configuration value for a table cell."""
    if v is None:
        return "–"
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    return str(v)


def _config_section(config, context, tuned: bool = False) -> list:
    lines = ["## Configuration", ""]
    study = dict(context.get("study") or {})
    # The tuned runs have a section of their own; study.json keeps the full account.
    study.pop("tuned", None)
    if study:
        lines += _kv_table(_flatten(study), head=("study option", "value")) + [""]
    skip = {"model", "seed", "out", "seq_len"}
    pairs = [(k, _value(v)) for k, v in config.items() if k not in skip]
    pairs = [("fusion (hybrid only)" if k == "fusion" else k, v) for k, v in pairs]
    head = ("training option (every run but the tuned ones)" if tuned
            else "training option (same for every run)", "value")
    lines += _kv_table(pairs, head=head)
    if context.get("command"):
        lines += ["", "Command:", "", "```", str(context["command"]), "```"]
    return lines + [""]


def row_label(row) -> str:
    """A row's name in the tables: the model's, with ``(tuned)`` when its runs used a
    best.json of ``compare --tuned``."""
    return figures.display_name(row.model) + (f" {TUNED_MARK}" if getattr(row, "tuned", None) else "")


def tuned_section(summary, context: dict | None = None) -> list:
    """``## Tuned configurations``: per model (and window length, when several) the
    best.json its runs used and the options it changed; nothing without tuned rows."""
    if not summary.tuned:
        return []
    source = summary.config.get("data", "?")
    several = len(summary.seq_lens) > 1
    folder = ((context or {}).get("study") or {}).get("tuned", {}).get("folder")
    lines = ["## Tuned configurations", "",
             f"Rows marked {TUNED_MARK} trained with the options `cli.py tune` found for them"
             + (f" (`compare --tuned {folder}`)" if folder else " (`compare --tuned`)")
             + ", over the shared options of the Configuration section; every other row used the "
             "shared options alone. The tuning searched the validation part only; the test days are "
             "the same for every row.", "",
             "| source | " + ("window | " if several else "") + "model | best.json | tuned options (shared → tuned) |",
             "|---|" + ("---|" if several else "") + "---|---|---|"]
    for (seq_len, model), record in summary.tuned.items():
        lines.append(f"| {source} | " + (f"{seq_len} | " if several else "")
                     + f"{figures.display_name(model)} | `{record.get('best_json', '?')}` | "
                     f"{changed_text(record)} |")
    return lines + [""]


def _cell(row, metric: str) -> str:
    """A row's mean ± std (the mean alone for a naive or classical baseline: one value,
    no seed spread)."""
    if row.kind == "naive" or row.classical:
        return fmt(row.mean(metric))
    return fmt_stat(row.mean(metric), row.std(metric))


def _results_table(summary, seq_len: int) -> list:
    """Mean ± std per model and metric; the best mean per metric (naive included) in bold."""
    metrics, unit = summary.metrics, summary.unit
    head = ["model"] + [metric_header(m, unit) for m in metrics] + ["epochs run", "s / epoch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary.rows_at(seq_len):
        cells = [row_label(row)]
        for metric in metrics:
            cell = _cell(row, metric)     # every row tied with the best is bold
            cells.append(f"**{cell}**" if row.model in summary.bests.get((seq_len, metric), ())
                         else cell)
        if row.kind == "model" and not row.classical:
            cells += [fmt_stat(row.mean("epochs"), row.std("epochs")),
                      fmt_stat(row.mean("epoch_seconds"), row.std("epoch_seconds"))]
        else:
            cells += ["–", "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _figure_lines(made: dict, out_dir: Path) -> list:
    captions = {
        "convergence": "Training and validation loss per epoch (mean over seeds, band = min–max)",
        "predictions": "Test predictions (seed mean) against the actual price, with a zoom "
                       "on the last 60 days",
        "fusion_weight": "Fusion weight of the hybrid (Mamba share) per epoch, one line per seed",
        "errors": "Distribution of test errors per model in price units, naive included",
        "metrics": "Test metrics per model, mean ± std over seeds; dashed lines = naive forecasts",
    }
    if not made:
        return ["Figures were not drawn for this report.", ""]
    lines = []
    for i, name in enumerate(FIGURES, start=1):
        path = made.get(name)
        if path is None:
            why = {"convergence": "no run logged a loss: classical baselines are fitted, not trained"
                   }.get(name, "no hybrid run logged a fusion weight")
            lines += [f"{i}. {captions[name]}: not drawn ({why}).", ""]
            continue
        rel = Path(path).relative_to(out_dir).as_posix()
        lines += [f"{i}. {captions[name]}.", "", f"![{captions[name]}]({rel})", ""]
    return lines


def _verdict_lines(summary, seq_len: int) -> list:
    """The per-metric verdict table, the naive check and the fusion answer."""
    conclusion, unit = summary.conclusions[seq_len], summary.unit
    by_name = {r.model: r for r in summary.rows_at(seq_len)}
    lines = ["Per metric: the best mean overall (naive forecasts and classical baselines included), "
             "the best trained model, and its gap to every other trained model against the spread "
             "over seeds. "
             f"Rule: a gap is larger than the seed spread when {SPREAD_RULE}.", "",
             "| metric | best overall | best trained model | gap / spread to the others "
             "(> means larger than the spread) | verdict |",
             "|---|---|---|---|---|"]
    for v in conclusion.verdicts:
        winner = by_name[v.best]
        tied = [m for m in summary.bests[(seq_len, v.metric)] if m != v.best]
        cells = [metric_header(v.metric, unit),
                 f"**{v.best}** ({fmt(winner.mean(v.metric))})"
                 + (f", tied with {', '.join(tied)}" if tied else "")]
        top = by_name.get(v.best_model) if v.best_model else None
        cells.append(f"{v.best_model} ({fmt(top.mean(v.metric))})" if top else "–")
        cells.append("; ".join(f"{g.other} {fmt(g.difference)} {'>' if g.separated else '≤'} "
                               f"{fmt(g.spread)}" for g in v.gaps) or "–")
        n_sep = v.n_separated
        if v.best_model is None:
            verdict = "no trained model in the study"
        elif not v.gaps:
            verdict = "only one trained model"
        elif n_sep == len(v.gaps):
            verdict = f"{v.best_model} distinguishable from all others"
        elif n_sep == 0:
            verdict = "not distinguishable (all gaps within the seed spread)"
        else:
            verdict = f"{v.best_model} distinguishable from {n_sep} of {len(v.gaps)}"
        if v.best_model is None:
            pass                # nothing trained to be beaten
        elif v.naive_best:
            verdict += "; the naive forecast beats every trained model"
        elif winner.classical:
            verdict += f"; the classical baseline {v.best} beats every trained model"
        cells.append(verdict)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if conclusion.beats_naive:
        lines.append("Smaller error than the naive forecast (tomorrow = today)? MAE / naive MAE "
                     "(rel_mae, mean over seeds) below 1 means yes on these test days; whether "
                     "the difference is beyond chance is what the significance tests say. "
                     "MASE is shown beside it: its scale is the naive error on the training "
                     "prices, so it is not a comparison with naive on the test days.")
        lines.append("")
        for model, beats in conclusion.beats_naive.items():
            row = by_name[model]
            name = model + (f" {TUNED_MARK}" if row.tuned else "")
            lines.append(f"- {name}: {_yes_no(beats)} (MAE / naive MAE {fmt(row.mean('rel_mae'))}, "
                         f"MASE {fmt(row.mean('mase'))})")
        lines.append("")
    lines += _fusion_lines(conclusion)
    return lines


def _yes_no(flag) -> str:
    return {True: "yes", False: "no", None: "unknown"}[flag]


def _fusion_lines(conclusion) -> list:
    if not conclusion.fusion:
        return ["Fusion question: not answered (the hybrid and at least one of its branches "
                "must both be in the study)."]
    parts = [t.part for t in conclusion.tallies]
    lines = [f"Does fusing help? The hybrid against {' and '.join(parts)}:", ""]
    for t in conclusion.tallies:
        lines.append(f"- vs {t.part}: better mean on {len(t.wins)} of {len(t.metrics)} metrics"
                     f" ({', '.join(t.wins) or 'none'}); better beyond the seed spread on "
                     f"{len(t.clear_wins)} ({', '.join(t.clear_wins) or 'none'}); worse beyond the "
                     f"seed spread on {len(t.clear_losses)} ({', '.join(t.clear_losses) or 'none'}).")
    beyond_all = conclusion.beyond_all
    lines += ["", f"The hybrid beats every single branch by more than the seed spread on "
                  f"{len(beyond_all)} of {len(conclusion.fusion_metrics)} metrics"
                  f"{': ' + ', '.join(beyond_all) if beyond_all else ''}."]
    return lines


def _window_table(summary) -> list:
    """Per window length and metric: every model's mean ± std, best in bold, hybrid's rank."""
    models = list(dict.fromkeys(r.model for r in summary.rows))
    tuned = {m for (_, m) in summary.tuned}
    head = (["window", "metric"] + [figures.display_name(m) + (f" {TUNED_MARK}" if m in tuned else "")
                                    for m in models] + ["hybrid rank"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for seq_len in summary.seq_lens:
        here = {r.model: r for r in summary.rows_at(seq_len)}
        for metric in summary.window_metrics:
            tied = summary.bests.get((seq_len, metric), ())
            # One bold cell per line: the first of the tied models in column order.
            best = next((m for m in models if m in tied), None)
            cells = [str(seq_len), metric_header(metric, summary.unit)]
            for m in models:
                if m not in here:
                    cells.append("–")
                    continue
                cell = _cell(here[m], metric)
                cells.append(f"**{cell}**" if m == best else cell)
            place = summary.hybrid_ranks.get((seq_len, metric))
            cells.append(f"{place[0]} of {place[1]}" if place else "–")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _environment_section(context) -> list:
    env = context.get("environment") or {}
    lines = ["## Environment", ""]
    if env:
        lines += _kv_table(_flatten(env))
    else:
        lines.append("Not recorded (report rebuilt from files only).")
    if context.get("wall_seconds") is not None:
        lines += ["", f"Wall time of the training (all runs, before this report was built): "
                      f"{fmt(context['wall_seconds'])} s."]
    return lines + [""]


def render_report(summary, made: dict, context: dict, out_dir) -> str:
    """The Markdown text of the report.

    Parameters
    ----------
    summary : forecast.study.summary.StudySummary
        The study, summarised once (:func:`forecast.study.summary.summarize`).
    made : dict
        ``{seq_len: {figure name: Path or None}}``.
    context : dict
        See :func:`build_report`.
    out_dir : Path
        The study folder (figure links are relative to it).

    Returns
    -------
    str
    """
    out_dir = Path(out_dir)
    seq_lens, unit = summary.seq_lens, summary.unit
    several = len(seq_lens) > 1
    classical = [m for m in summary.models if m in CLASSICAL]
    lines = ["# Ablation study: does fusing Mamba and minGRU help?", "",
             f"Models: {', '.join(summary.models)}; {summary.n_seeds} seed(s) each"
             + (f" ({', '.join(classical)}: one run each, fitted by statsforecast on the training "
                "part; a classical baseline has no seed)" if classical else "")
             + f"; window length(s): {', '.join(map(str, seq_lens))} days. Test metrics are in original "
             f"price units ({unit}); ± is the sample standard deviation over seeds; naive forecasts do "
             "not depend on the seed. Bold marks the best mean of each metric.", ""]
    if summary.tuned:
        names = ", ".join(dict.fromkeys(m for (_, m) in summary.tuned))
        lines += [f"**Tuned rows:** {names} trained with a configuration of `cli.py tune` (marked "
                  f"{TUNED_MARK} in the tables; see Tuned configurations); the other rows used the shared "
                  "options.", ""]
    lines += _data_section(summary)
    lines += _config_section(summary.config, context, tuned=bool(summary.tuned))
    lines += tuned_section(summary, context)
    lines += ["## Results", ""]
    for seq_len in seq_lens:
        if several:
            lines += [f"### Window {seq_len} days", ""]
        lines += _results_table(summary, seq_len) + [""]
        lines += ["#### Figures" if several else "### Figures", ""]
        lines += _figure_lines(made.get(seq_len, {}), out_dir)
    if several:
        lines += ["### Hybrid against the others per window length", ""]
        lines += _window_table(summary) + [""]
    # Here, not at the top: coverage_report renders with this module's fmt and row marks.
    from forecast.study.coverage_report import interval_lines
    lines += interval_lines(summary)
    lines += ["## Conclusion", "",
              "Computed from the run files by forecast/study/significance.py (the answer, from "
              "significance tests) and forecast/study/summary.py (means against the seed "
              "spread); nothing here is written by hand.", ""]
    for seq_len in seq_lens:
        if several:
            lines += [f"### Window {seq_len} days", ""]
        lines += significance_lines(summary.answers[seq_len], unit)
        lines += _verdict_lines(summary, seq_len) + [""]
    lines += _environment_section(context)
    return "\n".join(lines).rstrip() + "\n"
