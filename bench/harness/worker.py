"""A fresh process hosting one implementation: the harness's worker and a stand-alone timer.

Why a process per implementation: thread pools are per process and their settings
are read once, at load (OpenBLAS's spin timeout, libgomp's ``OMP_WAIT_POLICY``). Timed
inside the harness's process, PyTorch ran 9x slower than in a script of its own, so
every implementation runs in a process of its own, started from a clean environment
(:func:`bench.harness.client.clean_env`), as a user's script would run it.

Two ways to run it:

``python -m bench.harness.worker --serve``
    What the harness starts. Requests come pickled on stdin, replies go pickled to the
    original stdout (:mod:`bench.harness.protocol`); anything printed goes to stderr.

``python -m bench.harness.worker KIND NAME [options]``
    Stand-alone: build the implementation, make ``--warmup`` untimed steps, time
    ``--steps`` steps with ``time.perf_counter`` and print the median, e.g.::

        python -m bench.harness.worker layer torch.nn.GRU --threads 2 --dtype float32
        python -m bench.harness.worker layer GRULayer --backend numba --dtype float32
        python -m bench.harness.worker train hybrid --backend numba --dtype float64
        python -m bench.harness.worker floor hybrid --part gemm --dtype float64
        python -m bench.harness.worker model hybrid --backend numba --dtype float64
        python -m bench.harness.worker model hybrid --peer eager --threads 2 --dtype float64

    The harness's samples are taken the same way (``measure``), so this command
    reproduces a published figure (BENCHMARKS.md lists the command of every row).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback

from bench.harness.protocol import failure, ok, receive, send

__all__ = ["measure", "serve", "main"]


def measure(subject, calls: int, warmup: int = 1) -> list[float]:
    """``warmup`` untimed steps, then the seconds of each of ``calls`` timed steps."""
    for _ in range(warmup):
        subject.step()
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        subject.step()
        samples.append(time.perf_counter() - t0)
    return samples


def _handle(subjects: dict, req: dict) -> dict:
    from bench.harness.subjects import build_subject

    op = req.get("op")
    if op == "setup":
        subject = build_subject(req["spec"], req.get("state"))
        subjects[req["case"]] = subject
        return ok(op, info=dict(subject.info, pid=os.getpid()))
    subject = subjects[req["case"]]
    if op == "state":
        return ok(op, state=subject.state())
    if op == "outputs":
        return ok(op, arrays=tuple(subject.outputs()))
    if op == "warmup":
        t0 = time.perf_counter()
        measure(subject, 0, int(req.get("calls", 1)))
        return ok(op, seconds=time.perf_counter() - t0)
    if op == "step":
        return ok(op, seconds=measure(subject, 1, 0)[0])
    if op == "measure":
        return ok(op, samples=measure(subject, int(req["calls"]), int(req.get("warmup", 1))))
    if op == "share":
        return ok(op, share=float(subject.share()))
    raise ValueError(f"unknown op {op!r}")


def serve(inp, out) -> int:
    """Answer requests until ``exit`` or the end of ``inp`` (the harness has gone)."""
    subjects: dict = {}
    while True:
        try:
            req = receive(inp)
        except EOFError:
            return 0
        op = req.get("op") if isinstance(req, dict) else None
        if op == "exit":
            send(out, ok("exit"))
            return 0
        try:
            reply = _handle(subjects, req)
        except ImportError:
            reply = failure(op, traceback.format_exc(), kind="import")
        except Exception:   # the harness reports it, with the traceback
            reply = failure(op, traceback.format_exc())
        send(out, reply)


def _parser() -> argparse.ArgumentParser:
    from bench.harness.specs import NAMED_SIZES, PEER_MODES

    p = argparse.ArgumentParser(prog="python -m bench.harness.worker",
                                description="Time one implementation in this fresh process.")
    p.add_argument("--serve", action="store_true", help="answer the harness on stdin/stdout")
    p.add_argument("kind", nargs="?", choices=("layer", "train", "floor", "model"))
    p.add_argument("name", nargs="?", help="layer: MambaBlock, GRULayer, MinGRULayer, mambapy, torch.nn.GRU, "
                                           "minGRU-pytorch; train/floor/model: a model name")
    p.add_argument("--backend", default="numba", help="our kernels: numpy or numba (default %(default)s)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for a peer (default: this process's cores)")
    p.add_argument("--peer", default=None, choices=PEER_MODES,
                   help="model: the same model assembled in PyTorch, eager or torch.compile (default: ours)")
    p.add_argument("--part", default="gemm", choices=("gemm", "exp"), help="floor part (default %(default)s)")
    p.add_argument("--size", default="default", choices=tuple(NAMED_SIZES),
                   help="default: b=64, L=60, d_model=64; cli: cli.py train's defaults (hidden 16)")
    for opt in ("--batch", "--seq-len", "--d-model", "--d-state"):
        p.add_argument(opt, type=int, default=None, help="override one dimension of --size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=30, help="timed steps (default %(default)s)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the samples and details as JSON")
    return p


def main(argv=None) -> int:
    """Entry point of ``python -m bench.harness.worker``."""
    args = _parser().parse_args(argv)
    if args.serve:
        # Replies own the real stdout; a library that prints must not corrupt them.
        out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        sys.stdout = sys.stderr
        return serve(sys.stdin.buffer, out)
    if not args.kind or not args.name:
        _parser().error("give KIND and NAME, or --serve")
    from bench.harness.peers import default_threads
    from bench.harness.specs import describe, spec_from_args
    from bench.harness.subjects import build_subject

    if args.threads is None:
        args.threads = default_threads()
    spec = spec_from_args(args)
    subject = build_subject(spec)
    samples = measure(subject, args.steps, args.warmup)
    median = statistics.median(samples)
    if args.json:
        print(json.dumps({"spec": spec, "info": subject.info, "median_s": median, "samples_s": samples}))
    else:
        brief = {k: v for k, v in subject.info.items() if k != "shapes"}    # all of it with --json
        print(f"{describe(spec)}: median {median * 1e3:.3f} ms, min {min(samples) * 1e3:.3f} ms "
              f"over {len(samples)} steps; {json.dumps(brief)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
