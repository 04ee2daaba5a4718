"""``cli.py tune``: argument parsing for :mod:`forecast.tune` (the search lives there).

Every run option of ``train`` is accepted with the same spelling; an option given here
is fixed for every trial and leaves the search space. ``--config FILE`` sets the
starting configuration (the first trial) without fixing anything.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from forecast.config import CHOICES, RunConfig, option_type
from forecast.ltsf.protocol import LTSF

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``tune`` to its sub-parser."""
    from forecast.tune.tuner import PRUNERS

    g = parser.add_argument_group("tuning")
    g.add_argument("--trials", type=int, default=20, help="trials to add to the study (default %(default)s)")
    g.add_argument("--timeout", type=float, default=None,
                   help="seconds after which no new trial starts; running ones finish (default: none)")
    g.add_argument("--space", action="append", default=[], metavar="NAME=SPEC",
                   help="narrow or extend the search space, once per option: NAME=LOW:HIGH (a range; "
                        "LOW:HIGH:log on a log scale), NAME=A,B,C (choices), NAME=VALUE (fixed); "
                        "--show-space prints the space")
    g.add_argument("--show-space", action="store_true", help="print the search space and exit")
    g.add_argument("--config", default=None, metavar="FILE",
                   help="JSON of run options to start from (the first trial); e.g. a best.json")
    g.add_argument("--pruner", choices=PRUNERS, default=PRUNERS[0],
                   help="stop hopeless trials from their validation loss per epoch (default %(default)s)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run trials on a Dask cluster: tcp://HOST:PORT or local[:N] (default: one at a "
                        "time in this process)")
    g.add_argument("--storage", default=None, metavar="URL",
                   help="an Optuna storage URL (e.g. postgresql://user@host/db) for a study shared by "
                        "several machines (default: a SQLite file study.db in --out)")
    g.add_argument("--study-name", default=None,
                   help="default <protocol>-<model>-<data>, e.g. stock-hybrid-sample:AAPL")
    g.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (default %(default)s)")
    g.add_argument("--out", default=None,
                   help="output folder; the same folder continues the same study (default results/tune-<model>)")
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    run_options = parser.add_argument_group("run options (as in 'train'; one given here is fixed, not tuned)")
    ltsf = RunConfig.defaults(LTSF)
    for name, default in RunConfig.defaults().items():
        if name == "out":
            continue
        kind = default if default is not None else ltsf.get(name)
        extra = {"choices": CHOICES[name]} if name in CHOICES else {}
        run_options.add_argument("--" + name.replace("_", "-"), dest=name, type=option_type(kind), default=None,
                                 **extra)


def run(args) -> int:
    """Run ``tune`` from parsed arguments; returns the exit status."""
    from forecast.config_file import read_config_file
    from forecast.tune.report import summary_lines
    from forecast.tune.tuner import plan_tune, run_tune

    typed = {name: getattr(args, name) for name in RunConfig.defaults()
             if name != "out" and getattr(args, name, None) is not None}
    config_file = read_config_file(args.config) if args.config else None
    plan = plan_tune(typed, config_file, args.space)
    if args.show_space:
        print(f"search space of {plan.base.model} under --protocol {plan.base.protocol} "
              f"(first trial in brackets):")
        for name, dim in plan.space.items():
            print(f"  {name:13} {dim.text()}  [{plan.start[name]}]")
        return 0
    summary = run_tune(plan, args.trials, timeout=args.timeout, scheduler=args.scheduler, storage=args.storage,
                       out=args.out, study_name=args.study_name, pruner=args.pruner,
                       sampler_seed=args.sampler_seed, progress=not args.quiet)
    print("\n".join(summary_lines(summary, Path(summary["out"]))))
    if summary["best trial"] is None:
        print("error: no trial completed; see the FAILED lines above", file=sys.stderr)
        return 1
    return 0
