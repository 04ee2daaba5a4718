#!/usr/bin/env python
"""The compact MSE tables of docs/benchmarks.md, from a benchmark study's benchmark.csv.

    python scripts/ltsf_tables.py results/ltsf/benchmark.csv            # lookback-96 table
    python scripts/ltsf_tables.py results/ltsf-lookback/benchmark.csv --lookback

The first prints, per data set and horizon, our four models (mean over seeds, with the
spread where there are several), our linear map and Repeat, and the best published
lookback-96 entry of forecast/ltsf/published.csv; the second, MSE against lookback per
model for each data set and horizon.
"""
from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forecast.ltsf.published import load_published  # noqa: E402

MODELS = ("mamba", "mingru", "hybrid", "gru")


def _cell(row) -> str:
    if row is None:
        return "–"
    spread = f" ± {row.mse_std:.3f}" if row.n_seeds > 1 else ""
    return f"{row.mse:.3f}{spread}"


def horizon_table(frame: pd.DataFrame) -> str:
    """Markdown: data set x horizon rows, forecasts in columns (lookback 96)."""
    pub = load_published()
    pub = pub[(pub.lookback == 96) & (pub.model != "Repeat")]
    lines = ["| data | H | Mamba | minGRU | hybrid | GRU | linear map | Repeat | best published (lookback 96) |",
             "|---|---|---|---|---|---|---|---|---|"]
    frame = frame[frame.lookback == 96]
    for (name, horizon), group in frame.groupby(["dataset_name", "horizon"], sort=False):
        rows = {r.model: r for r in group.itertuples()}
        ours = [_cell(rows.get(m)) for m in MODELS]
        best = pub[(pub.dataset == name) & (pub.horizon == horizon)].sort_values("mse").head(1)
        published = f"{best.mse.iloc[0]:.3f} ({best.model.iloc[0]})" if len(best) else "–"
        lines.append(f"| {name} | {horizon} | " + " | ".join(ours)
                     + f" | {rows['linear'].mse:.3f} | {rows['repeat'].mse:.3f} | {published} |")
    return "\n".join(lines)


def lookback_table(frame: pd.DataFrame) -> str:
    """Markdown: data set x horizon x model rows, lookbacks in columns."""
    lookbacks = sorted(frame.lookback.unique())
    lines = ["| data | H | model | " + " | ".join(f"L = {lb}" for lb in lookbacks) + " |",
             "|---|---|---|" + "---|" * len(lookbacks)]
    models = [m for m in (*MODELS, "linear") if m in set(frame.model)]
    for (name, horizon), group in frame.groupby(["dataset_name", "horizon"], sort=False):
        for model in models:
            rows = {r.lookback: r for r in group[group.model == model].itertuples()}
            cells = [f"{rows[lb].mse:.3f}" if lb in rows else "–" for lb in lookbacks]
            lines.append(f"| {name} | {horizon} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv", help="a study's benchmark.csv")
    p.add_argument("--lookback", action="store_true", help="the lookback table instead")
    args = p.parse_args(argv)
    frame = pd.read_csv(args.csv)
    print(lookback_table(frame) if args.lookback else horizon_table(frame))
    return 0


if __name__ == "__main__":
    sys.exit(main())
