"""The speed targets (issues 9 and 19), judged from a report's measured rows, and what bounds the unmet ones.

A target is met, NOT met, or not measured (no row it can be judged from). Rows measured
on smoke shapes never judge anything, and a verdict from rows measured while other
processes used much of the machine is marked disturbed. Each target has an id; ``bench/bounds.md`` holds,
under ``### <id>``, the explanation of what bounds a target that is not met, with the
measurement that shows it, and BENCHMARKS.md prints it beside the verdict.
"""
from __future__ import annotations

from pathlib import Path

from models.names import HYBRID

__all__ = ["BOUNDS_FILE", "DISTURBED", "TARGETS", "evaluate_targets", "load_bounds"]

#: Hand-written explanations, one ``### <target id>`` section each (kept across regenerations).
BOUNDS_FILE = Path(__file__).resolve().parents[1] / "bounds.md"

#: Above this share of the machine used by other processes while its rows were measured,
#: a verdict is marked "(disturbed)": it says more about the neighbours than the code.
DISTURBED = 0.15

#: id -> (what is promised, bar, aim or None)
TARGETS = {
    "mamba_vs_mambapy": ("MambaBlock fwd+bwd at least 5x faster than mambapy (aim 10x), float32 and float64",
                         5.0, 10.0),
    "gru_vs_torch": ("GRULayer fwd+bwd at least 1.5x faster than torch.nn.GRU (aim 2x), float32 and float64",
                     1.5, 2.0),
    "mingru_vs_pytorch": ("MinGRULayer fwd+bwd at least 5x faster than minGRU-pytorch, float32 and float64",
                          5.0, None),
    "mingru_numba_vs_numpy": ("MinGRULayer on numba at least 2x faster than on numpy, float32 and float64",
                              2.0, None),
    "hybrid_step": ("hybrid train step (b=64, L=60, hidden 64, N=16, float64): numba at least 5x numpy",
                    5.0, None),
    "mamba_model_vs_torch": ("mamba forecaster train step (b=64, L=60, hidden 64, N=16) at least 5x faster than "
                             "the same model assembled in PyTorch (the better of eager and torch.compile), "
                             "float32 and float64", 5.0, None),
    "mingru_model_vs_torch": ("mingru forecaster train step at least 5x faster than the same model in PyTorch "
                              "(better of eager and torch.compile), float32 and float64", 5.0, None),
    "gru_model_vs_torch": ("gru forecaster train step at least 2x faster than the same model in PyTorch "
                           "(better of eager and torch.compile), float32 and float64", 2.0, None),
    "hybrid_model_vs_torch": ("hybrid forecaster train step at least 5x faster than the same model in PyTorch "
                              "(better of eager and torch.compile), float32 and float64", 5.0, None),
    # Judged on each row's ratio over its model's bar (LTSF_BARS): 1.0 = exactly the bar.
    "ltsf_step_vs_torch": ("long-horizon model train step (lookback 96/336/720 x horizon 96/720, 7 channels, "
                           "independent and mixed): every row at least 5x faster than the same model in PyTorch "
                           "(better of eager and torch.compile) for mamba, mingru and hybrid, 2x for gru; "
                           "judged on ratio / bar", 1.0, None),
    "ltsf_epoch_vs_torch": ("one epoch of ETTh1 (lookback 96, horizon 96, float32, batch 64) at least 5x faster "
                            "than the same model in PyTorch for mamba, mingru and hybrid, 2x for gru; judged on "
                            "ratio / bar", 1.0, None),
    "step_floor": ("every numba train step at most 1.5x its machine floor (matrix products + exponentials "
                   "with the machine's fastest exp, all cores), float32 and float64", 1.5, None),
    "compile_wait": ("compile wait of a first cli.py train --backend numba at most 10 s", 10.0, None),
    "scan_single": ("earlier target: single long series (b=1, L=512, d=32): scan kernels >= 20x numpy", 20.0, None),
    "scan_exp_floor": ("earlier target: scan forward within 2x of the exp floor (fraction >= 0.5)", 0.5, None),
    # Long sequences (issue 19 item 3; bench.harness.longseq: b=4, d_model 64, d_state 16,
    # L = 256, 1,024, 4,096, 16,384, fwd+bwd, float32 and float64).
    "long_seq_linear": ("long sequences: our layers' fwd+bwd time per step (time / L) at L=16,384 within 1.3x of "
                        "that at L=1,024, each layer and dtype (worst one counts)", 1.3, None),
    "long_seq_vs_peer": ("long sequences: MambaBlock, MinGRULayer and GRULayer fwd+bwd at least 5x faster than "
                         "their PyTorch peers at every L (256 to 16,384), float32 and float64", 5.0, None),
    "long_seq_memory": ("long sequences: our fwd+bwd footprint (the process's peak during a step) grows "
                        "linearly in L (its growth per step from L=4,096 to 16,384 within 1.3x of that from "
                        "1,024 to 4,096) and MambaBlock's grows by less than the (b, L, d_inner, d_state) "
                        "states it does not store; judged on the larger of growth / 1.3 and growth / states, "
                        "each layer and dtype", 1.0, None),
}


