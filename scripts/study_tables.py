#!/usr/bin/env python
"""Print the tables of docs/study.md from the folder scripts/study.sh wrote.

    python scripts/study_tables.py results/study

For each comparison (``compare-return``, ``compare-close``): one row per source and
model with the Diebold-Mariano test of the seed-mean forecast against the naive forecast
and, for the hybrid, against each branch (statistic, p, Holm-adjusted p). Then one row
per walk-forward backtest (``backtest/*/backtest.json``): the pooled MAE relative to the
naive forecast's, the folds in which the model beats naive, and the Diebold-Mariano test
against naive. Nothing is computed here that the runs did not write.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def dm_rows(compare: Path):
    """(source, model, against, MSE model, MSE against, statistic, p, p Holm) per DM test."""
    for summary in sorted(compare.glob("sources/*/summary.json")):
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


def main(argv) -> int:
    if len(argv) != 2 or not Path(argv[1]).is_dir():
        print("usage: python scripts/study_tables.py OUT (the folder scripts/study.sh wrote)", file=sys.stderr)
        return 2
    out = Path(argv[1])
    for compare in (out / "compare-return", out / "compare-close"):
        print(f"\n### {compare.name}: Diebold-Mariano tests (squared error, seed-mean forecast)\n")
        print("| source | model | against | MSE model | MSE against | DM statistic | p | p Holm |")
        print("|---|---|---|---|---|---|---|---|")
        for data, model, against, mm, ma, stat, p, ph in dm_rows(compare):
            print(f"| {data} | {model} | {against} | {mm:.4g} | {ma:.4g} | {stat:.2f} | {p:.3g} | {ph:.3g} |")
    print("\n### Walk-forward backtests\n")
    print("| target | data | model | refit | MAE / naive MAE | folds beating naive | DM statistic | p |")
    print("|---|---|---|---|---|---|---|---|")
    rows = sorted(backtest_rows(out / "backtest"), key=lambda r: (r[0] != "return",) + r[:4])
    for target, data, model, refit, rel, wins, stat, p in rows:
        print(f"| {target} | {data} | {model} | {refit} | {rel:.4f} | {wins} | {stat:.2f} | {p:.3g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
