#!/usr/bin/env python
"""Command line of the Mamba-GRU engine: ``train | evaluate | backtest | data`` (+ ``compare``, ``bench``).

Every sub-command is one :class:`Command` in :data:`COMMANDS`: a help line and either
two local functions or the name of a module providing ``add_arguments(parser)`` and
``run(args) -> int``. A module is imported only when its sub-command is the one being
run, so ``train`` does not pay for plotting or benchmarking imports.

Bad input of any kind (unknown option, impossible value, missing or broken file,
corrupt checkpoint) ends with one ``error: ...`` line on stderr and exit status 2:
library code raises :class:`forecast.errors.UserInputError`, :func:`main` prints it.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
from dataclasses import dataclass
from typing import Callable

# Importing NumPy & co. is deferred to the commands, so `--help` and usage errors are quick.


class UsageError(Exception):
    """A command-line syntax error (reported like any other bad input)."""


class Parser(argparse.ArgumentParser):
    """argparse, but errors become one line via :class:`UsageError` instead of usage + exit."""

    def error(self, message):  # noqa: D401 - argparse API
        raise UsageError(f"{self.prog}: {message} (see --help)")

    def parse_known_args(self, args=None, namespace=None):
        """Parse; with ``--config FILE``, the file's options become the defaults first.

        A command offering ``--config`` sets the default ``_config_defaults`` (a function
        from the path to ``{dest: value}``). Parsing twice, the second time over the
        file's defaults, lets every option typed anywhere on the line override the file.
        """
        loader = self.get_default("_config_defaults")
        if loader is not None:
            args = list(sys.argv[1:] if args is None else args)
            first, _ = super().parse_known_args(args, argparse.Namespace(**vars(namespace or argparse.Namespace())))
            if isinstance(getattr(first, "config", None), str):
                self.set_defaults(**loader(first.config))
        return super().parse_known_args(args, namespace)


@dataclass(frozen=True)
class Command:
    """A sub-command: ``help`` plus either local functions or a module name."""

    help: str
    add_arguments: Callable | None = None
    run: Callable | None = None
    module: str | None = None

    def load(self) -> tuple[Callable, Callable]:
        """``(add_arguments, run)``, importing the module when there is one."""
        if self.module is None:
            return self.add_arguments, self.run
        mod = importlib.import_module(self.module)
        return mod.add_arguments, mod.run


# -- train -------------------------------------------------------------------------------

def _default_help(name: str) -> str:
    """``default 60; ltsf 96``: an option's default under each protocol."""
    from forecast.config import protocol_defaults

    def shown(value):
        return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)

    stock, ltsf = protocol_defaults("stock")[name], protocol_defaults("ltsf")[name]
    if ltsf is None:
        return f"default {shown(stock)}; stock protocol only"
    if stock is None:
        return f"default {shown(ltsf)}; --protocol ltsf only"
    return f"default {shown(stock)}; under --protocol ltsf {shown(ltsf)}"


