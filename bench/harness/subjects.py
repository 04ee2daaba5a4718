"""What a worker process hosts: one implementation, built from a spec, ready to step.

A spec is plain data (it crosses a pipe, and the stand-alone worker command builds the
same one from its options):

* ``{"kind": "layer", "side": "ours", "layer", "backend", "dtype", "size", "seed"}`` -
  our MambaBlock, GRULayer or MinGRULayer, as a library user runs it;
* ``{"kind": "layer", "side": "peer", "layer", "dtype", "size", "seed", "threads"}`` -
  its PyTorch peer (:class:`bench.harness.peers.PeerLayer`);
* ``{"kind": "train", "model", "backend", "dtype", "size", "seed"}`` - forward, MSE
  backward and Adam step of a forecaster;
* ``{"kind": "floor", "part", "model", "dtype", "size", "seed"}`` - the GEMMs or the
  exponentials of that step's machine floor (:class:`bench.harness.floor.FloorPart`);
* ``{"kind": "model", "side": "ours", "model", "backend", "dtype", "size", "seed"}`` - a
  forecaster's train step on given weights (:class:`OursModel`);
* ``{"kind": "model", "side": "peer", "model", "dtype", "size", "seed", "threads", "compile"}``
  - the same model assembled in PyTorch (:class:`bench.harness.torch_models.PeerModel`);
* ``{"kind": "ltsf", "side", "model", "dtype", "shape", "workload", "seed", ...}`` - the
  long-horizon forecaster's train step or epoch, ours (:class:`OursLtsf`, with a backend)
  or assembled in PyTorch (:class:`bench.harness.torch_ltsf.PeerLtsf`, threads, compile).

Every subject has ``step()``, ``outputs()`` (arrays for a parity check) and ``info``.
The engine, models and torch are imported only by the subjects that use them.
"""
from __future__ import annotations

import sys

import numpy as np

from bench.harness.sizes import Size, layer_data

__all__ = ["KINDS", "build_subject", "OursLayer", "TrainStep", "OursModel", "OursLtsf"]

KINDS = ("layer", "train", "floor", "model", "ltsf")


def _threads_info() -> dict:
    # Only if the subject loaded Numba: a NumPy-backend worker must not import it for a report.
    numba = sys.modules.get("numba")
    if numba is None:
        return {}
    from engine.backend import get_num_threads     # the numba backend's own pool

    return {"numba threads": get_num_threads(), "numba threading layer": _threading_layer(numba)}


def _threading_layer(numba) -> str:
    try:
        return numba.threading_layer()
    except ValueError:      # no parallel region has run yet
        return "not started"


class OursLayer:
    """Our layer built as a library user builds it: no thread settings, no environment.

    ``state`` (our names) loads the peer's weights; the parity outputs follow the
    pair (:data:`bench.harness.peers.PAIRS`): what the peer computes, with our layer's
    parts.
    """

    def __init__(self, spec: dict, state=None):
        import models
        from bench.harness.peers import PAIRS

        self.pair = PAIRS[spec["layer"]]
        size = Size(**spec["size"])
        dtype = np.dtype(spec["dtype"])
        kw = dict(backend=spec["backend"], dtype=dtype, seed=int(spec["seed"]))
        if spec["layer"] == "MambaBlock":
            self.layer = models.MambaBlock(size.d_model, d_state=size.d_state, **kw)
        else:
            self.layer = getattr(models, spec["layer"])(size.d_model, size.hidden, **kw)
        if state is not None:
            self.layer.load_state_dict(state)
        self.x, self.dy = layer_data(size, dtype, int(spec["seed"]))
        self.info = {"impl": f"{spec['layer']} ({spec['backend']})"}

    def step(self) -> None:
        """One forward and backward from zeroed gradients."""
        self.layer.zero_grad()
        self.layer.forward(self.x)
        self.layer.backward(self.dy)

    def state(self) -> dict:
        return dict(self.layer.state_dict())

    def outputs(self) -> tuple:
        """``(output, input gradient, *compared parameter gradients)``, as the peer returns them."""
        keys = self.pair.compared_grads
        if self.pair.peer == "minGRU-pytorch":
            from bench.harness.peers import mingru_log_space_outputs

            return mingru_log_space_outputs(self.layer, self.x, self.dy, keys)
        self.layer.zero_grad()
        out = self.layer.forward(self.x)
        dx = self.layer.backward(self.dy)
        grads = self.layer.grads()
        return (out, dx) + tuple(grads[k] for k in sorted(keys or grads))


class TrainStep:
    """Forward, MSE backward and Adam step of a forecaster at a benchmark size."""

    def __init__(self, spec: dict):
        from bench.harness.cases import build_forecaster, make_optimizer, make_train_data, make_train_step

        size = Size(**spec["size"])
        dtype = np.dtype(spec["dtype"])
        seed = int(spec["seed"])
        self.backend = spec["backend"]
        self.model = build_forecaster(spec["model"], size, self.backend, dtype, seed)
        self.x, self.y = make_train_data(size, dtype, seed)
        optimizer, name = make_optimizer(self.model)
        self._step = make_train_step(self.model, self.x, self.y, optimizer)
        self.stepped = False
        self.info = {"impl": f"{spec['model']} train step ({self.backend})", "optimizer": name}

    def step(self) -> None:
        """One optimisation step."""
        self.stepped = True
        self._step()

    def outputs(self) -> tuple:
        """Prediction and every parameter gradient, from the initial weights.

        Raises
        ------
        RuntimeError
            After a step: the optimiser has moved the weights, so the two sides of a
            parity check would no longer start from the same model.
        """
        from bench.harness.cases import forward_backward

        if self.stepped:
            raise RuntimeError("outputs() must come before the first step")
        pred, grads = forward_backward(self.model, self.x, self.y)
        return (pred,) + grads

    def share(self) -> float:
        """Fraction of a step spent inside the time-loop kernels (after the timing)."""
        from bench.harness.cases import kernel_share

        return kernel_share(self.step, self.backend)


