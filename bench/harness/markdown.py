"""The bench report as text and Markdown, with the issue's speed targets judged."""
from __future__ import annotations

import datetime
from pathlib import Path

from bench.harness.run import Report
from models.names import HYBRID

__all__ = ["REPRODUCE", "evaluate_targets", "format_table", "to_markdown", "write_markdown"]

REPRODUCE = "python cli.py bench --write BENCHMARKS.md"


def evaluate_targets(report: Report) -> list[dict]:
    """The five speed targets of the issue, each met / not met / not measured.

    Returns
    -------
    list of dict
        ``target``, ``measured`` (text) and ``status``.
    """
    out = []

    def add(target, measured, ok):
        status = "not measured" if ok is None else ("met" if ok else "NOT met")
        if report.smoke and ok is not None:
            status = "n/a (smoke shapes)"
        out.append({"target": target, "measured": measured, "status": status})

    hyb = [r for r in report.train if r["model"] == HYBRID and r["speedup"]]
    if hyb:
        by = {r["dtype"]: r["speedup"] for r in hyb}
        judged = by.get("float64", next(iter(by.values())))
        ceil = {r["dtype"]: r.get("ceiling") for r in hyb}
        add("hybrid train step, default size: numba >= 5x numpy",
            ", ".join(f"{k}: {v:.1f}x" + (f" (ceiling {ceil[k]:.1f}x)" if ceil.get(k) else "") for k, v in by.items())
            + "; judged on float64", judged >= 5)
    else:
        add("hybrid train step, default size: numba >= 5x numpy", "-", None)

    single = [r for r in report.kernels if r["kernel"].startswith("selective_scan")
              and r["size"].startswith("single") and r["speedup"]]
    if single:
        add("single long series (b=1, L=512, d=32): scan >= 20x",
            ", ".join(f"{r['kernel'].replace('selective_scan_', '')} {r['dtype']}: {r['speedup']:.1f}x" for r in single),
            all(r["speedup"] >= 20 for r in single))
    else:
        add("single long series (b=1, L=512, d=32): scan >= 20x", "-", None)

    fwd = [r for r in report.kernels if r["kernel"] == "selective_scan_fwd" and r["floor_fraction"]]
    if fwd:
        add("scan forward within 2x of the exp floor (fraction >= 0.5)",
            ", ".join(f"{r['size'].split()[0]} {r['dtype']}: {r['floor_fraction']:.2f}" for r in fwd),
            all(r["floor_fraction"] >= 0.5 for r in fwd))
    else:
        add("scan forward within 2x of the exp floor (fraction >= 0.5)", "-", None)

    for layer, target, need in (("MambaBlock", "MambaBlock fwd+bwd >= 5x faster than mambapy (float32)", 5.0),
                                ("GRULayer", "GRULayer fwd+bwd no slower than torch.nn.GRU (float32)", 1.0)):
        rows = [r for r in report.torch if r["layer"] == layer and r.get("speedup_vs_torch")]
        if rows:
            s = rows[0]["speedup_vs_torch"]
            add(target, f"{s:.2f}x (torch {rows[0]['torch'] * 1e3:.2f} ms, ours {rows[0]['numba'] * 1e3:.2f} ms)",
                s >= need)
        else:
            add(target, "-", None)
    return out


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


def _tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by the text and Markdown writers."""
    tables = []
    if report.kernels:
        tables.append((
            "Kernels (median ms per call; floor fraction = exp floor / numba time; the exp floor "
            "is one np.exp over b*L*d*n values, single-threaded)",
            ["kernel", "size", "dtype", "numpy ms", "numba ms", "speed-up", "numba 1-thread ms",
             "exp floor ms", "floor fraction", "parity err"],
            [[r["kernel"], r["size"], r["dtype"], _ms(r["numpy"]), _ms(r["numba"]), _x(r["speedup"]),
              _ms(r.get("numba_1t")), _ms(r["floor"]), _f(r["floor_fraction"]), _err(r["parity"])]
             for r in report.kernels]))
    if report.train:
        size = report.train[0]["size"]
        tables.append((
            f"Train step: forward + MSE backward + {report.train[0]['optimizer']} step ({size}, 1 feature). "
            "Kernel share = time inside the time-loop kernels; ceiling = 1 / (1 - numpy kernel share), "
            "the speed-up if the kernels took no time at all",
            ["model", "dtype", "numpy ms", "numba ms", "speed-up", "kernel share numpy",
             "kernel share numba", "ceiling", "parity err"],
            [[r["model"], r["dtype"], _ms(r["numpy"]), _ms(r["numba"]), _x(r["speedup"]),
              _pct(r.get("share_numpy")), _pct(r.get("share_numba")), _x(r.get("ceiling")), _err(r["parity"])]
             for r in report.train]))
    if report.torch:
        tables.append((
            f"PyTorch CPU counterparts, forward + backward ({report.torch[0]['size']}, "
            f"{report.machine.get('numba threads')} threads each)",
            ["layer", "PyTorch", "dtype", "torch ms", "ours numpy ms", "ours numba ms",
             "numba vs torch", "parity err"],
            [[r["layer"], r["torch_impl"], r["dtype"], _ms(r["torch"]), _ms(r["numpy"]), _ms(r["numba"]),
              _x(r["speedup_vs_torch"]), _err(r["parity"])] for r in report.torch]))
    if report.compile:
        tables.append((
            "Compile cost (fresh interpreter; median of rounds)",
            ["what", "wall s", "import + warmup s", "rounds", "note"],
            [[r["what"], f"{r['wall']:.2f}", f"{r['in_process']:.2f}", str(r["rounds"]), r["note"]]
             for r in report.compile]))
    if report.study:
        tables.append(_study_table(report.study))
    targets = evaluate_targets(report)
    tables.append(("Targets", ["target", "measured", "status"],
                   [[t["target"], t["measured"], t["status"]] for t in targets]))
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


def to_markdown(report: Report) -> str:
    """The report as Markdown: machine, reproduction command, tables, targets."""
    lines = ["# Benchmarks", ""]
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = " (quick mode: fewer samples, noisier)" if report.quick else ""
    mode += " (SMOKE shapes: numbers are meaningless)" if report.smoke else ""
    lines += [f"Measured {when}{mode} in {report.seconds:.0f} s. Reproduce from the repository root with:", "",
              "```", REPRODUCE, "```", "",
              "Timings are medians of `time.perf_counter` samples after a warm-up call (Numba "
              "compiles before any timing). Every NumPy/Numba (and PyTorch/ours) pair is first checked "
              "for agreement: `parity err` is the largest difference relative to the largest reference "
              "value (tolerance 1e-10 in float64, 1e-4 in float32). The pytest-benchmark suite in "
              "`bench/` measures the same work: `pytest --benchmark-only`.", "",
              "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in report.machine.items()]
    lines.append("")
    for title, header, rows in _tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        lines.append("")
    if report.skipped:
        lines += ["## Skipped", ""] + [f"- {s}" for s in report.skipped] + [""]
    return "\n".join(lines)


def write_markdown(report: Report, path) -> Path:
    """Write :func:`to_markdown` to ``path``; returns the path."""
    path = Path(path)
    path.write_text(to_markdown(report), encoding="utf-8")
    return path
