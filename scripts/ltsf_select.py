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

The selection that fixed the defaults in ``forecast/ltsf/protocol.py`` is in
docs/benchmarks.md, with its commands.
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


def main(argv=None) -> int:
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