#: Issue 19's bar per model for the long-horizon rows (item 2 asks for item 1's ratios).
LTSF_BARS = {"mamba": 5.0, "mingru": 5.0, "hybrid": 5.0, "gru": 2.0}


def _ltsf_target(report, workload: str) -> tuple[str, list, list]:
    """Text, values (ratio over the model's bar) and rows of the long-horizon rows of ``workload``."""
    rows = [r for r in getattr(report, "ltsf", []) if r["workload"] == workload and r.get("speedup")]
    parts = []
    for model in LTSF_BARS:
        mine = [r for r in rows if r["model"] == model]
        if not mine:
            continue
        worst = min(mine, key=lambda r: r["speedup"])
        where = f"L={worst['lookback']} H={worst['horizon']} {worst['layout']} {worst['dtype']}"
        if len(mine) == 1:
            parts.append(f"{model}: {_x(worst['speedup'])} (ours {_s(worst['ours'])}, PyTorch {worst['better']} "
                         f"{_s(worst['torch_best'])}; bar {LTSF_BARS[model]:g}x)")
        else:
            parts.append(f"{model}: worst {_x(worst['speedup'])} ({where}), best "
                         f"{_x(max(r['speedup'] for r in mine))} over {len(mine)} rows (bar {LTSF_BARS[model]:g}x)")
    return "; ".join(parts), [r["speedup"] / LTSF_BARS[r["model"]] for r in rows], rows


def _s(v) -> str:
    return f"{v:.1f} s" if v >= 1 else _ms(v)


def _x(v) -> str:
    return f"{v:.1f}x" if v >= 10 else f"{v:.2f}x"


def _ms(v) -> str:
    return f"{v * 1e3:.1f} ms" if v >= 0.01 else f"{v * 1e3:.2f} ms"


def _layer_target(report, layer: str, key: str) -> tuple[str, list, list]:
    """Text, values and rows of one layer ratio (``speedup_vs_peer`` or ``numba_vs_numpy``) per dtype."""
    rows = [r for r in report.torch if r["layer"] == layer and r.get(key)]
    if key == "numba_vs_numpy":
        parts = [f"{r['dtype']}: {_x(r[key])} (numpy {_ms(r['numpy'])}, numba {_ms(r['numba'])})" for r in rows]
    else:
        parts = [f"{r['dtype']}: {_x(r[key])} ({r['peer_name']} {_ms(r['peer'])}, ours {_ms(r['numba'])})"
                 for r in rows]
    return "; ".join(parts), [r[key] for r in rows], rows


