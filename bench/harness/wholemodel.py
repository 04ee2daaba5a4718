"""Whole models: each forecaster's train step against the same model assembled in PyTorch.

For each forecaster (:data:`models.names.MODEL_NAMES`) and dtype, at the train-step size
(b=64, L=60, hidden 64, N=16):

1. a reference, in float64 whatever the row's dtype: the PyTorch model
   (:class:`bench.harness.torch_models.PeerModel`, eager) in the peer reference worker
   gives its weights under our names and its loss, prediction and gradients; our
   NumPy-backend forecaster (the definition of correct) loads those weights in the
   "ours" reference worker and gives the same outputs (computing minGRU-pytorch's
   log-space minGRU with our layers, :func:`log_space_mingru`); the two must agree at
   float64's tolerance (:func:`check_model_parity`; the two gradients mambapy rounds to
   float32 at float32's, see :mod:`bench.harness.torch_models`);
2. three timed implementations, each in a fresh worker on the PyTorch model's weights in
   the row's dtype and checked against that float64 reference first: our numba train
   step, PyTorch eager, and ``torch.compile`` (its compile wait reported in its own
   column);
3. the three take turns (:func:`bench.harness.timing.time_workers`).

The ratio of a row is the better PyTorch variant's step time over ours.
"""
from __future__ import annotations

import types
from dataclasses import dataclass

import numpy as np

from bench.harness.sizes import Size
from bench.harness.specs import command_for, model_spec
from engine.parity import rel_error, tolerance

__all__ = ["MODEL_IMPLS", "log_space_mingru", "ModelReference", "model_reference", "check_model_parity",
           "start_model", "time_model_row", "run_model_pairs", "model_peer_available"]

#: The timed implementations of a row.
MODEL_IMPLS = ("ours", "torch eager", "torch compile")


def model_peer_available(model: str) -> tuple[bool, str]:
    """Whether the libraries the PyTorch model is assembled from are installed."""
    import importlib.util

    from bench.harness.torch_models import MODEL_MODULES

    missing = [m for m in MODEL_MODULES[model] if importlib.util.find_spec(m.split(".")[0]) is None]
    if missing:
        return False, f"{model} model in PyTorch unavailable: {', '.join(missing)} not installed"
    return True, ""


def log_space_mingru(layer) -> None:
    """Make one of our MinGRULayers compute minGRU-pytorch's log-space minGRU, in place.

    The candidate becomes ``g(linear_h(x))`` (``v + 0.5`` for ``v >= 0``, else
    ``sigmoid(v)``); the gate, the recurrence and both linears stay our layer's own (its
    compiled kernels included). For the parity check only: the timed model is the plain
    minGRU. Undo with :func:`plain_mingru`.
    """
    from engine.functional import sigmoid

    H = layer.d_hidden

    def forward(self, x):
        x = self._as_input(x)
        z_logit = self.linear_z.forward(x)
        pre = self.linear_h.forward(x)
        positive = pre >= 0
        s = sigmoid(pre)
        h_tilde = np.where(positive, pre + 0.5, s).astype(self.dtype)
        zh = np.concatenate([z_logit, h_tilde], axis=-1)        # the kernels take [z_logit | h~]
        h = self.kernels.mingru_logits_fwd(zh)
        self._log_cache = (zh, h, positive, s)
        return h

    def backward(self, dh):
        zh, h, positive, s = self._log_cache
        dzh = self.kernels.mingru_logits_bwd(zh, h, np.ascontiguousarray(self._as_input(dh)))
        dz_logit, dh_tilde = dzh[..., :H], dzh[..., H:]
        dpre = (dh_tilde * np.where(positive, 1.0, s * (1 - s))).astype(self.dtype)
        return self.linear_z.backward(dz_logit) + self.linear_h.backward(dpre)

    layer.forward = types.MethodType(forward, layer)
    layer.backward = types.MethodType(backward, layer)


def plain_mingru(layer) -> None:
    """Undo :func:`log_space_mingru`."""
    for name in ("forward", "backward"):
        layer.__dict__.pop(name, None)
    layer.__dict__.pop("_log_cache", None)


def compared_names(model) -> list[str]:
    """Our parameter names whose gradients the PyTorch model has too (minGRU-pytorch has no biases), sorted."""
    from models.mingru import MinGRULayer

    skip = set()
    for prefix, module in _modules(model):
        if isinstance(module, MinGRULayer):
            skip |= {prefix + "linear_z.bias", prefix + "linear_h.bias"}
    return sorted(name for name, _, _ in model.named_parameters() if name not in skip)


def _modules(module, prefix: str = ""):
    yield prefix, module
    for name, child in module._children.items():
        yield from _modules(child, prefix + name + ".")


