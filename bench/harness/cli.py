"""The ``bench`` sub-command of ``cli.py``: options, the run, the printed table and BENCHMARKS.md.

Sections (``--only``): ``kernels`` (NumPy against Numba kernels, in this process),
``train`` (train steps on both backends and their machine floor), ``torch`` (our
layers against their PyTorch peers), ``e2e`` (whole ``cli.py train`` runs),
``compile`` (compile cost) and ``study`` (runs per minute of a small ``compare`` on the
local pool and on Dask); all but ``kernels`` run each implementation in a process of
its own.
"""
from __future__ import annotations

import argparse
import sys

from bench.harness.markdown import format_table, write_markdown
from bench.harness.run import SECTIONS, run_benchmarks

__all__ = ["add_arguments", "run", "main"]


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
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``bench`` from parsed arguments: print the table, optionally write Markdown.

    This and :func:`add_arguments` are the interface ``cli.py`` loads.
    """
    # No thread limits here: kernels run as a library user runs them, and everything
    # else runs in worker processes that start from library defaults.
    report = run_benchmarks(quick=args.quick, smoke=args.smoke, sections=args.only)
    print(format_table(report))
    if args.write:
        path = write_markdown(report, args.write)
        print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry point: ``python -m bench.harness.cli [--quick] [--write PATH]``."""
    parser = add_arguments(argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
