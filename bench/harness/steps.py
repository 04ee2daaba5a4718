"""Train steps on both backends and their machine floor, every implementation in its own process.

For each forecaster, size and dtype: the NumPy-backend and Numba-backend train steps
(forward, MSE backward, Adam step) in fresh workers, each checked against the other
backend's reference outputs (prediction and every parameter gradient, computed in the
"ours" reference worker from the same seed), and the step's floor
(:mod:`bench.harness.floor`: its GEMMs, and its exponentials with NumPy's exp and with
the engine's, the faster counting) in a third worker; all take turns
(:func:`bench.harness.timing.time_workers`).

Rows: issue 9's size (b=64, L=60, hidden 64, d_state 16) in float64 and float32, and the
size ``cli.py train`` runs by default (hidden 16) in its default float64.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.harness.cases import MODEL_NAMES, numba_available
from bench.harness.floor import EXP_PARTS, FLOOR_PARTS
from bench.harness.sizes import DTYPES, Size
from bench.harness.specs import command_for, floor_spec, train_spec
from engine.parity import assert_parity

__all__ = ["train_cases", "TrainReference", "train_reference", "check_train_parity", "start_step",
           "start_floor", "run_train_steps"]


def train_cases(sizes) -> list[tuple[Size, str, np.dtype]]:
    """``(size, model, dtype)`` of every train row: all dtypes at the first size, float64 at the others."""
    cases = []
    for i, size in enumerate(sizes):
        for model in MODEL_NAMES:
            for dtype in (DTYPES if i == 0 else DTYPES[:1]):
                cases.append((size, model, dtype))
    return cases


@dataclass
class TrainReference:
    """Outputs of the step's first forward and backward on each backend (numba: None without Numba)."""

    numpy: tuple
    numba: tuple | None
    parity: float | None


def train_reference(pool, model: str, dtype, size: Size) -> TrainReference:
    """Both backends' outputs from the reference worker, checked against each other."""
    worker = pool.reference("ours")
    ref_np = worker.outputs(worker.setup(train_spec(model, "numpy", dtype, size)))
    if not numba_available()[0]:
        return TrainReference(ref_np, None, None)
    ref_nb = worker.outputs(worker.setup(train_spec(model, "numba", dtype, size)))
    err = assert_parity(ref_nb, ref_np, dtype, f"{model} train step numba vs numpy {np.dtype(dtype).name}")
    return TrainReference(ref_np, ref_nb, err)


def check_train_parity(backend: str, got: tuple, ref: TrainReference, dtype, model: str) -> float | None:
    """A timed step's outputs against the other backend's reference (None without Numba)."""
    expected = ref.numba if backend == "numpy" else ref.numpy
    if expected is None:
        return None
    other = "numba" if backend == "numpy" else "numpy"
    return assert_parity(got, expected, dtype, f"{model} train step {backend} vs {other} {np.dtype(dtype).name}")


def start_step(pool, model: str, backend: str, dtype, size: Size, ref: TrainReference):
    """A fresh worker with the step set up and checked; returns ``(worker, case, parity error)``."""
    worker = pool.fresh("ours", f"{model} {backend} {np.dtype(dtype).name} {size.name}")
    try:
        case = worker.setup(train_spec(model, backend, dtype, size))
        err = check_train_parity(backend, worker.outputs(case), ref, dtype, model)
    except BaseException:
        pool.release(worker)
        raise
    return worker, case, err


def start_floor(pool, model: str, dtype, size: Size, parts=FLOOR_PARTS):
    """A fresh worker hosting the floor's ``parts``; returns ``(worker, {part: case})``."""
    worker = pool.fresh("ours", f"{model} floor {np.dtype(dtype).name} {size.name}")
    try:
        cases = {part: worker.setup(floor_spec(model, part, dtype, size)) for part in parts}
    except BaseException:
        pool.release(worker)
        raise
    return worker, cases


def run_train_steps(report, pool, sizes, timer: dict, log, shares: bool = True) -> None:
    """The "train" section of ``cli.py bench``: one row per train case in ``report.train``."""
    from bench.harness.timing import time_workers, worst_other_load

    has_numba, why = numba_available()
    backends = ("numpy", "numba") if has_numba else ("numpy",)
    for size, model, dtype in train_cases(sizes):
        dt = np.dtype(dtype).name
        ref = train_reference(pool, model, dtype, size)
        row = {"model": model, "size": size.train_label(), "size_name": size.name, "dtype": dt,
               "parity": ref.parity, "numpy": None, "numba": None, "commands": {}}
        workers, contenders = [], {}
        try:
            for backend in backends:
                worker, case, err = start_step(pool, model, backend, dtype, size, ref)
                workers.append(worker)
                contenders[backend] = (worker, case)
                row["parity"] = err if row["parity"] is None else max(row["parity"], err or 0.0)
                row["commands"][backend] = "python " + " ".join(command_for(train_spec(model, backend, dtype, size)))
            # without Numba the engine's exp cannot run: NumPy's alone sets the floor
            parts = FLOOR_PARTS if has_numba else tuple(p for p in FLOOR_PARTS if p != "exp-engine")
            fworker, fcases = start_floor(pool, model, dtype, size, parts)
            workers.append(fworker)
            contenders.update({f"floor {part}": (fworker, case) for part, case in fcases.items()})
            row["commands"].update({f"floor {p}": "python " + " ".join(command_for(floor_spec(model, p, dtype, size)))
                                    for p in fcases})
            timings = time_workers(contenders, **timer)
            if shares:
                for backend in backends:
                    row["share_" + backend] = contenders[backend][0].share(contenders[backend][1])
            account = fworker.cases[fcases["gemm"]]["account"]
        finally:
            for worker in workers:
                pool.release(worker)
        for name, timing in timings.items():
            if not name.startswith("floor"):
                row[name] = timing.median
        row["other_load"] = worst_other_load(timings)
        # The floor's exponentials: the faster of NumPy's exp and the engine's, both on all cores.
        row["floor_gemm"] = timings["floor gemm"].median
        exps = {EXP_PARTS[part]: timings["floor " + part].median for part in EXP_PARTS
                if "floor " + part in timings}
        row.update({f"floor_exp_{who}": t for who, t in exps.items()})
        row["floor_exp_by"] = min(exps, key=exps.get)
        row["floor_exp"] = exps[row["floor_exp_by"]]
        row.update(gemms=account["gemms"], macs=account["macs"], exps=account["exps"],
                   floor=row["floor_gemm"] + row["floor_exp"])
        row["speedup"] = row["numpy"] / row["numba"] if row["numba"] else None
        row["numba_vs_floor"] = row["numba"] / row["floor"] if row["numba"] else None
        row["numpy_vs_floor"] = row["numpy"] / row["floor"]
        share = row.get("share_numpy")
        row["ceiling"] = 1 / (1 - share) if share is not None and share < 1 else None
        report.train.append(row)
        log(f"train step {model:7s} {dt:8s} {size.name:8s} numpy {row['numpy'] * 1e3:8.2f} ms  "
            f"numba {row['numba'] * 1e3 if row['numba'] else float('nan'):8.2f} ms  "
            f"floor {row['floor'] * 1e3:7.2f} ms")
    if not has_numba:
        report.skipped.append(why)
