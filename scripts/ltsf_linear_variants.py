#!/usr/bin/env python
"""Closed-form linear maps under each instance normalisation, on the long-horizon protocol.

The models of the benchmark start (``--linear-init lstsq``) from the least-squares map of
the normalised training windows; this prints that starting point's validation and test
MSE for every data set and horizon, beside the plain map of the benchmark table, so
docs/benchmarks.md can say how much the trained encoders add to their start.

    python scripts/ltsf_linear_variants.py [--data ett:ETTh1,ett:ETTh2,ltsf:exchange] [--seq-len 96]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from forecast.config import RunConfig  # noqa: E402
from forecast.ltsf.dataset import window_losses  # noqa: E402
from forecast.ltsf.protocol import HORIZONS  # noqa: E402
from forecast.pipeline import load_dataset  # noqa: E402
from models import build_model  # noqa: E402
from models.longhorizon import INSTANCE_NORMS  # noqa: E402


def start_forecast(dataset, norm: str, part: str) -> float:
    """MSE on ``part`` of the least-squares start of a model with instance norm ``norm``."""
    model = build_model("mingru", dataset.n_features, hidden_size=2, d_state=2, horizon=dataset.horizon,
                        backend="numpy", channels="independent", seq_len=dataset.seq_len,
                        seg_len=dataset.seq_len, norm=norm, linear_path=True)
    model.init_linear_path(*dataset.part("train"))      # the encoder's head is zero: its output is 0
    X, y = dataset.inputs(part), dataset.targets(part)
    pred = np.concatenate([model.forward(X[s:s + 256]) for s in range(0, len(X), 256)])
    return float(np.mean(window_losses(y, pred.reshape(y.shape))[0]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="ett:ETTh1,ett:ETTh2,ltsf:exchange")
    p.add_argument("--seq-len", type=int, default=96)
    args = p.parse_args(argv)
    print("| data | H | " + " | ".join(f"{n} val / test" for n in INSTANCE_NORMS) + " |")
    print("|---|---|" + "---|" * len(INSTANCE_NORMS))
    for data in args.data.split(","):
        for horizon in HORIZONS:
            cfg = RunConfig(protocol="ltsf", data=data, horizon=horizon, seq_len=args.seq_len,
                            backend="numpy").validate()
            dataset = load_dataset(cfg)
            cells = [f"{start_forecast(dataset, n, 'val'):.4f} / {start_forecast(dataset, n, 'test'):.4f}"
                     for n in INSTANCE_NORMS]
            print(f"| {data} | {horizon} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
