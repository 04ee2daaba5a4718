"""The cross-source view of a study over several data sources.

Each source is a study of its own (``<out>/sources/<name>/``, with its runs, summary and
report, see :func:`forecast.study.report.build_report`). This module puts them side by
side: for every window length, each model's mean rank over the sources (rank 1 = best
mean over seeds on that source, naive forecasts ranked too, ties share the mean of their
places), how many sources it beats the naive "tomorrow = today" forecast on, and on how
many of them that difference is significant (each source's Diebold-Mariano tests,
:mod:`forecast.study.significance`), and the prediction intervals of every (source,
model) in one table (:mod:`forecast.study.coverage_report`). It writes ``<out>/cross_source.csv`` and
``<out>/report.md``, from the run files alone.

It reads each source's :class:`forecast.study.summary.StudySummary` (its rows, places and
judged tests), reduces them once to a :class:`CrossSummary` (:func:`summarize_sources`)
and renders that.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from forecast.errors import UserInputError
from forecast.fileio import atomic_write_text
from forecast.metrics import HIGHER_IS_BETTER
from forecast.stats import SIGNIFICANCE_LEVEL
from forecast.study.coverage_report import cross_interval_lines
from forecast.study.figures import display_name
from forecast.study.report import fmt
from forecast.study.names import NAIVE_PREFIX, is_naive, model_rank
from forecast.study.runs import load_study
from forecast.study.significance import NAIVE
from forecast.study.summary import WINDOW_METRICS, StudySummary, summarize
from forecast.study.tuned import changed_text
from models.names import CLASSICAL

__all__ = ["NAIVE_LAST", "SourceSummary", "CrossRow", "CrossSummary", "load_sources", "cross_rows",
           "significance_counts", "summarize_sources", "write_cross_csv", "render_cross",
           "build_cross_report"]

#: The summary row of the last-value forecast ("tomorrow = today").
NAIVE_LAST = NAIVE_PREFIX + "last"


@dataclass(frozen=True)
class SourceSummary:
    """One source's study: its name (``--data`` spelling), folder and summary."""

    source: str
    folder: Path
    summary: StudySummary


@dataclass
class CrossRow:
    """One model (or naive baseline) at one window length, over every source.

    ``ranks[metric]`` holds its rank on each source where the metric is finite (in the
    order of the sources); ``beats[metric]`` is ``(wins, compared)``: on how many sources
    its mean beats the last-value forecast's, out of those where both are defined
    (``None`` for that forecast itself).
    """

    seq_len: int
    model: str
    ranks: dict
    beats: dict
    n_sources: int

    def mean_rank(self, metric: str) -> float:
        """Mean of the ranks over the sources where ``metric`` is defined (NaN: nowhere)."""
        values = self.ranks.get(metric) or []
        return sum(values) / len(values) if values else float("nan")


@dataclass(frozen=True)
class CrossSummary:
    """Everything the cross-source page states, computed once by :func:`summarize_sources`.

    Attributes
    ----------
    sources : tuple of SourceSummary
    rows : tuple of CrossRow
        Per window length: the models, then the naive baselines.
    counts : dict
        :func:`significance_counts` of the sources.
    """

    sources: tuple
    rows: tuple
    counts: dict


def _beats(metric: str, value: float, naive: float) -> bool:
    return value > naive if metric in HIGHER_IS_BETTER else value < naive


def load_sources(folders) -> list[SourceSummary]:
    """Summaries of the per-source studies in ``folders`` (those without runs are skipped)."""
    out = []
    for folder in folders:
        records = load_study(Path(folder) / "runs")
        if records:
            summary = summarize(records)
            out.append(SourceSummary(str(summary.config.get("data", Path(folder).name)), Path(folder),
                                     summary))
    return out


def significance_counts(answers_per_source) -> dict:
    """Diebold-Mariano verdicts counted over the sources.

    Parameters
    ----------
    answers_per_source : list of list of forecast.study.significance.Answer
        Each source's judged tests (:func:`forecast.study.significance.judge`).

    Returns
    -------
    dict
        ``{(seq_len, model, against, step): {"better": k, "worse": k, "no significant
        difference": k, "undefined": k}}`` where each count is a number of sources
        (:func:`forecast.study.significance.verdict`: Holm-adjusted within each source,
        at :data:`forecast.stats.SIGNIFICANCE_LEVEL`).
    """
    counts: dict = {}
    for answers in answers_per_source:
        for answer in answers:
            for test, verdict in zip(answer.dm, answer.verdicts):
                key = (test["seq_len"], test["model"], test["against"], test["step"])
                tally = counts.setdefault(key, {"better": 0, "worse": 0, "no significant difference": 0,
                                                "undefined": 0})
                tally[verdict] += 1
    return counts


