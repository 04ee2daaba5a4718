#!/usr/bin/env python
"""Print the tables of docs/study.md from the folder scripts/study.sh wrote.

    python scripts/study_tables.py results/study

For each comparison (``compare-return``, ``compare-close``): one row per source and
model, the classical baselines (``arima``, ``ets``, ``theta``) included, with the
Diebold-Mariano test of the seed-mean forecast against the naive forecast and, for the
hybrid, against each branch and each classical baseline (statistic, p, Holm-adjusted p;
``–`` where the test is undefined, e.g. a baseline whose forecast equals the naive one).
Then one row per walk-forward backtest (``backtest/*/backtest.json``, the classical
baselines' among them): the pooled MAE relative to the naive forecast's, the folds in which
the model beats naive, and the Diebold-Mariano test against naive.

When the study has a tuned comparison (``compare-<target>-tuned``, the optional second
stage of scripts/study.sh), a last table puts it beside its default one: per source and
model, the test MAE / naive MAE and the DM p-value against naive with the shared options
and with the tuned ones, and the options the best.json changed. Nothing is computed here
that the runs did not write.

A comparison folder of one source (``summary.json`` at its top) is read as well as one of
several (``sources/*/summary.json``).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

#: The comparisons of the study, in the order docs/study.md shows them.
COMPARISONS = ("compare-return", "compare-close")
#: Suffix of a comparison's tuned counterpart (scripts/study.sh, second stage).
TUNED_SUFFIX = "-tuned"


def summaries(compare: Path) -> list[Path]:
    """The per-source ``summary.json`` files of a comparison folder (one or several sources)."""
    several = sorted(compare.glob("sources/*/summary.json"))
    if several:
        return several
    return [compare / "summary.json"] if (compare / "summary.json").is_file() else []


def num(x, spec: str) -> str:
    """``x`` formatted with ``spec``; ``–`` when the value is missing or not finite."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def dm_rows(compare: Path):
    """(source, model, against, MSE model, MSE against, statistic, p, p Holm) per DM test."""
    for summary in summaries(compare):
        for t in json.loads(summary.read_text())["tests"]:
            if t["test"] == "diebold-mariano":
                yield (t["data"], t["model"], t["against"], t["mse_model"], t["mse_against"],
                       t["statistic"], t["p_value"], t["p_holm"])


def backtest_rows(root: Path):
    """(target, data, model, refit, MAE / naive MAE, folds beating naive, DM statistic, p)."""
    for path in sorted(root.glob("*/backtest.json")):
        run = json.loads(path.read_text())
        folds = run["folds"]
        wins = sum(f["metrics"]["model"]["mae"] < f["metrics"]["naive"]["mae"] for f in folds)
        dm = next(t for t in run["tests"] if t["against"] == "naive" and t.get("step", 1) == 1)
        yield (run["config"]["target"], run["config"]["data"], run["model"], run["refit"],
               run["overall"]["model"]["rel_mae"], f"{wins} of {len(folds)}", dm["statistic"], dm["p_value"])


def model_results(compare: Path) -> dict:
    """``{(source, model): {"rel_mae", "p", "p_holm", "tuned"}}`` of a comparison folder.

    ``rel_mae`` is the mean over seeds of the test MAE / naive MAE; ``p``, ``p_holm`` the DM
    test of the seed-mean forecast against naive (step 1); ``tuned`` the row's record of
    ``compare --tuned`` (None: shared options).
    """
    out = {}
    for path in summaries(compare):
        summary = json.loads(path.read_text())
        tests = {t["model"]: t for t in summary["tests"]
                 if t["test"] == "diebold-mariano" and t["against"] == "naive" and t.get("step", 1) == 1}
        source = next((t["data"] for t in summary["tests"]), path.parent.name)
        window = min((r["seq_len"] for r in summary["rows"]), default=None)
        for row in summary["rows"]:
            if row["kind"] != "model" or row["seq_len"] != window:
                continue
            test = tests.get(row["model"], {})
            out[(source, row["model"])] = {"rel_mae": (row.get("rel_mae") or {}).get("mean"),
                                           "p": test.get("p_value"), "p_holm": test.get("p_holm"),
                                           "tuned": row.get("tuned")}
    return out


