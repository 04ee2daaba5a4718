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
        python -m bench.harness.worker ltsf hybrid --lookback 336 --horizon 720 --channels independent
        python -m bench.harness.worker ltsf gru --peer compile --lookback 96 --horizon 96 --workload epoch

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

__all__ = ["measure", "step_peak_memory", "serve", "main"]


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


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _malloc_trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):      # not glibc: the measure may then undercount
        pass


def step_peak_memory(subject, with_peak: bool = False) -> tuple:
    """The peak resident memory one step adds to what the process holds before it.

    Linux: after a garbage collection and glibc's ``malloc_trim(0)`` (freed heap memory goes
    back to the system, so a step's temporaries count even where the allocator would reuse
    an earlier step's), reads ``VmRSS``, resets the peak (``VmHWM``) to it by writing ``5`` to
    ``/proc/self/clear_refs``, runs one step and reads the peak. What the subject keeps
    between steps (weights, caches) is in ``VmRSS`` already: on a warm process this is what
    a training loop's step needs on top of its steady state.

    Returns
    -------
    tuple of (int or None, float) or (int or None, float, int or None)
        Bytes (None where ``/proc`` cannot tell: another platform, or the reset refused)
        and the step's seconds; with ``with_peak``, also the process's whole peak resident
        memory during the step (``VmHWM``, bytes): what the step's inputs, weights, caches,
        kernel output pool and temporaries hold together, the imports' share being the same
        in every worker, so differences between lengths show how the footprint grows.
    """
    import gc

    gc.collect()
    _malloc_trim()
    try:
        before = _status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        if _status_kib("VmHWM") > before + 1024:    # the reset did not happen (old kernel)
            raise OSError("VmHWM was not reset")
    except (OSError, ValueError):
        seconds = measure(subject, 1, 0)[0]
        return (None, seconds, None) if with_peak else (None, seconds)
    seconds = measure(subject, 1, 0)[0]
    peak = _status_kib("VmHWM") * 1024
    added = max(0, peak - before * 1024)
    return (added, seconds, peak) if with_peak else (added, seconds)


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
    if op == "memory":
        added, seconds, peak = step_peak_memory(subject, with_peak=True)
        return ok(op, bytes=added, seconds=seconds, peak=peak)
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
    p.add_argument("kind", nargs="?", choices=("layer", "train", "floor", "model", "ltsf"))
    p.add_argument("name", nargs="?", help="layer: MambaBlock, GRULayer, MinGRULayer, mambapy, torch.nn.GRU, "
                                           "minGRU-pytorch; train/floor/model: a model name")
    p.add_argument("--backend", default="numba", help="our kernels: numpy or numba (default %(default)s)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for a peer (default: this process's cores)")
    p.add_argument("--peer", default=None, choices=PEER_MODES,
                   help="model: the same model assembled in PyTorch, eager or torch.compile (default: ours)")
    p.add_argument("--part", default="gemm", choices=("gemm", "exp", "exp-engine"),
                   help="floor part: gemm, exp (NumPy's exp on every core) or exp-engine (the engine's) "
                        "(default %(default)s)")
    p.add_argument("--size", default="default", choices=tuple(NAMED_SIZES),
                   help="default: b=64, L=60, d_model=64; cli: cli.py train's defaults (hidden 16)")
    for opt in ("--batch", "--seq-len", "--d-model", "--d-state"):
        p.add_argument(opt, type=int, default=None, help="override one dimension of --size")
    # ltsf: the long-horizon forecaster at the protocol's settings but these (--batch,
    # --d-model for the hidden size and --d-state apply too)
    p.add_argument("--lookback", type=int, default=96, help="ltsf: input steps (default %(default)s)")
    p.add_argument("--horizon", type=int, default=96, help="ltsf: forecast steps (default %(default)s)")
    p.add_argument("--channels", default="independent", choices=("independent", "mixed"),
                   help="ltsf: channel layout (default %(default)s)")
    for opt in ("--n-channels", "--seg-len", "--rows"):
        p.add_argument(opt, type=int, default=None, help="ltsf: override the protocol's value")
    p.add_argument("--workload", default="step", choices=("step", "epoch"),
                   help="ltsf: one train step on a random batch, or one epoch of ETTh1 (default %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 30; an ltsf epoch: 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2; an ltsf epoch: 0)")
    p.add_argument("--json", action="store_true", help="print the samples and details as JSON")
    p.add_argument("--profile", action="store_true",
                   help="train/model (ours): after the timing, where a step's time goes, per kernel and "
                        "outside the kernels (ms per step, over --steps steps)")
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
    epoch = spec.get("workload") == "epoch"     # a step is a whole epoch: fewer of them
    args.steps = args.steps if args.steps is not None else 2 if epoch else 30
    args.warmup = args.warmup if args.warmup is not None else 0 if epoch else 2
    subject = build_subject(spec)
    samples = measure(subject, args.steps, args.warmup)
    median = statistics.median(samples)
    profile = None
    if args.profile:
        if not hasattr(subject, "backend"):
            _parser().error("--profile times our kernels: give a train step or our model, not a peer or a floor")
        from bench.harness.cases import kernel_profile

        profile = kernel_profile(subject.step, subject.backend, calls=args.steps)
    if args.json:
        print(json.dumps({"spec": spec, "info": subject.info, "median_s": median, "samples_s": samples,
                          "profile": profile}))
    else:
        brief = {k: v for k, v in subject.info.items() if k != "shapes"}    # all of it with --json
        print(f"{describe(spec)}: median {median * 1e3:.3f} ms, min {min(samples) * 1e3:.3f} ms "
              f"over {len(samples)} steps; {json.dumps(brief)}")
        if profile:
            print(f"profile (mean over {args.steps} more steps, each kernel call wrapped in a timer): "
                  f"{profile['step']:.2f} ms per step")
            for name, (ms, calls) in profile["kernels"].items():
                print(f"  {name:28s} {ms:8.2f} ms  {calls:g} calls")
            print(f"  {'outside the kernels':28s} {profile['outside kernels']:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