def peer_form_outputs(model, x, y) -> tuple:
    """``(loss, prediction, *gradients by sorted compared name)`` as the PyTorch model computes them."""
    from engine.functional import mse_loss
    from models.mingru import MinGRULayer

    layers = [m for _, m in _modules(model) if isinstance(m, MinGRULayer)]
    for layer in layers:
        log_space_mingru(layer)
    try:
        model.zero_grad()
        pred = model.forward(x)
        loss, dpred = mse_loss(pred, y)
        model.backward(dpred)
    finally:
        for layer in layers:
            plain_mingru(layer)
    grads = {name: g.copy() for name, _, g in model.named_parameters()}
    model.zero_grad()
    return (np.asarray(loss, dtype=np.float64), pred.copy()) + tuple(grads[k] for k in compared_names(model))


@dataclass
class ModelReference:
    """The weights of a row (our names) and the reference outputs every timed implementation meets.

    ``ours`` and ``peer``: our NumPy-backend model and the PyTorch model, both in float64
    on the float64 weights, which agree to ``parity``; ``state``: the weights the row's
    dtype loads (the PyTorch model's own, in that dtype).
    """

    state: dict
    names: list
    ours: tuple
    peer: tuple
    parity: float
    peer_info: dict


def _tolerances(labels, dtype, peer: bool, model: str) -> list[float]:
    """Tolerance of each output (see :func:`check_model_parity`)."""
    from bench.harness.torch_models import FLOAT32_PEER_TOL, float32_rounded_grads

    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return [FLOAT32_PEER_TOL.get(model, tolerance(dtype)) if peer else tolerance(dtype)] * len(labels)
    loose = set(float32_rounded_grads(labels)) if peer else set()
    return [tolerance(np.float32) if n in loose else tolerance(dtype) for n in labels]


def check_model_parity(got: tuple, expected: tuple, names, dtype, what: str, peer: bool = False,
                       model: str = "") -> float:
    """Loss, prediction and gradients against a float64 reference; returns the worst relative error.

    The tolerance is the dtype's (:func:`engine.parity.tolerance`: 1e-10 in float64, 1e-4
    in float32) for every output, with two exceptions on the PyTorch side (``peer``),
    both measured and explained in :mod:`bench.harness.torch_models`: in float64 the
    ``A_log`` and ``D`` gradients, which mambapy rounds to float32 (float32's tolerance);
    in float32 the models built on minGRU-pytorch, whose log-space scan loses digits in
    float32 (:data:`bench.harness.torch_models.FLOAT32_PEER_TOL`).

    Raises
    ------
    engine.parity.ParityError
    """
    from engine.parity import ParityError

    labels = ["loss", "prediction"] + list(names)
    if len(got) != len(labels) or len(expected) != len(labels):
        raise ParityError(f"{what}: {len(got)} outputs and {len(expected)} in the reference, "
                          f"expected {len(labels)}")
    worst = 0.0
    for label, a, r, tol in zip(labels, got, expected, _tolerances(labels, dtype, peer, model)):
        a = np.asarray(a)
        if label != "loss" and a.dtype != np.dtype(dtype):
            raise ParityError(f"{what}: {label} has dtype {a.dtype}, expected {np.dtype(dtype)}")
        err = rel_error(a, r)
        if not err <= tol:
            raise ParityError(f"{what}: {label} differs from the float64 reference by {err:.3g} "
                              f"(tolerance {tol:g})")
        worst = max(worst, err)
    return worst


def model_reference(pool, model: str, dtype, size: Size, threads: int | None = None,
                    spec=model_spec) -> ModelReference:
    """The reference of a row (see the module docstring, step 1).

    ``spec``: the builder of the workers' specs, :func:`bench.harness.specs.model_spec`'s
    signature (the long-horizon rows pass their own, with a shape for ``size``).

    Raises
    ------
    engine.parity.ParityError
        If our NumPy-backend model on the PyTorch model's weights computes something else.
    bench.harness.protocol.WorkerError
        If a worker fails (``kind == "import"``: a peer library is missing).
    """
    from bench.harness.peers import default_threads

    threads = threads or default_threads()
    peer_w = pool.reference("peer")
    case = peer_w.setup(spec(model, "peer", np.float64, size, threads=threads))
    state64 = peer_w.state(case)
    peer_out = peer_w.outputs(case)
    ours_w = pool.reference("ours")
    ours_case = ours_w.setup(spec(model, "ours", np.float64, size, backend="numpy"), state=state64)
    ours_out = ours_w.outputs(ours_case)
    names = ours_w.cases[ours_case]["compared gradients"]
    err = check_model_parity(ours_out, peer_out, names, np.float64,
                             f"{model} model: ours (numpy) vs PyTorch, float64", peer=True, model=model)
    state = state64
    if np.dtype(dtype) != np.float64:
        state = peer_w.state(peer_w.setup(spec(model, "peer", dtype, size, threads=threads)))
    return ModelReference(state, names, ours_out, peer_out, err, peer_w.cases[case])


def impl_model_spec(model: str, impl: str, dtype, size: Size, threads: int, spec=model_spec) -> dict:
    """The worker spec of one implementation of a row (``impl`` from :data:`MODEL_IMPLS`)."""
    if impl == "ours":
        return spec(model, "ours", dtype, size, backend="numba")
    return spec(model, "peer", dtype, size, threads=threads, compile=impl == "torch compile")