def add_train_arguments(p: argparse.ArgumentParser, models=None) -> None:
    """Options of ``train`` (defaults from :class:`forecast.config.RunConfig`); ``models``:
    the ``--model`` choices (default: the neural models).

    Options whose default depends on ``--protocol`` default to None here and are
    resolved by :meth:`RunConfig.validate`, so giving one the other protocol lacks is an
    error rather than silently ignored.
    """
    from engine.backend import BACKENDS
    from forecast.config import DTYPES, LINEAR_INITS
    from forecast.config import RunConfig
    from forecast.config_file import train_defaults
    from forecast.ltsf.protocol import PROTOCOLS
    from models.longhorizon import CHANNEL_MODES, INSTANCE_NORMS
    from models.names import FUSIONS, MODEL_NAMES

    d = RunConfig.defaults()
    p.add_argument("--protocol", choices=PROTOCOLS, default=d["protocol"],
                   help="'stock': one price series, price-unit metrics beside naive; 'ltsf': the "
                        "long-horizon benchmark protocol (ETT, Exchange, dated CSVs: fixed borders, "
                        "standard scaler per channel, all channels in and out, MSE/MAE on the "
                        "standardised scale beside Repeat and a linear map) (default %(default)s)")
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=models or MODEL_NAMES, default=d["model"], help="default %(default)s")
    g.add_argument("--backend", choices=BACKENDS, default=d["backend"],
                   help="time-loop kernels (default %(default)s; set the default with MAMBA_GRU_BACKEND)")
    g.add_argument("--hidden", type=int, default=None, help="model width (" + _default_help("hidden") + ")")
    g.add_argument("--d-state", type=int, default=d["d_state"], help="Mamba state size (default %(default)s)")
    g.add_argument("--layers", type=int, default=None, help="blocks per branch (" + _default_help("layers") + ")")
    g.add_argument("--fusion", choices=FUSIONS, default=d["fusion"], help="hybrid fusion (default %(default)s)")
    g.add_argument("--dtype", choices=DTYPES, default=None, help=_default_help("dtype"))
    g.add_argument("--channels", choices=CHANNEL_MODES, default=None,
                   help="each channel its own series through shared weights, or all channels in every "
                        "token (" + _default_help("channels") + ")")
    g.add_argument("--seg-len", type=int, default=None,
                   help="steps per token; must divide --seq-len (" + _default_help("seg_len") + ")")
    g.add_argument("--norm", choices=INSTANCE_NORMS, default=None,
                   help="instance normalisation: take each window's last value, mean, or mean and std "
                        "(revin) out per channel and put them back into the forecast (" + _default_help("norm") + ")")
    g.add_argument("--linear-path", action=argparse.BooleanOptionalAction, default=None,
                   help="add a linear window-to-horizon map to the encoder's forecast ("
                        + _default_help("linear_path") + ")")
    g.add_argument("--linear-init", choices=LINEAR_INITS, default=None,
                   help="start the linear path at a random draw, or at the least-squares map of the "
                        "training windows with the encoder's head at zero (" + _default_help("linear_init") + ")")
    add_data_arguments(p, d)
    p.add_argument("--config", default=None, metavar="FILE",
                   help="JSON of run options (e.g. the best.json of 'tune'); options given here override it")
    p.set_defaults(_config_defaults=train_defaults)
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=None, help=_default_help("epochs"))
    t.add_argument("--batch-size", type=int, default=None, help=_default_help("batch_size"))
    t.add_argument("--lr", type=float, default=None, help="peak learning rate (" + _default_help("lr") + ")")
    t.add_argument("--weight-decay", type=float, default=None,
                   help="AdamW decoupled decay (" + _default_help("weight_decay") + ")")
    t.add_argument("--clip", type=float, default=d["clip"], help="max gradient norm, 0 = off (default %(default)s)")
    t.add_argument("--patience", type=int, default=None,
                   help="early-stopping patience in epochs, 0 = off (" + _default_help("patience") + ")")
    t.add_argument("--warmup", type=int, default=None, help="warm-up epochs (" + _default_help("warmup") + ")")
    t.add_argument("--seed", type=int, default=d["seed"], help="default %(default)s")
    p.add_argument("--out", default=None, help="output folder (default results/<model>-<timestamp>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_data_arguments(p: argparse.ArgumentParser, d: dict) -> None:
    """Data and window options, shared by ``train``."""
    from forecast.data import SCALERS, TARGETS, WINDOW_NORMS

    g = p.add_argument_group("data")
    g.add_argument("--data", default=d["data"],
                   help="sample:TICKER (AAPL, MSFT, IBM, GOOG), yahoo:TICKER or a CSV path; under "
                        "--protocol ltsf ett:ETTh1, ett:ETTh2, ltsf:exchange or a dated CSV "
                        "(default %(default)s)")
    g.add_argument("--start", default=None, help="first date, inclusive (Yahoo default 2010-01-01); stock only")
    g.add_argument("--end", default=None, help="last date, inclusive (Yahoo default 2023-12-31); stock only")
    g.add_argument("--features", default=None,
                   help="comma-separated, from open,high,low,close,volume,return (" + _default_help("features") + ")")
    g.add_argument("--target", choices=TARGETS, default=None,
                   help="next close or next log return (" + _default_help("target") + ")")
    g.add_argument("--seq-len", type=int, default=None, help="input window in rows (" + _default_help("seq_len") + ")")
    g.add_argument("--horizon", type=int, default=None, help="rows predicted (" + _default_help("horizon") + ")")
    g.add_argument("--split", default=None,
                   help="train,validation fractions; the rest is test (" + _default_help("split") + ")")
    g.add_argument("--window-norm", choices=WINDOW_NORMS, default=None,
                   help="per-window normalisation: 'last' expresses each window relative to its last "
                        "input close (prices x/p0-1, volume log((v+1)/(window mean+1)), a close target "
                        "y/p0-1; predictions p0*(1+pred)), so test prices outside the training range "
                        "need no extrapolation; 'none' feeds raw values (" + _default_help("window_norm") + ")")
    g.add_argument("--scaler", choices=SCALERS, default=None,
                   help="fitted on the training part after --window-norm (" + _default_help("scaler") + ")")


def add_train_command_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``train``: :func:`add_train_arguments` plus ``--resume``."""
    add_train_arguments(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted run of --out DIR from its last finished epoch (its state "
                        "is in DIR.partial); options left out are the run's own, options given must equal them")


def _typed_train_options(argv) -> set[str]:
    """Destinations of the ``train`` options typed in ``argv`` (not left at their defaults).

    Parsed again into a namespace pre-filled with a marker: argparse sets a default only
    where the namespace has no value yet, so what still holds the marker was not typed.
    """
    parser = Parser(prog="cli.py train")
    add_train_command_arguments(parser)
    marker = object()
    names = vars(parser.parse_args([]))
    tokens = list(argv)
    rest = tokens[tokens.index("train") + 1:] if "train" in tokens else tokens
    typed = parser.parse_args(rest, namespace=argparse.Namespace(**{k: marker for k in names}))
    return {k for k, v in vars(typed).items() if v is not marker}


def run_train(args) -> int:
    """``train``: one run (:func:`forecast.api.train`), its files in ``--out``, a summary table on stdout."""
    from forecast import api
    from forecast.config import RunConfig

    fields = {f.name for f in dataclasses.fields(RunConfig)}
    options = {k: v for k, v in vars(args).items() if k in fields}
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out DIR, the folder of the interrupted run")
        # Only the options typed again are checked against the run's; the rest are its own.
        typed = _typed_train_options(getattr(args, "_argv", ["train"])) & fields
        run = api.train(resume=True, progress=not args.quiet, **{k: options[k] for k in typed | {"out"}})
    else:
        run = api.train(progress=not args.quiet, **options)
    print(format_summary(run.raw))
    return 0


def metrics_table(columns) -> list[str]:
    """Lines of a metric-by-forecast table; ``columns`` is ``[(name, metrics dict), ...]``."""
    from forecast.metrics import METRIC_NAMES

    # The intervals' coverage and width when every column has them (stock runs since intervals).
    names = METRIC_NAMES + tuple(k for k in ("coverage", "interval_width") if all(k in m for _, m in columns))
    width = max(len(n) for n in names) + 2
    lines = ["".ljust(width) + "".join(name.rjust(14) for name, _ in columns)]
    for n in names:
        lines.append(n.ljust(width) + "".join(_fmt(m.get(n)).rjust(14) for _, m in columns))
    return lines


def format_series_summary(result: dict, part: str = "test") -> str:
    """The long-horizon protocol's table: model, Repeat and the linear map, MSE and MAE
    (``part``: the part the metrics are of; ``evaluate`` may score another than test)."""
    metrics, data, cfg, training = result["metrics"], result["data"], result["config"], result["training"]
    windows = data["split"][part]
    lines = [f"{cfg['model']} on {data.get('spec', cfg['data'])}, --protocol ltsf, lookback {cfg['seq_len']}, "
             f"horizon {cfg['horizon']}: {metrics['test_windows']} {part} windows (targets "
             f"{windows['first_target']} to {windows['last_target']}), standardised scale",
             f"{'':10}{'mse':>10}{'mae':>10}"]
    for name in ("test", "repeat", "linear"):
        label = "model" if name == "test" else name
        lines.append(f"{label:10}{metrics[name]['mse']:10.4f}{metrics[name]['mae']:10.4f}")
    if training.get("best_epoch") is not None or training.get("epochs_run"):
        lines.append(f"best epoch {training['best_epoch']} of {training['epochs_run']} run; "
                     f"{result['seconds']:.1f} s; outputs in {result['out_dir']}")
    return "\n".join(lines)


def format_summary(result: dict) -> str:
    """Model-versus-baselines table plus one line on the run."""
    metrics = result["metrics"]
    if metrics.get("protocol") == "ltsf":
        return format_series_summary(result)
    data, training, cfg = result["data"], result["training"], result["config"]
    columns = [("model", metrics["test"]), ("naive", metrics["naive"])]
    if "drift" in metrics:
        columns.append(("drift", metrics["drift"]))
    lines = [f"{cfg['model']} on {data.get('spec', cfg['data'])}: test {data['split']['test']['first_date']} to "
             f"{data['split']['test']['last_date']} ({data['split']['test']['windows']} windows), prices in "
             "source units"]
    lines += metrics_table(columns)
    if "intervals" in metrics:
        iv = metrics["intervals"]
        lines.append(f"intervals: {iv['level']:g}% {iv['method']} conformal, calibrated on the {iv['calibration']} "
                     f"part ({iv['calibration_windows']} windows); coverage = share of test days inside")
    stop = {"completed": "all epochs", "early_stopping": "early stopping",
            "non_finite": "stopped: non-finite loss"}.get(training["stop_reason"], training["stop_reason"])
    lines.append(f"best epoch {training['best_epoch']} of {training['epochs_run']} run ({stop}); "
                 f"{result['seconds']:.1f} s; outputs in {result['out_dir']}")
    return "\n".join(lines)


def _fmt(value) -> str:
    # None is NaN read back from JSON: undefined, e.g. the direction accuracy of a
    # forecast that calls no direction.
    if value is None or value != value:
        return "undefined"
    return f"{value:.4g}"


# -- evaluate ----------------------------------------------------------------------------

def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``evaluate``."""
    from engine.backend import BACKENDS
    from forecast.data.windows import PARTS

    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz written by train")
    p.add_argument("--data", default=None, help="another source (default: the run's own data)")
    p.add_argument("--start", default=None, help="first date, inclusive")
    p.add_argument("--end", default=None, help="last date, inclusive")
    p.add_argument("--part", choices=PARTS, default="test", help="default %(default)s")
    p.add_argument("--backend", choices=BACKENDS, default=None, help="default: the run's")
    p.add_argument("--out", default=None, help="also write the metrics to this JSON file")


def run_evaluate(args) -> int:
    """``evaluate``: metrics of a saved model, printed and optionally written."""
    from forecast import api
    from forecast.fileio import atomic_write_json

    res = api.evaluate(args.checkpoint, data=args.data, start=args.start, end=args.end, part=args.part,
                       backend=args.backend).raw
    if res["metrics"].get("protocol") == "ltsf":
        summary = {"metrics": res["metrics"], "data": res["data"], "config": res["config"],
                   "training": {}, "seconds": 0.0, "out_dir": args.out}
        text = format_series_summary(summary, res["part"]).splitlines()
    else:
        part = res["data"]["split"][res["part"]]
        summary = {"metrics": res["metrics"], "data": res["data"], "training": {
            "best_epoch": None, "epochs_run": 0, "stop_reason": "completed"}, "config": res["config"],
            "seconds": 0.0, "out_dir": args.out}
        text = format_summary(summary).splitlines()[:-1]     # no line on a training
        text[0] = (f"{res['config']['model']} on {res['data'].get('spec')}: {res['part']} part "
                   f"{part['first_date']} to {part['last_date']} ({part['windows']} windows)")
    print("\n".join(text))
    if args.out:
        atomic_write_json(args.out, {**res["metrics"], "part": res["part"], "data": res["data"]})
        print(f"metrics written to {args.out}")
    return 0


# -- backtest ----------------------------------------------------------------------------

def add_backtest_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``backtest``: those of ``train`` plus the folds."""
    from forecast.backtest import DEFAULT_FINETUNE_EPOCHS, REFITS
    from models.names import CLASSICAL, MODEL_NAMES

    add_train_arguments(p, models=(*MODEL_NAMES, *CLASSICAL))   # + statsforecast's baselines
    g = p.add_argument_group("walk-forward backtest")
    g.add_argument("--folds", type=int, default=5,
                   help="consecutive folds the test part is cut into; the model is trained on the "
                        "past before each (default %(default)s)")
    g.add_argument("--refit", choices=REFITS, default=REFITS[0],
                   help="before each fold: 'full' trains a fresh model on the fold's past, 'finetune' "
                        "continues from the previous fold's weights (default %(default)s)")
    g.add_argument("--finetune-epochs", type=int, default=DEFAULT_FINETUNE_EPOCHS,
                   help="epochs per fold after the first with --refit finetune (default %(default)s)")


def run_backtest(args) -> int:
    """``backtest``: walk-forward folds over the test part, files in ``--out``, a summary."""
    from forecast import api
    from forecast.config import RunConfig

    fields = {f.name for f in dataclasses.fields(RunConfig)}
    options = {k: v for k, v in vars(args).items() if k in fields}
    result = api.backtest(folds=args.folds, refit=args.refit, finetune_epochs=args.finetune_epochs,
                          progress=not args.quiet, **options).raw
    print(format_backtest(result))
    return 0


def format_backtest(result: dict) -> str:
    """Overall table, one line per fold and the Diebold-Mariano tests of a backtest."""
    folds, overall = result["folds"], result["overall"]
    lines = [f"{result['model']} on {result['data'].get('spec')}: walk-forward backtest, {result['n_folds']} "
             f"folds from {folds[0]['first_date']} to {folds[-1]['last_date']}, refit {result['refit']}; "
             "all folds pooled, prices in source units"]
    lines += metrics_table([("model", overall["model"]), ("naive", overall["naive"]),
                            ("drift", overall["drift"])])
    for f in folds:
        m = f["metrics"]
        fitted = f["training"].get("fitted")     # a classical baseline: fitted on the training rows
        upto = f"fitted to {f['train']['last_date']}" if fitted else f"trained to {f['val']['last_date']}"
        how = fitted or f"best epoch {f['training']['best_epoch']} of {f['training']['epochs_run']}"
        lines.append(f"fold {f['fold']}: {f['first_date']} to {f['last_date']} ({f['windows']} windows, {upto}): "
                     f"MAE {_fmt(m['model']['mae'])} vs naive "
                     f"{_fmt(m['naive']['mae'])} (MAE / naive MAE {_fmt(m['model']['rel_mae'])}); {how}")
    if "intervals" in overall:
        iv = overall["intervals"]
        lines.append(f"{iv['level']:g}% {iv['method']} conformal intervals (each fold calibrated on its validation "
                     f"part): coverage {_fmt(overall['model'].get('coverage'))} (naive "
                     f"{_fmt(overall['naive'].get('coverage'))}), mean width {_fmt(overall['model'].get('interval_width'))}"
                     f" (naive {_fmt(overall['naive'].get('interval_width'))})")
    for t in result["tests"]:
        step = f" step {t['step']}" if any(u["step"] > 1 for u in result["tests"]) else ""
        lines.append(f"Diebold-Mariano vs {t['against']}{step}: statistic {_fmt(t['statistic'])}, "
                     f"p {_fmt(t['p_value'])} (negative: the model's squared error is smaller)")
    lines.append(f"{result['seconds']:.1f} s; outputs in {result['out_dir']}")
    return "\n".join(lines)


# -- data --------------------------------------------------------------------------------

def add_data_command_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``data``."""
    p.add_argument("source", help="sample:TICKER, yahoo:TICKER or a CSV path")
    p.add_argument("--start", default=None, help="first date, inclusive (Yahoo default 2010-01-01)")
    p.add_argument("--end", default=None, help="last date, inclusive (Yahoo default 2023-12-31)")
    p.add_argument("--refresh", action="store_true", help="Yahoo: download even if cached")
    p.add_argument("--json", action="store_true", help="print the description as JSON")


def run_data(args) -> int:
    """``data``: fetch (and cache), then describe a source (a price frame or a benchmark series)."""
    from forecast.data import describe_frame, load_source
    from forecast.data.series import is_series_source, load_series
    from forecast.errors import UserInputError

    series = is_series_source(args.source)
    if series:
        # A benchmark series is used whole, with the protocol's fixed borders: no cut.
        if args.start or args.end:
            raise UserInputError(f"--start/--end do not apply to {args.source}: "
                                 "a benchmark series is always used whole")
        _, desc = load_series(args.source)
    else:
        frame, info = load_source(args.source, args.start, args.end, refresh=args.refresh)
        desc = {**info, **describe_frame(frame)}
    if args.json:
        print(json.dumps(desc, indent=2))
        return 0
    print(f"source    {desc['spec']}")
    print(f"rows      {desc['rows']}")
    print(f"dates     {desc['first_date']} to {desc['last_date']}")
    print(f"columns   {', '.join(desc['columns'])}")
    if series:
        print(f"sha256    {desc['sha256']}")
    else:
        print(f"NaN       {sum(desc['nan_counts'].values())} "
              f"({', '.join(f'{k} {v}' for k, v in desc['nan_counts'].items() if v) or 'none'})")
    if "bundled" in desc:
        print(f"file      {desc['bundled']} (bundled)")
    if "cache" in desc:
        how = "served from the cache" if desc.get("from_cache") else "downloaded"
        print(f"cache     {desc['cache']} ({how})")
    if "path" in desc:
        print(f"file      {desc['path']}")
    return 0


# -- registry ----------------------------------------------------------------------------

COMMANDS: dict[str, Command] = {
    "train": Command("train one model and evaluate it on the test part",
                     add_train_command_arguments, run_train),
    "evaluate": Command("re-evaluate a saved checkpoint", add_evaluate_arguments, run_evaluate),
    "backtest": Command("walk-forward backtest: retrain before each fold of the test part",
                        add_backtest_arguments, run_backtest),
    "data": Command("fetch (and cache) a data source and describe it",
                    add_data_command_arguments, run_data),
    "compare": Command("compare the four models over seeds", module="forecast.study.compare"),
    "bench": Command("benchmark numpy vs numba kernels", module="bench.harness.cli"),
    "tune": Command("search hyper-parameters with Optuna on the validation loss", module="forecast.tune.command"),
    "predict": Command("forecast the periods after the data's last row, with conformal intervals",
                       module="forecast.predict"),
    "export": Command("write a checkpoint's weights and configuration as a safetensors file for PyTorch",
                      module="forecast.export"),
}


def build_parser(selected: str | None = None) -> Parser:
    """The argument parser; only ``selected``'s options are loaded (None: none, for --help)."""
    parser = Parser(prog="cli.py", description="Mamba, minGRU, GRU and a hybrid for daily stock prices.")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, cmd in COMMANDS.items():
        sub = subs.add_parser(name, help=cmd.help, description=cmd.help)
        if name == selected:
            add_arguments, run = cmd.load()
            add_arguments(sub)
            sub.set_defaults(_run=run)
    return parser


def _selected_command(argv: list[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token if token in COMMANDS else None
    return None


def main(argv=None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from forecast.errors import UserInputError

    try:
        parser = build_parser(_selected_command(argv))
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version exit through here
            return int(exc.code or 0)
        run = getattr(args, "_run", None)
        if run is None:
            parser.print_help(sys.stderr)
            return 2
        args._argv = argv   # what was typed, for options that must tell typed from default
        return int(run(args) or 0)
    except (UsageError, UserInputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
