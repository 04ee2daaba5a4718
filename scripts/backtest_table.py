#!/usr/bin/env python
"""Print the backtests below a folder as one Markdown table (the table of docs/study.md).

    python scripts/backtest_table.py results/study/backtest

One row per backtest folder (its ``backtest.json``): model, refit, data, target, the
pooled MAE relative to the naive forecast's, the number of folds the model beats naive
in, and the Diebold-Mariano test against naive (statistic, two-sided p).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(root: Path):
    for path in sorted(root.glob("*/backtest.json")):
        run = json.loads(path.read_text())
        folds = run["folds"]
        wins = sum(f["metrics"]["model"]["mae"] < f["metrics"]["naive"]["mae"] for f in folds)
        dm = next(t for t in run["tests"] if t["against"] == "naive" and t.get("step", 1) == 1)
        yield (run["model"], run["refit"], run["config"]["data"], run["config"]["target"],
               run["overall"]["model"]["rel_mae"], f"{wins} of {len(folds)}", dm["statistic"], dm["p_value"])


def main(argv) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    print("| model | refit | data | target | MAE / naive MAE | folds beating naive | DM statistic | p |")
    print("|---|---|---|---|---|---|---|---|")
    for model, refit, data, target, rel, wins, stat, p in rows(Path(argv[1])):
        print(f"| {model} | {refit} | {data} | {target} | {rel:.4f} | {wins} | {stat:.3f} | {p:.3g} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
