#!/usr/bin/env python
"""Choose the long-horizon defaults on the validation part: train variants, print their
validation MSE, never look at the test part.

Each variant is a set of ``train`` options on top of the ``--protocol ltsf`` defaults;
every run trains on the training windows, early-stops on the validation windows, and
reports the validation MSE of its best epoch (and of the closed-form linear map on the
same windows, for scale). Results are appended to a JSON-lines file, so an interrupted
selection is resumed by running the same command again (finished variants are skipped).

Usage::

    python scripts/ltsf_select.py --data ett:ETTh1 --horizon 96 \\
        --variants '{"base": {}, "mean": {"norm": "mean"}}' --out results/select.jsonl

``python scripts/ltsf_select.py --table FILE`` prints the records as a table with the pick.
The selection that fixed the defaults in ``forecast/ltsf/protocol.py`` is in
docs/benchmarks.md (its records: docs/benchmarks/selection.jsonl).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forecast.config import RunConfig  # noqa: E402
from forecast.ltsf.run import evaluate_series_model  # noqa: E402
from forecast.pipeline import load_dataset, train_run  # noqa: E402


def finished(path: str) -> set:
    """``(data, horizon, variant)`` of the records already in ``path``."""
    if not os.path.exists(path):
        return set()
    with open(path, encoding="utf-8") as fh:
        return {(r["data"], r["horizon"], r["variant"]) for r in map(json.loads, fh) if r}


def table(path: str) -> str:
    """Markdown table of the validation MSE per variant and dataset, and the pick.

    The pick is the variant, among those run on every dataset, with the lowest mean of
    ``val / best val of that dataset``: one configuration for all data sets, none of
    which dominates the choice through the scale of its errors.
    """
    with open(path, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    datasets = list(dict.fromkeys(r["data"] for r in records))
    best = {d: min(r["val_mse"] for r in records if r["data"] == d) for d in datasets}
    cells: dict = {}
    for r in records:   # a later record of the same variant and data set wins (a re-run)
        cells.setdefault(r["variant"], {})[r["data"]] = (r["val_mse"],)
    gaps = {v: sum(c[d][0] / best[d] for d in datasets) / len(datasets)
            for v, c in cells.items() if all(d in c for d in datasets)}
    pick = min(gaps, key=gaps.get)
    lines = ["| variant | " + " | ".join(datasets) + " | mean val / best |",
             "|---|" + "---|" * (len(datasets) + 1)]
    for variant, c in cells.items():
        row = [f"{c[d][0]:.4f}" if d in c else "–" for d in datasets]
        gap = f"{gaps[variant]:.3f}" if variant in gaps else "–"
        name = f"**{variant}**" if variant == pick else variant
        lines.append(f"| {name} | " + " | ".join(row) + f" | {gap} |")
    lines.append("")
    lines.append(f"Pick: {pick} (lowest mean ratio to each data set's best validation MSE among the "
                 "variants run on every data set).")
    return "\n".join(lines)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) == 3 and sys.argv[1] == "--table":
        print(table(sys.argv[2]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="comma-separated sources (ett:ETTh1,...)")
    p.add_argument("--horizon", type=int, default=96)
    p.add_argument("--model", default="hybrid")
    p.add_argument("--variants", required=True, help='JSON: {"name": {option: value, ...}, ...}')
    p.add_argument("--out", required=True, help="JSON-lines file the records are appended to")
    p.add_argument("--backend", default="numba")
    args = p.parse_args(argv)
    variants = json.loads(args.variants)
    done = finished(args.out)
    for data in args.data.split(","):
        datasets = {}
        for name, options in variants.items():
            if (data, args.horizon, name) in done:
                continue
            options = dict({"model": args.model}, **options)
            cfg = RunConfig(protocol="ltsf", data=data, horizon=args.horizon, backend=args.backend,
                            **options).validate()
            key = (cfg.seq_len, cfg.horizon)
            if key not in datasets:
                datasets[key] = load_dataset(cfg)
            start = time.time()
            run = train_run(cfg, datasets[key], progress=False)
            linear, _ = evaluate_series_model(run.model, datasets[key], "val")
            record = {"data": data, "horizon": args.horizon, "variant": name, "options": options,
                      "val_mse": run.metrics["val"]["mse"], "val_mae": run.metrics["val"]["mae"],
                      "linear_val_mse": linear["linear"]["mse"], "best_epoch": run.fit.best_epoch,
                      "epochs_run": len(run.fit.history), "seconds": round(time.time() - start, 1),
                      "val_curve": [round(r["val_loss"], 4) for r in run.fit.history]}
            print(json.dumps(record), flush=True)
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
