"""The bench report as text and Markdown: tables, targets judged, what bounds them, how to reproduce.

Each section of :class:`bench.harness.run.Report` with rows gets one table (a block in
:func:`_tables`); the targets come from :mod:`bench.harness.targets`.
"""
from __future__ import annotations

import datetime
from pathlib import Path

from bench.harness.run import Report
from bench.harness.targets import BOUNDS_FILE, DISTURBED, evaluate_targets, load_bounds

__all__ = ["REPRODUCE", "bounds_section", "evaluate_targets", "format_table", "to_markdown", "write_markdown"]

REPRODUCE = "python cli.py bench --write BENCHMARKS.md"
#: Hand-written notes printed under a table (title prefix -> ``### <id>`` section of ``bench/bounds.md``):
#: what the harness cannot measure itself, measured by hand, with its command.
TABLE_NOTES = {"The README's first command": "readme_first_command"}


def _ms(x) -> str:
    return "-" if x is None else (f"{x * 1e3:.3f}" if x < 1e-2 else f"{x * 1e3:.1f}")


def _x(x) -> str:
    return "-" if x is None else f"{x:.1f}x" if x >= 10 else f"{x:.2f}x"


def _f(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _err(x) -> str:
    return "-" if x is None else f"{x:.1e}"


def _sci(x, unit=1e6, suffix="M") -> str:
    return "-" if x is None else f"{x / unit:.1f}{suffix}"


def _tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by the text and Markdown writers."""
    tables = []
    if report.kernels:
        tables.append((
            "Kernels (median ms per call, in the harness's process; floor fraction = exp floor / numba "
            "time; the exp floor is one np.exp over b*L*d*n values, single-threaded)",
            ["kernel", "size", "dtype", "numpy ms", "numba ms", "speed-up", "numba 1-thread ms",
             "exp floor ms", "floor fraction", "parity err", "other load"],
            [[r["kernel"], r["size"], r["dtype"], _ms(r["numpy"]), _ms(r["numba"]), _x(r["speedup"]),
              _ms(r.get("numba_1t")), _ms(r["floor"]), _f(r["floor_fraction"]), _err(r["parity"]),
              _pct(r.get("other_load"))] for r in report.kernels]))
    if report.train:
        tables.append((
            "Train step: forward + MSE backward + Adam step, 1 feature, each backend in a process of its "
            "own. Kernel share = time inside the time-loop kernels; ceiling = 1 / (1 - numpy kernel share), "
            "the speed-up if the kernels took no time at all",
            ["model", "size", "dtype", "numpy ms", "numba ms", "speed-up", "kernel share numpy",
             "kernel share numba", "ceiling", "parity err", "other load"],
            [[r["model"], f"{r['size_name']} ({r['size']})", r["dtype"], _ms(r["numpy"]), _ms(r["numba"]),
              _x(r["speedup"]), _pct(r.get("share_numpy")), _pct(r.get("share_numba")), _x(r.get("ceiling")),
              _err(r["parity"]), _pct(r.get("other_load"))] for r in report.train]))
        tables.append((
            "Machine floor of each train step: its matrix products (every forward product and both backward "
            "products, read from the model, BLAS on all cores) plus the exponentials it must evaluate, with "
            "the faster of NumPy's exp and the engine's, each on all cores (the floor takes the faster); "
            "measured in a process of its own",
            ["model", "size", "dtype", "products", "multiply-adds", "GEMM ms", "exps", "exp ms NumPy",
             "exp ms engine", "floor ms", "numba ms", "numba / floor", "numpy / floor"],
            [[r["model"], r["size_name"], r["dtype"], str(r["gemms"]), _sci(r["macs"]), _ms(r["floor_gemm"]),
              _sci(r["exps"]), _ms(r.get("floor_exp_numpy")), _ms(r.get("floor_exp_engine")),
              _ms(r["floor"]), _ms(r["numba"]), _x(r["numba_vs_floor"]), _x(r["numpy_vs_floor"])]
             for r in report.train]))
    if report.torch:
        r0 = report.torch[0]
        tables.append((
            f"Our layers against their PyTorch peers, forward + backward ({r0['size']}); every implementation "
            "in a fresh process of its own with its library's defaults; PyTorch gets torch.set_num_threads "
            "equal to our thread count, nothing else is set",
            ["layer", "peer", "dtype", "threads (ours / peer; peer default)", "peer ms", "ours numpy ms",
             "ours numba ms", "numba vs peer", "numba vs numpy", "parity err", "other load"],
            [[r["layer"], r["peer_impl"], r["dtype"],
              f"{report.machine.get('numba threads')} / {r['threads']}; {r.get('peer_default_threads')}",
              _ms(r["peer"]), _ms(r["numpy"]), _ms(r["numba"]), _x(r["speedup_vs_peer"]),
              _x(r["numba_vs_numpy"]), _err(r["parity"]), _pct(r.get("other_load"))] for r in report.torch]))
    if report.models:
        r0 = report.models[0]
        tables.append((
            f"Whole models: each forecaster's train step (forward, MSE, backward, Adam; {r0['size']}, 1 feature) "
            "against the same model assembled in PyTorch from the peers, loading the same weights; every "
            "implementation in a fresh process of its own, PyTorch at its libraries' defaults with "
            "torch.set_num_threads equal to our thread count, eager and torch.compile (default mode; its "
            "compile wait is the first step's extra time). Parity: loss, prediction and every gradient both "
            "sides have against one float64 reference (ours on NumPy)",
            ["model", "PyTorch model", "dtype", "ours ms", "torch eager ms", "torch.compile ms",
             "compile wait s", "PyTorch better / ours", "parity err ours", "parity err PyTorch", "other load"],
            [[r["model"], r["peer_impl"], r["dtype"], _ms(r["ours"]), _ms(r["eager"]), _ms(r.get("compiled")),
              _f(r.get("compile_wait"), "{:.1f}"), f"{_x(r['speedup'])} ({r['better']})", _err(r.get("parity")),
              _err(r.get("peer_parity")), _pct(r.get("other_load"))] for r in report.models]))
    tables += _ltsf_tables(getattr(report, "ltsf", []))
    if getattr(report, "longseq", None):
        tables.append(_longseq_table(report.longseq))
    if report.e2e:
        r0 = report.e2e[0]
        tables.append((
            f"The README's first command as a newcomer meets it, `{r0['command']}`"
            + ("" if report.smoke else " (every default: numba backend, 30 epochs with early stopping)")
            + ", whole process timed from outside (start-up, data, "
            "training, evaluation, outputs); the first run on an empty Numba cache directory, then warm "
            "(median of runs)",
            ["run", "wall s", "runs s", "other load"],
            [[r.get("what", r.get("backend", "")), f"{r['wall']:.2f}", ", ".join(f"{w:.2f}" for w in r["runs"]),
              _pct(r.get("other_load"))] for r in report.e2e]))
    if report.compile:
        tables.append((
            "Compile cost (fresh interpreters; median of rounds)",
            ["what", "wall s", "import + warmup s", "rounds", "note"],
            [[r["what"], f"{r['wall']:.2f}", _f(r["in_process"]), str(r["rounds"]), r["note"]]
             for r in report.compile]))
    if report.study:
        tables.append(_study_table(report.study))
    targets = evaluate_targets(report)
    tables.append((f"Targets (issues 9 and 19; a verdict from rows measured beside more than "
                    f"{100 * DISTURBED:.0f}% other load is marked disturbed)",
                   ["target", "measured", "status", "aim", "other load (worst row)"],
                   [[t["target"], t["measured"], t["status"], t["aim"], _pct(t["other_load"])] for t in targets]))
    return tables


def _ltsf_tables(rows) -> list[tuple]:
    """The long-horizon workload: train steps by shape, then epochs of ETTh1."""
    tables = []
    header = ["model", "dtype", "ours {u}", "torch eager {u}", "torch.compile {u}", "compile wait s",
              "PyTorch better / ours", "parity err ours", "parity err PyTorch", "other load"]

    def cells(r, scale):
        f = (lambda v: _ms(v)) if scale == "ms" else (lambda v: _f(v, "{:.2f}"))
        return [_x(r["speedup"]) + f" ({r['better']})", _err(r.get("parity")), _err(r.get("peer_parity")),
                _pct(r.get("other_load"))], f

    steps = [r for r in rows if r["workload"] == "step"]
    if steps:
        body = []
        for r in steps:
            tail, f = cells(r, "ms")
            body.append([r["model"], f"{r['lookback']} -> {r['horizon']}", r["layout"], r["dtype"], f(r["ours"]),
                         f(r["eager"]), f(r.get("compiled")), _f(r.get("compile_wait"), "{:.1f}")] + tail)
        tables.append((
            f"Long-horizon model, one train step ({steps[0]['shape'].split(' (', 1)[1].rstrip(')')}; RevIN, "
            "segments, linear path, as the long-horizon protocol runs it; forward, MSE, backward, Adam on one "
            "random batch) against the same model assembled in PyTorch from the peers, loading the same weights; "
            "each implementation in a fresh process, eager and torch.compile, as in the whole-models table",
            ["model", "lookback -> horizon", "channels"] + [h.format(u="ms") for h in header[1:]], body))
    epochs = [r for r in rows if r["workload"] == "epoch"]
    if epochs:
        r0 = epochs[0]
        body = []
        for r in epochs:
            tail, f = cells(r, "s")
            body.append([r["model"], r["dtype"], f(r["ours"]), f(r["eager"]), f(r.get("compiled")),
                         _f(r.get("compile_wait"), "{:.1f}")] + tail)
        tables.append((
            f"Long-horizon model, one epoch of ETTh1's training windows ({r0.get('windows')} windows of lookback "
            f"{r0['lookback']}, horizon {r0['horizon']}, {r0.get('batches')} batches of {r0['shape']}) in a "
            "fixed shuffled order, the same batches on both sides, one train step each (the compile wait "
            "covers both batch shapes); median of rounds",
            [h.format(u="s") for h in header], body))
    return tables


def _study_table(rows) -> tuple:
    """Study throughput: the local pool against a Dask LocalCluster on the same machine."""
    return (
        f"Study throughput ({rows[0]['runs']} runs of `{rows[0]['command']}`, {rows[0]['backend']} "
        "backend, median of rounds). Executor start = the client's kernel warm-up for the pool (its "
        "processes start on the first run, inside the running time), the cluster's start-up "
        "(scheduler, worker processes, their set-up) for Dask; running = the rest of the training, "
        "where a scheduler's cost per run shows; command = the whole process (start-up, imports, "
        "report and figures included)",
        ["executor", "runs", "rounds", "runs / min (running)", "running time vs pool",
         "executor start s", "training s", "runs / min (training)", "command s", "runs / min (command)"],
        [[r["executor"], str(r["runs"]), str(r["rounds"]), f"{r['per_min_running']:.1f}", _x(r["vs_pool"]),
          f"{r['start']:.1f}", f"{r['training']:.1f}", f"{r['per_min_training']:.1f}", f"{r['wall']:.1f}",
          f"{r['per_min_wall']:.1f}"] for r in rows])


def _mib(b) -> str:
    return "not measured" if b is None else f"{b / 2 ** 20:.1f}"


def _longseq_table(rows) -> tuple:
    """Long sequences: ours (numba) against the peer per layer, dtype and L, time and memory."""
    r0 = rows[0]
    return (
        f"Long sequences: our layers (numba) against their PyTorch peers, forward + backward, b={r0['batch']}, "
        f"d_model={r0['d_model']}, d_state={r0['d_state']}, L from {rows[0]['seq_len']:,} to "
        f"{max(r['seq_len'] for r in rows):,}; each implementation in a fresh process, as in the layer table "
        "(steps of a second or more: 3 interleaved rounds of one step). us / step = time / L. Peak = the whole "
        "process's peak resident memory during a step (imports, weights, inputs, caches, output pool, "
        "temporaries; Linux VmHWM after a reset): its growth with L is what the memory target judges. Added = "
        "what one step adds to what the warm process holds, in MiB and per (b*L) step; beside it the (b, L, "
        "d_inner, d_state) array MambaBlock's backward does not store. "
        "Parity: our layer against the peer (or, where the peer's own rounding grows with L, against our "
        "NumPy layer, with the peer's error beside it)",
        ["layer", "peer", "dtype", "L", "ours ms", "peer ms", "ours vs peer", "ours us / step", "ours peak MiB",
         "peer peak MiB", "ours added MiB", "peer added MiB", "ours added KiB / (b*L) step",
         "(b, L, d_inner, d_state) MiB", "parity err", "peer err", "other load"],
        [[r["layer"], r["peer_name"], r["dtype"], f"{r['seq_len']:,}", _ms(r["numba"]), _ms(r["peer"]),
          _x(r["speedup_vs_peer"]), _f(r["numba_per_step_us"]), _mib(r.get("rss_numba")), _mib(r.get("rss_peer")),
          _mib(r["mem_numba"]), _mib(r["mem_peer"]),
          _f(None if r["mem_numba_per_step"] is None else r["mem_numba_per_step"] / 1024),
          "-" if r.get("design_avoided_bytes") is None else _mib(r["design_avoided_bytes"]),
          _err(r["parity"]) + ("" if r.get("checked_against", "peer") == "peer" else " (vs our numpy)"),
          _err(r.get("peer_error")), _pct(r.get("other_load"))] for r in rows])


def bounds_section(report: Report, bounds_file=BOUNDS_FILE) -> list[str]:
    """Markdown lines: for each target not met, what bounds it (from ``bench/bounds.md``)."""
    notes = load_bounds(bounds_file)
    lines = []
    for t in evaluate_targets(report):
        if not t["status"].startswith("NOT met"):
            continue
        lines += [f"### {t['target']}", "", f"Measured: {t['measured']}.", ""]
        lines += [notes.get(t["id"]) or f"_No explanation yet: add a `### {t['id']}` section to "
                  f"`bench/bounds.md`, with the measurement that shows the bound._", ""]
    return lines


def _commands(report: Report) -> list[str]:
    """Markdown lines: the stand-alone command of every layer-pair and train-step row."""
    lines = []
    for r in report.torch:
        for impl, cmd in r.get("commands", {}).items():
            lines.append(f"- {r['layer']} {r['dtype']}, {impl}: `{cmd}`")
    for r in report.train:
        for impl, cmd in r.get("commands", {}).items():
            lines.append(f"- {r['model']} train step {r['size_name']} {r['dtype']}, {impl}: `{cmd}`")
    for r in report.models:
        for impl, cmd in r.get("commands", {}).items():
            lines.append(f"- {r['model']} model {r['dtype']}, {impl}: `{cmd}`")
    for r in getattr(report, "ltsf", []):
        for impl, cmd in r.get("commands", {}).items():
            lines.append(f"- {r['model']} long-horizon {r['workload']} {r['lookback']} -> {r['horizon']} "
                         f"{r['layout']} {r['dtype']}, {impl}: `{cmd}`")
    for r in getattr(report, "longseq", []):
        for impl, cmd in r.get("commands", {}).items():
            lines.append(f"- {r['layer']} long sequence L={r['seq_len']:,} {r['dtype']}, {impl}: `{cmd}`")
    return lines


def format_table(report: Report) -> str:
    """The report as aligned plain-text tables."""
    parts = []
    for title, header, rows in _tables(report):
        widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
        line = "  ".join("-" * w for w in widths)
        parts.append(title)
        parts.append(line)
        parts.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        parts.append(line)
        parts.extend("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows)
        parts.append("")
    for s in report.skipped:
        parts.append(f"skipped: {s}")
    parts.append(f"total {report.seconds:.0f} s")
    return "\n".join(parts)


def to_markdown(report: Report, bounds_file=BOUNDS_FILE) -> str:
    """The report as Markdown: machine, how to reproduce, tables, targets, what bounds them."""
    lines = ["# Benchmarks", ""]
    when = report.measured or datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = " (quick mode: fewer samples, noisier)" if report.quick else ""
    mode += " (SMOKE shapes: numbers are meaningless)" if report.smoke else ""
    later = "".join(f" Section `{name}` measured again on {u['measured']} in {u['seconds']} s (load average "
                    f"{u['load average']}) and merged in (`--update`)." for name, u in report.updated.items())
    lines += [f"Measured {when}{mode} in {report.seconds:.0f} s.{later} Reproduce from the repository root with:",
              "",
              "```", REPRODUCE, "```", "",
              "(add `--save bench/report.json` to keep the measurements; after editing `bench/bounds.md`, "
              "`python cli.py bench --from bench/report.json --write BENCHMARKS.md` rewrites this page from "
              "them without measuring again), "
              "or with pytest-benchmark: `pytest --benchmark-only` (the same work, one pytest-benchmark group "
              "per pair). The load average at start and end (table Machine) says how busy the machine was.", "",
              "How it is measured. Kernels run in the harness's own process. Every train step, every layer "
              "and every PyTorch peer runs in a fresh worker process of its own (`python -m "
              "bench.harness.worker`), started without any thread or wait-policy variable, with no "
              "threadpoolctl: our layers as a library user runs them, each peer with its library's defaults "
              "and `torch.set_num_threads(N)`, N our thread count. Workers take turns in interleaved rounds; "
              "before each turn the harness waits until no worker uses CPU (thread pools spin after a call), "
              "and each turn is one untimed step then a burst of steps back to back, as in training (about "
              "0.2 s of them, at least one) timed inside the worker with "
              "`time.perf_counter`. Tables show medians. `other load` is the share of the machine's CPU "
              "that other processes used while a row was measured (the worst of its contenders, from "
              "/proc/stat): near 0% on a quiet machine; a row measured beside a large share is disturbed, "
              "and its figures say more about the neighbours than about the code.", "",
              "Before anything is timed, each pair is checked for agreement: our layers load the peer's "
              "weights and must give the same outputs, input gradients and weight gradients; the numba "
              "train step must give the numpy step's prediction and gradients. `parity err` is the largest "
              "difference relative to the largest reference value (tolerance 1e-10 in float64, 1e-4 in "
              "float32). minGRU-pytorch is the log-space minGRU (candidate `g(linear_h(x))`, no biases); "
              "its parity is checked against its own function computed with our layer's linears and kernels, "
              "and our timed layer is the plain minGRU (`bench/harness/peers.py`). Whole models are checked "
              "against one float64 reference, our NumPy-backend model on the PyTorch model's weights, itself "
              "checked against the PyTorch model in float64 (`bench/harness/torch_models.py` says where and "
              "why a PyTorch library is held to a looser tolerance).", "",
              "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.machine.items()]
    lines.append("")
    notes = load_bounds(bounds_file)
    for title, header, rows in _tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        lines.append("")
        note = next((notes[k] for prefix, k in TABLE_NOTES.items() if title.startswith(prefix) and k in notes), None)
        if note:
            lines += [note, ""]
    bounds = bounds_section(report, bounds_file)
    if bounds:
        lines += ["## What bounds the targets not met", "",
                  "From `bench/bounds.md` (hand-written, kept when this file is regenerated).", ""] + bounds
    commands = _commands(report)
    if commands:
        lines += ["## Reproduce one row in a process of your own", "",
                  "Each command builds one implementation in a fresh interpreter, makes 2 untimed steps, "
                  "times 30 and prints the median (the harness samples the same way). Run from the "
                  "repository root.", ""] + commands + [""]
    if report.skipped:
        lines += ["## Skipped", ""] + [f"- {s}" for s in report.skipped] + [""]
    return "\n".join(lines)


def write_markdown(report: Report, path) -> Path:
    """Write :func:`to_markdown` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(to_markdown(report), encoding="utf-8")
    return path