def changed_text(record) -> str:
    """``hidden 16 → 32, lr 0.003 → 0.0012`` from a row's tuned record."""
    if not record:
        return "(no best.json: shared options)"
    changed = record.get("changed") or {}
    return ", ".join(f"{k} {v.get('shared')} → {v.get('tuned')}" for k, v in changed.items()) or "none"


def tuned_rows(default: Path, tuned: Path):
    """(source, model, rel default, rel tuned, p default, p tuned, options) for every
    (source, model) of the tuned comparison that the default one has too."""
    base, other = model_results(default), model_results(tuned)
    for key in sorted(other, key=lambda k: (k[0], MODEL_ORDER.get(k[1], 99), k[1])):
        if key in base:
            a, b = base[key], other[key]
            yield (*key, a["rel_mae"], b["rel_mae"], a["p"], b["p"], changed_text(b["tuned"]))


#: Table order of the models (the study's order, then the classical baselines).
MODEL_ORDER = {m: i for i, m in enumerate(("mamba", "mingru", "hybrid", "gru", "arima", "ets", "theta"))}


def print_dm_table(compare: Path) -> None:
    """Print a comparison's Diebold-Mariano table (every source, every test)."""
    print(f"\n### {compare.name}: Diebold-Mariano tests (squared error, seed-mean forecast)\n")
    print("| source | model | against | MSE model | MSE against | DM statistic | p | p Holm |")
    print("|---|---|---|---|---|---|---|---|")
    for data, model, against, mm, ma, stat, p, ph in dm_rows(compare):
        print(f"| {data} | {model} | {against} | {num(mm, '.4g')} | {num(ma, '.4g')} | {num(stat, '.2f')} | "
              f"{num(p, '.3g')} | {num(ph, '.3g')} |")


def print_tuned_table(default: Path, tuned: Path) -> None:
    """Print a tuned comparison beside its default one (see :func:`tuned_rows`)."""
    print(f"\n### {tuned.name} against {default.name}: tuned and default configurations\n")
    print("MAE / naive MAE: mean over seeds of the test MAE over the naive forecast's; p: DM test of the "
          "seed-mean forecast against naive, before Holm (the Holm families of the two comparisons differ).\n")
    print("| source | model | MAE / naive MAE default | MAE / naive MAE tuned | p default | p tuned | "
          "tuned options (shared → tuned) |")
    print("|---|---|---|---|---|---|---|")
    for data, model, rel_a, rel_b, p_a, p_b, options in tuned_rows(default, tuned):
        print(f"| {data} | {model} | {num(rel_a, '.4f')} | {num(rel_b, '.4f')} | {num(p_a, '.3g')} | "
              f"{num(p_b, '.3g')} | {options} |")


def main(argv) -> int:
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print("usage: python scripts/study_tables.py OUT (the folder scripts/study.sh wrote)", file=sys.stderr)
        return 2
    out = Path(argv[1])
    for name in COMPARISONS:
        if summaries(out / name):
            print_dm_table(out / name)
    print("\n### Walk-forward backtests\n")
    print("| target | data | model | refit | MAE / naive MAE | folds beating naive | DM statistic | p |")
    print("|---|---|---|---|---|---|---|---|")
    rows = sorted(backtest_rows(out / "backtest"), key=lambda r: (r[0] != "return",) + r[:4])
    for target, data, model, refit, rel, wins, stat, p in rows:
        print(f"| {target} | {data} | {model} | {refit} | {num(rel, '.4f')} | {wins} | {num(stat, '.2f')} | "
              f"{num(p, '.3g')} |")
    for name in COMPARISONS:
        default, tuned = out / name, out / (name + TUNED_SUFFIX)
        if summaries(default) and summaries(tuned):
            print_tuned_table(default, tuned)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