def start_model(pool, model: str, impl: str, dtype, size: Size, ref: ModelReference, threads: int,
                spec=model_spec):
    """A fresh worker with ``impl`` set up and checked; returns ``(worker, case, parity error)``."""
    side = "ours" if impl == "ours" else "peer"
    worker = pool.fresh(side, f"{model} model {impl} {np.dtype(dtype).name}")
    try:
        case = worker.setup(impl_model_spec(model, impl, dtype, size, threads, spec),
                            state=ref.state if impl == "ours" else None)
        err = check_model_parity(worker.outputs(case), ref.ours, ref.names, dtype,
                                 f"{model} model: {impl} {np.dtype(dtype).name} vs ours (numpy) float64",
                                 peer=impl != "ours", model=model)
    except BaseException:
        pool.release(worker)
        raise
    return worker, case, err


def run_model_pairs(report, pool, size: Size, dtypes, timer: dict, log, impls=MODEL_IMPLS) -> None:
    """The "models" section of ``cli.py bench``: one row per forecaster and dtype in ``report.models``.

    ``impls``: which of :data:`MODEL_IMPLS` to time ("ours" and at least one PyTorch variant).
    """
    from bench.harness.cases import MODEL_NAMES, numba_available, with_peers
    from bench.harness.peers import default_threads
    from bench.harness.protocol import WorkerError
    from bench.harness.torch_models import MODEL_PEERS

    has_numba, why = numba_available()
    if not has_numba:
        report.skipped.append(f"whole models: {why}")
        return
    threads = default_threads()
    for model in with_peers(report, log, MODEL_NAMES, model_peer_available):
        for dtype in dtypes:
            dt = np.dtype(dtype).name
            try:
                ref = model_reference(pool, model, dtype, size, threads)
            except WorkerError as exc:
                if exc.kind != "import":
                    raise
                report.skipped.append(f"{model} model in PyTorch: {str(exc).splitlines()[-1]}")
                break
            row = {"model": model, "dtype": dt, "peer_impl": MODEL_PEERS[model], "size": size.train_label()}
            row.update(time_model_row(pool, model, dtype, size, ref, threads, timer, impls))
            report.models.append(row)
            log(f"{model} model {dt}: {row_summary(row)}")


def time_model_row(pool, model: str, dtype, size, ref: ModelReference, threads: int, timer: dict,
                   impls=MODEL_IMPLS, spec=model_spec) -> dict:
    """Start, check and time the implementations of one row; returns its measured fields.

    ``threads``, ``reference_parity``, ``parity``, ``peer_parity``, ``peer_default_threads``,
    ``commands``, ``compile_wait``, ``ours``, ``eager``, ``compiled`` (seconds per step,
    None if not run), ``other_load``, ``better`` ("eager" or "compile"), ``torch_best``
    and ``speedup`` (the better PyTorch variant's time over ours). ``spec``: see
    :func:`model_reference`.
    """
    from bench.harness.timing import time_workers, worst_other_load

    row = {"threads": threads, "reference_parity": ref.parity, "parity": None, "peer_parity": None,
           "peer_default_threads": ref.peer_info.get("torch default threads"), "commands": {}}
    started = {}
    try:
        for impl in impls:
            worker, case, err = start_model(pool, model, impl, dtype, size, ref, threads, spec)
            started[impl] = (worker, case)
            key = "parity" if impl == "ours" else "peer_parity"
            row[key] = max(row.get(key) or 0.0, err)
            row["commands"][impl] = "python " + " ".join(
                command_for(impl_model_spec(model, impl, dtype, size, threads, spec)))
            if impl == "torch compile":
                row["compile_wait"] = worker.cases[case].get("compile seconds")
        timings = time_workers(started, **timer)
    finally:
        for worker, _ in started.values():
            pool.release(worker)
    median = {impl: timings[impl].median if impl in timings else None for impl in MODEL_IMPLS}
    row.update(ours=median["ours"], eager=median["torch eager"], compiled=median["torch compile"],
               other_load=worst_other_load(timings))
    torch_times = {k: v for k, v in (("eager", row["eager"]), ("compile", row["compiled"])) if v}
    row["better"] = min(torch_times, key=torch_times.get)
    row["torch_best"] = torch_times[row["better"]]
    row["speedup"] = row["torch_best"] / row["ours"]
    return row


def row_summary(row: dict) -> str:
    """One log line's figures: each implementation's time, the compile wait, the ratio."""
    torch_times = {k: row[key] for k, key in (("eager", "eager"), ("compile", "compiled")) if row.get(key)}
    return (f"ours {row['ours'] * 1e3:.2f} ms, " + ", ".join(f"torch {k} {v * 1e3:.2f} ms"
                                                              for k, v in torch_times.items())
            + (f" (compile wait {row['compile_wait']:.1f} s)" if row.get("compile_wait") is not None else "")
            + f": {row['speedup']:.2f}x")
