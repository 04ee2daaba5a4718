"""The ``bench`` sub-command of ``cli.py``: options, the run, the printed table and BENCHMARKS.md.

Sections (``--only``): ``kernels`` (NumPy against Numba kernels, in this process),
``train`` (train steps on both backends and their machine floor), ``torch`` (our
layers against their PyTorch peers), ``models`` (each forecaster's train step against
the same model assembled in PyTorch, eager and torch.compile), ``e2e`` (the README's
first command, ``cli.py train --model hybrid``, on an empty Numba cache and warm),
``compile`` (compile cost), ``study`` (runs per minute of a small ``compare`` on the
local pool and on Dask), ``longseq`` (our layers against their peers at L = 256 to
16,384: time per step, memory per step) and ``ltsf`` (the long-horizon forecaster's train
step at lookback 96/336/720 x horizon 96/720 and one epoch of ETTh1, against the same model
assembled in PyTorch); all but ``kernels`` run each implementation in a process of its own.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.harness.markdown import format_table, write_markdown
from bench.harness.run import SECTIONS, Report, run_benchmarks

__all__ = ["add_arguments", "load_report", "main", "merge_sections", "run", "save_report"]


def _sections(text: str) -> tuple:
    """``--only``: comma-separated names from :data:`SECTIONS` (argparse reports a bad one)."""
    sections = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown or not sections:
        raise argparse.ArgumentTypeError(f"unknown section(s) {', '.join(unknown) or '(none given)'}; "
                                         f"choose from {', '.join(SECTIONS)}")
    return sections


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``bench`` to ``parser`` (for the cli.py registry)."""
    parser.add_argument("--quick", action="store_true",
                        help="fewer, shorter samples, float64 kernels only, no cold compiles")
    parser.add_argument("--write", metavar="PATH", default=None,
                        help="also write the result as Markdown (e.g. BENCHMARKS.md)")
    parser.add_argument("--only", type=_sections, default=SECTIONS,
                        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny shapes: checks the harness end to end, numbers are meaningless")
    parser.add_argument("--save", metavar="JSON", default=None,
                        help="also save the measurements as JSON (e.g. bench/report.json)")
    parser.add_argument("--update", metavar="JSON", default=None,
                        help="measure only the --only sections and merge them into the report saved in JSON "
                             "(written back there unless --save names another file); the other sections keep "
                             "their earlier measurements, and the page says when each was measured")
    parser.add_argument("--from", dest="from_json", metavar="JSON", default=None,
                        help="measure nothing: print (and --write) a report saved with --save, "
                             "e.g. after editing bench/bounds.md")
    return parser


def load_report(path) -> Report:
    """A report saved with ``--save``."""
    return Report(**json.loads(Path(path).read_text(encoding="utf-8")))


def save_report(report: Report, path) -> Path:
    """Write ``report`` as JSON to ``path`` (what ``--from`` reads back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def run(args: argparse.Namespace) -> int:
    """Run ``bench`` from parsed arguments: print the table, optionally write Markdown.

    This and :func:`add_arguments` are the interface ``cli.py`` loads.
    """
    # No thread limits here: kernels run as a library user runs them, and everything
    # else runs in worker processes that start from library defaults.
    saved = args.from_json or getattr(args, "update", None)
    if saved:
        try:
            report = load_report(saved)
        except (OSError, ValueError, TypeError) as exc:
            print(f"error: cannot read a saved bench report from {saved}: "
                  f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
            return 2
        if args.from_json and getattr(args, "update", None):
            print("error: --from measures nothing and --update measures: give one of them", file=sys.stderr)
            return 2
        if args.update:
            if report.smoke != args.smoke or report.quick != args.quick:
                print(f"error: {saved} was measured {_mode(report)}, this run would be {_mode(args)}: "
                      "merge only runs of one mode", file=sys.stderr)
                return 2
            report = merge_sections(report, run_benchmarks(quick=args.quick, smoke=args.smoke,
                                                           sections=args.only), args.only)
            args.save = args.save or saved
    else:
        report = run_benchmarks(quick=args.quick, smoke=args.smoke, sections=args.only)
    if args.save:
        print(f"saved {save_report(report, args.save)}")
    print(format_table(report))
    if args.write:
        path = write_markdown(report, args.write)
        print(f"wrote {path}")
    return 0


def _mode(x) -> str:
    return "with --smoke" if x.smoke else "with --quick" if x.quick else "in full"


def merge_sections(base: Report, new: Report, sections) -> Report:
    """``base`` with the rows of ``sections`` replaced by those of ``new`` (``cli.py bench --update``).

    Sections not in ``sections`` keep their rows; ``base.updated`` records when and on what
    load each merged section was measured, and the skipped notes of a merged section are
    the new run's.
    """
    for name in sections:
        setattr(base, name, getattr(new, name))
        base.updated[name] = {"measured": new.measured, "seconds": round(new.seconds),
                              "load average": f"{new.machine.get('load average at start (1/5/15 min)')} -> "
                                              f"{new.machine.get('load average at end (1/5/15 min)')}"}
    base.skipped = list(dict.fromkeys(base.skipped + new.skipped))
    base.seconds += new.seconds
    return base


def main(argv=None) -> int:
    """Stand-alone entry point: ``python -m bench.harness.cli [--quick] [--write PATH]``."""
    parser = add_arguments(argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
