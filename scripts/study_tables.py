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

Per comparison, the prediction intervals: per source, model and naive baseline, the
coverage of the runs' interval method at its nominal level (mean over seeds, ± the seed
spread), the other method's beside it, the mean width and the width over the naive
forecast's, with the report's flags (coverage more than 3 points off the level; narrower
than naive at similar coverage), all from the ``intervals`` block of ``summary.json``.

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


#: How the interval table words the summary's ``versus_naive``.
VERSUS_NAIVE = {"narrower": "yes", "wider": "no (wider)", "covers less": "no (narrower, but covers less)"}


def interval_blocks(compare: Path) -> list[dict]:
    """The ``intervals`` block of each per-source ``summary.json`` (a summary written before
    intervals existed counts as ``{"recorded": False}``)."""
    out = []
    for path in summaries(compare):
        block = json.loads(path.read_text()).get("intervals") or {"recorded": False}
        out.append({"source": path.parent.name, **block})
    return out


def _stat(stat, spec: str, scale: float = 1.0, spread: bool = False, spec_std: str = ".2g") -> str:
    """``mean`` (``mean ± std`` with ``spread``) of a summary stat, scaled; ``–`` when missing."""
    if not stat or stat.get("mean") is None:
        return "–"
    cell = num(scale * stat["mean"], spec)
    if spread and stat.get("std") is not None:
        cell += f" ± {num(scale * stat['std'], spec_std)}"
    return cell


def interval_rows(compare: Path):
    """(source, model, coverage per method, width, width / naive width, narrower than naive)
    per row of the lowest window length of each source, formatted as the report does."""
    for block in interval_blocks(compare):
        if not block.get("recorded"):
            continue
        window = min((r["seq_len"] for r in block["rows"]), default=None)
        for row in block["rows"]:
            if row["seq_len"] != window:
                continue
            # One value for a naive forecast or a classical baseline (one run): no spread.
            spread = row["kind"] == "model" and row["n_seeds"] > 1
            cover = []
            for method in block["methods"]:
                cell = _stat(row["coverage"].get(method), ".1f", 100.0, spread, ".1f")
                flag = (row.get("off_level") or {}).get(method)
                cover.append(f"{cell} *{flag}*" if flag else cell)
            versus = ("reference" if row["model"] == "naive_last"
                      else VERSUS_NAIVE.get(row.get("versus_naive"), "–"))
            yield (block["source"], row["model"], cover, _stat(row["interval_width"], ".4g", spread=spread),
                   _stat(row["width_vs_naive"], ".3f", spread=spread), versus)


def print_interval_table(compare: Path) -> None:
    """Print a comparison's prediction-interval table (every source; see :func:`interval_rows`)."""
    blocks = interval_blocks(compare)
    recorded = [b for b in blocks if b.get("recorded")]
    print(f"\n### {compare.name}: prediction intervals\n")
    if not recorded:
        print("No prediction intervals were recorded (runs written before intervals existed).")
        return
    setups = {(b["level"], b["method"], b["calibration"]) for b in recorded}
    first = recorded[0]
    where = {"val": "the validation part"}.get(first["calibration"], first["calibration"])
    others = ", ".join(m for m in first["methods"] if m != first["method"]) or "no other method"
    tolerance = f"{first['tolerance_points']:g} points"
    print(f"{first['level']:g} % intervals by {first['method']} conformal inference (the runs' method), "
          f"calibrated on the errors of {where}; {others} beside it. Coverage in percent (mean ± std over "
          f"seeds); *below* / *above*: more than {tolerance} from {first['level']:g} %. Width: mean upper − "
          "lower in the source's currency. Narrower than naive at similar coverage: width / naive width below 1 "
          f"with a coverage at most {tolerance} under naive's.\n")
    if len(setups) > 1:
        print("Warning: the sources do not share one level, method and calibration: "
              + "; ".join(f"{b['source']}: {b['level']:g} % {b['method']}" for b in recorded) + "\n")
    missing = [b["source"] for b in blocks if not b.get("recorded")]
    if missing:
        print(f"No intervals recorded on {', '.join(missing)}.\n")
    methods = list(dict.fromkeys(m for b in recorded for m in b["methods"]))
    print("| source | model | " + " | ".join(f"coverage {m} (%)" for m in methods)
          + " | width | width / naive width | narrower than naive at similar coverage |")
    print("|---|---|" + "---|" * (len(methods) + 3))
    for source, model, cover, width, ratio, versus in interval_rows(compare):
        print(f"| {source} | {model} | " + " | ".join(cover + ["–"] * (len(methods) - len(cover)))
              + f" | {width} | {ratio} | {versus} |")


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
    for name in COMPARISONS:
        if summaries(out / name):
            print_interval_table(out / name)
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