def cross_rows(sources) -> list[CrossRow]:
    """Mean ranks and naive wins of every model at every window length, over ``sources``.

    Parameters
    ----------
    sources : list of SourceSummary

    Returns
    -------
    list of CrossRow
        On :data:`forecast.study.summary.WINDOW_METRICS` (the metrics each source's
        summary places its rows on).
    """
    metrics = WINDOW_METRICS
    seq_lens = sorted({L for s in sources for L in s.summary.seq_lens})
    rows = []
    for seq_len in seq_lens:
        per_source = [{r.model: r for r in s.summary.rows_at(seq_len)} for s in sources]
        places = [s.summary.ranks for s in sources]
        names = sorted({m for here in per_source for m in here},
                       key=lambda m: (is_naive(m), model_rank(m)))
        ranks = {m: {k: [] for k in metrics} for m in names}
        beats = {m: {k: (None if m == NAIVE_LAST else [0, 0]) for k in metrics} for m in names}
        for here, ranked in zip(per_source, places):
            for metric in metrics:
                placed = ranked.get((seq_len, metric), {})
                naive = here[NAIVE_LAST].mean(metric) if NAIVE_LAST in here else float("nan")
                for m, row in here.items():
                    if m in placed:
                        ranks[m][metric].append(placed[m])
                    value = row.mean(metric)
                    if m != NAIVE_LAST and math.isfinite(value) and math.isfinite(naive):
                        beats[m][metric][0] += _beats(metric, value, naive)
                        beats[m][metric][1] += 1
        for m in names:
            present = sum(m in here for here in per_source)
            wins = {k: (tuple(v) if v is not None else None) for k, v in beats[m].items()}
            rows.append(CrossRow(seq_len, m, ranks[m], wins, present))
    return rows


def summarize_sources(sources) -> CrossSummary:
    """Reduce the per-source summaries to what the cross-source page states, once.

    Parameters
    ----------
    sources : list of SourceSummary

    Returns
    -------
    CrossSummary
    """
    return CrossSummary(sources=tuple(sources), rows=tuple(cross_rows(sources)),
                        counts=significance_counts([[a for L in s.summary.seq_lens
                                                     for a in s.summary.answers[L]] for s in sources]))


def write_cross_csv(rows, path) -> Path:
    """``seq_len, model, n_sources`` and per metric ``_mean_rank``, ``_beats_naive`` (sources
    won) and ``_vs_naive`` (sources where both were defined); empty for the naive row."""
    metrics = WINDOW_METRICS
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["seq_len", "model", "n_sources"]
                    + [f"{m}_{what}" for m in metrics for what in ("mean_rank", "beats_naive", "vs_naive")])
    for row in rows:
        cells = [row.seq_len, row.model, row.n_sources]
        for metric in metrics:
            beats = row.beats.get(metric)
            cells += [repr(row.mean_rank(metric))] + (["", ""] if beats is None else list(beats))
        writer.writerow(cells)
    atomic_write_text(Path(path), buffer.getvalue())
    return Path(path)


def _wins(beats) -> str:
    wins, compared = beats
    return f"{wins} of {compared}" if compared else "– (undefined for naive)"


def _table(head, lines) -> list:
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(map(str, cells)) + " |" for cells in lines])


def _significance_table(counts: dict, seq_len: int, n_sources: int, label=display_name) -> list:
    """On how many sources each tested difference is significant, and which way
    (``label``: a model's name in the table)."""
    keys = [k for k in counts if k[0] == seq_len]
    if not keys:
        return []
    several_steps = len({k[3] for k in keys}) > 1
    chance = 1 - (1 - SIGNIFICANCE_LEVEL) ** n_sources
    lines = ["", f"Significance over the sources: each source's Diebold-Mariano test of the seed-mean "
                 f"forecast (squared error, Holm-adjusted within the source, {SIGNIFICANCE_LEVEL:g} level; "
                 "see each source's report). The counts are numbers of sources. Where no model differs "
                 f"from naive, one false 'significant' among {n_sources} independent sources still has "
                 f"a chance of {chance:.0%} per row.", ""]
    head = ["model", "against"] + (["step"] if several_steps else []) + [
        "significantly better", "significantly worse", "no significant difference", "undefined"]
    body = []
    for (_, model, against, step) in keys:
        tally = counts[(seq_len, model, against, step)]
        body.append([label(model), "naive: tomorrow = today" if against == NAIVE else label(against)]
                    + ([step] if several_steps else [])
                    + [tally["better"], tally["worse"], tally["no significant difference"], tally["undefined"]])
    return lines + _table(head, body)


def _tuned_names(sources, seq_len: int) -> dict:
    """``{model: label}`` at one window: a model tuned on some sources reads
    ``Mamba (tuned on 2 of 4 sources)``; every other name is the display name."""
    counts: dict = {}
    for s in sources:
        for (L, model) in s.summary.tuned:
            if L == seq_len:
                counts[model] = counts.get(model, 0) + 1
    n = len(sources)
    return {m: f"{display_name(m)} (tuned on {k} of {n} source{'s' if n != 1 else ''})"
            for m, k in counts.items()}