class OursModel(TrainStep):
    """A forecaster's train step (as :class:`TrainStep`) on the weights of its PyTorch twin.

    ``outputs()`` gives what the PyTorch model computes (:func:`bench.harness.wholemodel.peer_form_outputs`):
    loss, prediction and the gradients both sides have, by sorted name (``info["compared gradients"]``).
    """

    def __init__(self, spec: dict, state=None):
        super().__init__(dict(spec, kind="train"))
        if state is not None:
            self.model.load_state_dict(state)
        from bench.harness.wholemodel import compared_names

        self.info["impl"] = f"{spec['model']} model train step ({self.backend})"
        self.info["compared gradients"] = compared_names(self.model)

    def outputs(self) -> tuple:
        from bench.harness.wholemodel import peer_form_outputs

        if self.stepped:
            raise RuntimeError("outputs() must come before the first step")
        return peer_form_outputs(self.model, self.x, self.y)


class OursLtsf:
    """Our long-horizon forecaster (``models.build_model`` with the protocol's options) on the
    weights of its PyTorch twin: one train step, or one epoch of ETTh1 (``spec["workload"]``,
    the same batches as :class:`bench.harness.torch_ltsf.PeerLtsf`).

    ``outputs()`` gives what the PyTorch model computes on the step's (or the epoch's first)
    batch, as :class:`OursModel` does.
    """

    def __init__(self, spec: dict, state=None):
        from bench.harness.cases import make_optimizer
        from bench.harness.ltsf_data import LINEAR_PATH, NORM, LtsfShape, epoch_batches, step_data, train_windows
        from bench.harness.wholemodel import compared_names
        from models import build_model

        shape = LtsfShape(**spec["shape"])
        dtype = np.dtype(spec["dtype"])
        seed = int(spec["seed"])
        self.backend, self.workload = spec["backend"], spec.get("workload", "step")
        self.model = build_model(spec["model"], input_size=shape.n_channels, hidden_size=shape.hidden,
                                 d_state=shape.d_state, n_layers=1, horizon=shape.horizon, backend=self.backend,
                                 dtype=dtype, seed=seed, channels=shape.layout, seq_len=shape.lookback,
                                 seg_len=shape.seg_len, norm=NORM, linear_path=LINEAR_PATH)
        if state is not None:
            self.model.load_state_dict(state)
        self.optimizer, name = make_optimizer(self.model)
        if self.workload == "step":
            self.x, self.y = step_data(shape, dtype, seed)
        else:
            self.X, self.Y = train_windows(shape, dtype)
            self.batches = epoch_batches(len(self.X), shape.batch, seed)
            self.x, self.y = self.X[self.batches[0]], self.Y[self.batches[0]]
        self.stepped = False
        self.info = {"impl": f"{spec['model']} long-horizon model ({self.backend}), one {self.workload}",
                     "optimizer": name, "compared gradients": compared_names(self.model)}
        if self.workload == "epoch":
            self.info["epoch"] = {"windows": len(self.X), "batches": len(self.batches)}

    def _train_step(self, x, y) -> None:
        from bench.harness.cases import make_train_step

        make_train_step(self.model, x, y, self.optimizer)()

    def step(self) -> None:
        """One train step, or one epoch of them (``workload``)."""
        self.stepped = True
        if self.workload == "step":
            self._train_step(self.x, self.y)
            return
        for idx in self.batches:
            self._train_step(self.X[idx], self.Y[idx])

    def state(self) -> dict:
        return dict(self.model.state_dict())

    def outputs(self) -> tuple:
        from bench.harness.wholemodel import peer_form_outputs

        if self.stepped:
            raise RuntimeError("outputs() must come before the first step")
        return peer_form_outputs(self.model, self.x, self.y)


def build_subject(spec: dict, state=None):
    """The subject a spec describes (see the module docstring).

    Raises
    ------
    ValueError
        For an unknown kind or side.
    """
    kind = spec.get("kind")
    if kind == "layer":
        if spec.get("side") == "peer":
            from bench.harness.peers import PeerLayer

            return PeerLayer(spec)
        if spec.get("side") != "ours":
            raise ValueError(f"layer side must be 'ours' or 'peer', got {spec.get('side')!r}")
        subject = OursLayer(spec, state)
    elif kind == "train":
        subject = TrainStep(spec)
    elif kind == "model":
        if spec.get("side") == "peer":
            from bench.harness.torch_models import PeerModel

            return PeerModel(spec)
        subject = OursModel(spec, state)
    elif kind == "ltsf":
        if spec.get("side") == "peer":
            from bench.harness.torch_ltsf import PeerLtsf

            return PeerLtsf(spec)
        subject = OursLtsf(spec, state)
    elif kind == "floor":
        from bench.harness.floor import FloorPart

        subject = FloorPart(spec)
    else:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(KINDS)}")
    subject.info.update(_threads_info())
    return subject