def evaluate_targets(report) -> list[dict]:
    """Every target of :data:`TARGETS`, judged.

    Returns
    -------
    list of dict
        ``id``, ``target``, ``measured`` (text), ``status`` ("met", "NOT met", either
        followed by " (disturbed)" when a row behind it was measured beside more than
        :data:`DISTURBED` other load, "not measured", or "n/a (smoke shapes)"), ``aim``
        ("reached", "not reached", "-") and ``other_load`` (the worst of those rows).
    """
    judged = {}

    def judge(tid, measured, values, rows, higher_is_better=True):
        _, bar, aim = TARGETS[tid]
        if not values:
            judged[tid] = ("-", "not measured", "-", None)
            return
        worst = min(values) if higher_is_better else max(values)
        ok = worst >= bar if higher_is_better else worst <= bar
        aim_ok = None if aim is None else (worst >= aim if higher_is_better else worst <= aim)
        status = "met" if ok else "NOT met"
        aim_text = "-" if aim_ok is None else ("reached" if aim_ok else "not reached")
        loads = [r["other_load"] for r in rows if r.get("other_load") is not None]
        load = max(loads) if loads else None
        if load is not None and load > DISTURBED:
            status += " (disturbed)"
        if report.smoke:
            status, aim_text = "n/a (smoke shapes)", "-"
        judged[tid] = (measured, status, aim_text, load)

    judge("mamba_vs_mambapy", *_layer_target(report, "MambaBlock", "speedup_vs_peer"))
    judge("gru_vs_torch", *_layer_target(report, "GRULayer", "speedup_vs_peer"))
    judge("mingru_vs_pytorch", *_layer_target(report, "MinGRULayer", "speedup_vs_peer"))
    judge("mingru_numba_vs_numpy", *_layer_target(report, "MinGRULayer", "numba_vs_numpy"))

    hyb = [r for r in report.train if r["model"] == HYBRID and r.get("speedup")]
    main = [r for r in hyb if r.get("size_name") == "default" and r["dtype"] == "float64"]
    text = "; ".join(f"{r['size_name']} {r['dtype']}: {_x(r['speedup'])} (numpy {_ms(r['numpy'])}, "
                     f"numba {_ms(r['numba'])})" for r in hyb)
    judge("hybrid_step", text + ("; judged on default float64" if hyb else ""), [r["speedup"] for r in main], main)

    for model in ("mamba", "mingru", "gru", "hybrid"):
        rows = [r for r in report.models if r["model"] == model and r.get("speedup")]
        text = "; ".join(f"{r['dtype']}: {_x(r['speedup'])} (ours {_ms(r['ours'])}, PyTorch {r['better']} "
                         f"{_ms(r['torch_best'])})" for r in rows)
        judge(f"{model}_model_vs_torch", text, [r["speedup"] for r in rows], rows)

    judge("ltsf_step_vs_torch", *_ltsf_target(report, "step"))
    judge("ltsf_epoch_vs_torch", *_ltsf_target(report, "epoch"))

    fl = [r for r in report.train if r.get("numba_vs_floor")]
    text = "; ".join(f"{r['model']} {r['size_name']} {r['dtype']}: {_x(r['numba_vs_floor'])}" for r in fl)
    judge("step_floor", text, [r["numba_vs_floor"] for r in fl], fl, higher_is_better=False)

    wait = [r for r in report.compile if r["what"] == "first train: compile wait"]
    judge("compile_wait", "; ".join(f"{r['wall']:.1f} s" for r in wait), [r["wall"] for r in wait], wait,
          higher_is_better=False)

    single = [r for r in report.kernels if r["kernel"].startswith("selective_scan")
              and r["size"].startswith("single") and r.get("speedup")]
    judge("scan_single", ", ".join(f"{r['kernel'].replace('selective_scan_', '')} {r['dtype']}: "
                                   f"{_x(r['speedup'])}" for r in single), [r["speedup"] for r in single], single)
    fwd = [r for r in report.kernels if r["kernel"] == "selective_scan_fwd" and r.get("floor_fraction")]
    judge("scan_exp_floor", ", ".join(f"{r['size'].split()[0]} {r['dtype']}: {r['floor_fraction']:.2f}"
                                      for r in fwd), [r["floor_fraction"] for r in fwd], fwd)

    from bench.harness.longseq import long_seq_evidence

    evidence = long_seq_evidence(report)
    judge("long_seq_linear", *evidence["long_seq_linear"], higher_is_better=False)
    judge("long_seq_vs_peer", *evidence["long_seq_vs_peer"])
    judge("long_seq_memory", *evidence["long_seq_memory"], higher_is_better=False)

    return [{"id": tid, "target": TARGETS[tid][0], "measured": judged[tid][0], "status": judged[tid][1],
             "aim": judged[tid][2], "other_load": judged[tid][3]} for tid in TARGETS]


def load_bounds(path=BOUNDS_FILE) -> dict:
    """The explanations in ``path``: ``{target id: Markdown text}`` from its ``### <id>`` sections."""
    path = Path(path)
    if not path.exists():
        return {}
    notes, current = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            notes[current] = []
        elif current is not None:
            notes[current].append(line)
    return {k: "\n".join(v).strip() for k, v in notes.items() if "\n".join(v).strip()}