def _tuned_lines(sources, context: dict) -> list:
    """``## Tuned configurations``: per source and model, the best.json and what it changed."""
    body = []
    several = len({L for s in sources for (L, _) in s.summary.tuned}) > 1
    for s in sources:
        for (seq_len, model), record in s.summary.tuned.items():
            body.append([s.source] + ([seq_len] if several else [])
                        + [display_name(model), f"`{record.get('best_json', '?')}`", changed_text(record)])
    if not body:
        return []
    folder = ((context.get("study") or {}).get("tuned") or {}).get("folder")
    lines = ["", "## Tuned configurations", "",
             "These (source, model) pairs trained with the options `cli.py tune` found for them"
             + (f" (`compare --tuned {folder}`)" if folder else "") + ", over the shared options; the "
             "tables mark such models with the number of sources they were tuned on, and each source's "
             "report marks its tuned rows.", ""]
    return lines + _table(["source"] + (["window"] if several else []) + ["model", "best.json",
                                                                          "tuned options (shared → tuned)"], body)


def render_cross(cross: CrossSummary, out_dir, context: dict) -> str:
    """The Markdown of the cross-source report.

    Parameters
    ----------
    cross : CrossSummary
    out_dir : Path
        The study folder (links to the sources' reports are relative to it).
    context : dict
        See :func:`forecast.study.report.build_report`; the ``failed runs`` of its
        ``study``, ``command`` and ``environment`` are shown.

    Returns
    -------
    str
    """
    out_dir, sources, rows, metrics = Path(out_dir), cross.sources, cross.rows, WINDOW_METRICS
    n = len(sources)
    classical = sorted({r.model for r in rows if r.model in CLASSICAL}, key=model_rank)
    lines = [f"# Study over {n} data sources", "",
             "Each source is a study of its own, with its runs, summary and report; this page "
             "compares them. Rank 1 is the best mean over seeds on a source (naive forecasts are "
             "ranked too; tied means share the mean of their places). \"Beats naive\" counts the "
             "sources where the model's mean is better than the last-value forecast "
             "(tomorrow = today) on the same test days."
             + (f" The classical baselines ({', '.join(classical)}) are one run per source: they "
                "have no seed." if classical else ""), "", "## Sources", ""]
    lines += _table(["source", "report", "runs folder"],
                    [[s.source, f"[report]({(s.folder / 'report.md').relative_to(out_dir).as_posix()})",
                      (s.folder / "runs").relative_to(out_dir).as_posix()] for s in sources])
    lines += _tuned_lines(sources, context)
    for seq_len in sorted({r.seq_len for r in rows}):
        here = [r for r in rows if r.seq_len == seq_len]
        tuned = _tuned_names(sources, seq_len)

        def label(model):
            return tuned.get(model) or display_name(model)

        lines += ["", f"## Window {seq_len} days", "", "Mean rank over the sources (lower is better):", ""]
        lines += _table(["model", "sources"] + list(metrics),
                        [[label(r.model), r.n_sources] + [fmt(r.mean_rank(m), 3) for m in metrics]
                         for r in here])
        lines += ["", "Sources where the model beats the naive forecast (of those where both are "
                      "defined):", ""]
        lines += _table(["model"] + list(metrics),
                        [[label(r.model)] + [_wins(r.beats[m]) for m in metrics]
                         for r in here if r.model != NAIVE_LAST])
        lines += _significance_table(cross.counts, seq_len, n, label)
        lines += ["", "Rank per source (RMSE):", ""]
        names = [r.model for r in here]
        per_source = []
        for s in sources:
            by = {row.model: row for row in s.summary.rows_at(seq_len)}
            placed = s.summary.ranks.get((seq_len, "rmse"), {})
            per_source.append([s.source] + [f"{fmt(by[m].mean('rmse'))} ({fmt(placed[m], 3)})"
                                            + (", tuned" if by[m].tuned else "")
                                            if m in placed else "–" for m in names])
        lines += _table(["source"] + [display_name(m) for m in names], per_source)
    lines += cross_interval_lines(sources)
    failed = (context.get("study") or {}).get("failed runs") or {}
    if failed:
        lines += ["", "## Failed runs", "", "Not in the tables above; `--resume` trains them again.", ""]
        lines += _table(["run", "reason"], list(failed.items()))
    if context.get("command"):
        lines += ["", "## Command", "", "```", str(context["command"]), "```"]
    env = context.get("environment") or {}
    if env:
        lines += ["", "## Environment", ""] + _table(["item", "value"], list(env.items()))
    return "\n".join(lines).rstrip() + "\n"


def build_cross_report(out_dir, folders, context: dict | None = None) -> Path:
    """Write ``cross_source.csv`` and ``report.md`` in ``out_dir``; returns the report's path."""
    out_dir = Path(out_dir)
    sources = load_sources(folders)
    if not sources:
        raise UserInputError(f"no finished runs below {out_dir}")
    cross = summarize_sources(sources)
    write_cross_csv(cross.rows, out_dir / "cross_source.csv")
    path = out_dir / "report.md"
    atomic_write_text(path, render_cross(cross, out_dir, dict(context or {})))
    return path
