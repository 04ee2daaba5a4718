"""The long-horizon forecaster assembled in PyTorch from the peers (issue 19, item 2).

The shell of :class:`models.longhorizon.LongHorizonForecaster` at the protocol's settings,
written in ``torch`` around the encoders of :mod:`bench.harness.torch_models` (mambapy's
``ResidualBlock``, minGRU-pytorch's ``minGRU``, ``torch.nn.GRU``, ``nn.Linear``, mambapy's
``RMSNorm``)::

    x (b, L, C) -> RevIN (window mean, sqrt(var + 1e-5)) -> segments of seg_len steps
      independent: (b*C, L/seg, seg)   -> encoder -> (b, C, H)
      mixed:       (b, L/seg, seg*C)   -> encoder -> (b, H, C) -> (b, C, H)
    + nn.Linear(L, H) on each channel's normalised window -> * sd + mean -> (b, H * C) step-major

State-dict names are ours: ``encoder.*`` (the stock model's, :func:`torch_models._build`) and
``linear.weight``/``linear.bias``, so :meth:`PeerModel.state` hands the weights to our model
as it does for the stock forecasters (mambapy's float32 ``A``, minGRU-pytorch's packed
linear: see :mod:`bench.harness.torch_models`).

Two workloads (``spec["workload"]``): ``"step"``, one train step on a random batch
(:func:`bench.harness.ltsf_data.step_data`), and ``"epoch"``, one epoch of ETTh1's training
windows in the fixed shuffled order (:mod:`bench.harness.ltsf_data`): each ``step()`` is
then a whole epoch, and its parity outputs are those of the epoch's first batch. Under
``torch.compile`` the epoch's last, partial batch is a second shape: it is compiled at
set-up too (with the first shape's, in the compile wait), not inside the timed epoch.

Module-level imports are NumPy and this package's shape modules only: the worker hosting
this model loads torch and the peer libraries, never the engine.
"""
from __future__ import annotations

import time

from bench.harness.ltsf_data import LINEAR_PATH, NORM, LtsfShape, epoch_batches, step_data, train_windows
from bench.harness.sizes import Size
from bench.harness.torch_models import MODEL_PEERS, PeerModel, _build

__all__ = ["REVIN_EPS", "WORKLOADS", "build_ltsf", "PeerLtsf"]

#: ``models.longhorizon.REVIN_EPS``, restated (this module may not import ``models``).
REVIN_EPS = 1e-5
#: What one ``step()`` of a long-horizon subject is.
WORKLOADS = ("step", "epoch")


def encoder_size(shape: LtsfShape) -> Size:
    """The encoder's shape as the stock models' :class:`Size` (batch: sequences per batch)."""
    return Size("ltsf", shape.sequences, shape.n_tokens, shape.hidden, shape.d_state)


def build_ltsf(model: str, shape: LtsfShape):
    """The long-horizon model in PyTorch (float32, the libraries' initialisation)."""
    import torch
    from torch import nn

    C, L, H, w = shape.n_channels, shape.lookback, shape.horizon, shape.seg_len
    if L % w:
        raise ValueError(f"seg_len {w} must divide the lookback {L}")
    T = L // w
    independent = shape.layout == "independent"

    class LongHorizon(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = _build(model, encoder_size(shape), shape.token_size, shape.outputs)
            if LINEAR_PATH:
                self.linear = nn.Linear(L, H)

        def forward(self, x):
            b = x.shape[0]
            if NORM == "revin":
                mu = x.mean(dim=1, keepdim=True)                                   # (b, 1, C)
                sd = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + REVIN_EPS)
                xn = (x - mu) / sd
            else:                       # the protocol's norm is RevIN; nothing else is restated
                raise NotImplementedError(NORM)
            xc = xn.transpose(1, 2)                                                # (b, C, L)
            if independent:
                deep = self.encoder(xc.reshape(b * C, T, w)).reshape(b, C, H)
            else:
                deep = self.encoder(xn.reshape(b, T, w * C)).reshape(b, H, C).transpose(1, 2)
            yc = deep + self.linear(xc) if LINEAR_PATH else deep                   # (b, C, H)
            y = yc.transpose(1, 2) * sd + mu                                       # (b, H, C)
            return y.reshape(b, H * C)

    return LongHorizon()


class PeerLtsf(PeerModel):
    """The long-horizon model in PyTorch, ready to train (see the module docstring).

    Parameters
    ----------
    spec : dict
        ``model``, ``dtype``, ``shape`` (an :class:`LtsfShape` as a dict), ``workload``,
        ``seed``, ``threads`` and ``compile`` (bool).
    """

    def __init__(self, spec: dict):
        self.shape = LtsfShape(**spec["shape"])
        self.workload = spec.get("workload", "step")
        if self.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {self.workload!r}; choose one of {', '.join(WORKLOADS)}")
        super().__init__(spec)
        self.info["impl"] = (f"{self.name} long-horizon model in PyTorch "
                             f"({'torch.compile' if self.compiled else 'eager'}), one {self.workload}")
        self.info["assembled from"] = MODEL_PEERS[self.name] + " + RevIN, segments, linear path in torch"
        if self.workload == "epoch":
            self.info["epoch"] = {"windows": len(self.X), "batches": len(self.batches)}

    def _module(self, spec: dict):
        return build_ltsf(self.name, self.shape)

    def _data(self, spec: dict):
        if self.workload == "step":
            return step_data(self.shape, self.dtype, int(spec["seed"]))
        X, y = train_windows(self.shape, self.dtype)
        self.X, self.Y = self.torch.from_numpy(X), self.torch.from_numpy(y)
        self.batches = [self.torch.from_numpy(idx) for idx in epoch_batches(len(X), self.shape.batch,
                                                                             int(spec["seed"]))]
        first = self.batches[0].numpy()
        return X[first], y[first]

    def _compile_more(self) -> float:
        """Compile the epoch's last batch's shape, if it differs from the first's."""
        if self.workload != "epoch" or len(self.batches[-1]) == len(self.batches[0]):
            return 0.0
        idx = self.batches[-1]
        t0 = time.perf_counter()
        self.F.mse_loss(self.forward(self.X[idx]), self.Y[idx]).backward()
        self.module.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    def step(self) -> None:
        """One train step, or one epoch of them (``workload``)."""
        if self.workload == "step":
            super().step()
            return
        self.stepped = True
        F, opt, X, Y = self.F, self.optimizer, self.X, self.Y
        for idx in self.batches:
            opt.zero_grad(set_to_none=True)
            F.mse_loss(self.forward(X[idx]), Y[idx]).backward()
            opt.step()
