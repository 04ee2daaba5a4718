"""The four forecasters assembled in PyTorch from the peers: what a PyTorch user would train.

=========  ==================================================================================
ours       the same model in PyTorch (every part at its library's defaults)
=========  ==================================================================================
mamba      ``nn.Linear`` embedding -> mambapy ``ResidualBlock`` (``x + MambaBlock(RMSNorm(x))``,
           parallel scan) -> mambapy ``RMSNorm`` on the last step -> ``nn.Linear`` head
mingru     ``nn.Linear`` -> ``x + minGRU(RMSNorm(x))`` (minGRU-pytorch's ``minGRU``, mambapy's
           ``RMSNorm``) -> ``RMSNorm`` on the last step -> ``nn.Linear``
gru        ``torch.nn.GRU`` -> last step -> ``nn.Linear``
hybrid     ``nn.Linear`` -> the mamba and minGRU stacks above side by side ->
           ``sigmoid(alpha)`` fusion of their last steps -> ``RMSNorm`` -> ``nn.Linear``
=========  ==================================================================================

One layer per stack, hidden size ``d_model``, ``d_state`` states, one input feature and
one output (:func:`bench.harness.cases.build_forecaster` builds ours the same way). The
state-dict names are ours (mambapy's ResidualBlock has ``mixer`` and ``norm`` already),
except minGRU-pytorch's packed ``to_hidden_and_gate`` (no biases), which
:meth:`PeerModel.state` splits into our ``linear_h``/``linear_z`` with zero biases.

The train step is the textbook one: ``zero_grad``, ``F.mse_loss``, ``backward``,
``torch.optim.Adam(lr=1e-3)`` (our Adam's settings, both libraries' defaults). With
``compile=True`` the model is ``torch.compile(model)`` at its defaults (inductor); the
first step compiles forward and backward, and that wait is reported apart
(``info["compile seconds"]``).

What differs from our model, and how the parity check handles it:

* minGRU-pytorch is the log-space minGRU (candidate ``g(linear_h(x))``, see
  :mod:`bench.harness.peers`): our side of the check computes that function with our
  layers and kernels (:func:`bench.harness.wholemodel.log_space_mingru`); the timed
  model is our plain minGRU.
* mambapy computes ``A = -exp(A_log.float())`` and ``D.float()`` in float32 whatever the
  model's dtype. In float64 our model loads, in place of ``A_log``, the log of the
  float32 ``A`` mambapy computes with (:meth:`PeerModel.state`), so both compute with the
  same ``A`` and the prediction, loss and gradients are held at float64's tolerance;
  only the ``A_log`` and ``D`` gradients, which mambapy rounds to float32 on their way
  back through ``.float()``, are held at float32's (measured: 6e-8 and 7e-8).
* Every implementation is checked against one float64 reference (ours on NumPy, on the
  PyTorch model's float64 weights, which are its float32 initialisation widened, so the
  float32 model holds the same weights). In float32 minGRU-pytorch is further from it
  than float32's tolerance (:data:`FLOAT32_PEER_TOL`).

Module-level imports are NumPy and this package's sizes only: the worker hosting a peer
loads torch and the peer libraries, never the engine.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from bench.harness.sizes import Size, train_data

__all__ = ["MODEL_PEERS", "MODEL_MODULES", "FLOAT32_PEER_TOL", "float32_rounded_grads", "PeerModel"]

#: Model name -> what the peer model is assembled from (for tables).
MODEL_PEERS = {
    "mamba": "mambapy ResidualBlock + torch.nn",
    "mingru": "minGRU-pytorch minGRU + mambapy RMSNorm + torch.nn",
    "gru": "torch.nn.GRU + torch.nn.Linear",
    "hybrid": "mambapy ResidualBlock + minGRU-pytorch minGRU + torch.nn",
}
#: Libraries each peer model's worker imports (to tell "not installed" before starting it).
MODEL_MODULES = {
    "mamba": ("torch", "mambapy.mamba"),
    "mingru": ("torch", "mambapy.mamba", "minGRU_pytorch"),
    "gru": ("torch",),
    "hybrid": ("torch", "mambapy.mamba", "minGRU_pytorch"),
}


#: Parity tolerance of a float32 PyTorch model against the float64 reference, where it is not
#: float32's 1e-4: minGRU-pytorch's log-space scan (``logcumsumexp`` of logs, then ``exp``)
#: loses digits in float32. Measured at b=64, L=60, hidden 64: the gate weight's gradient
#: 3.8e-4 from the float64 result (the minGRU norm's 4e-5 to 7e-5), where our float32
#: model is within 7e-7 of it.
FLOAT32_PEER_TOL = {"mingru": 1e-3, "hybrid": 1e-3}


def float32_rounded_grads(names) -> tuple:
    """The gradients (our names) that mambapy rounds to float32 in a float64 model."""
    return tuple(n for n in names if n.endswith(("mixer.A_log", "mixer.D")))


def _build(model: str, size: Size, n_in: int = 1, n_out: int = 1):
    """The PyTorch model (float32, the libraries' initialisation): ``n_in`` features per step in,
    ``n_out`` outputs (the long-horizon model's encoder has more than one of each)."""
    import torch
    from torch import nn

    H, N = size.d_model, size.d_state

    def mamba_stack():
        from mambapy.mamba import MambaConfig, ResidualBlock

        return nn.ModuleList([ResidualBlock(MambaConfig(d_model=H, n_layers=1, d_state=N))])

    def mingru_stack():
        from mambapy.mamba import RMSNorm
        from minGRU_pytorch import minGRU

        class MinGRUResidual(nn.Module):
            """``x + minGRU(RMSNorm(x))``, the residual block mambapy builds around Mamba."""

            def __init__(self):
                super().__init__()
                self.mixer = minGRU(H)
                self.norm = RMSNorm(H)

            def forward(self, x):
                return self.mixer(self.norm(x)) + x

        return nn.ModuleList([MinGRUResidual()])

    def rmsnorm():
        from mambapy.mamba import RMSNorm

        return RMSNorm(H)

    class Forecaster(nn.Module):
        def __init__(self):
            super().__init__()
            if model == "gru":
                self.gru = nn.ModuleList([nn.GRU(n_in, H, batch_first=True)])
            else:
                self.embed = nn.Linear(n_in, H)
                if model == "mamba":
                    self.blocks = mamba_stack()
                elif model == "mingru":
                    self.blocks = mingru_stack()
                else:
                    self.mamba_blocks = mamba_stack()
                    self.mingru_blocks = mingru_stack()
                    self.alpha = nn.Parameter(torch.zeros(1))
                self.norm_f = rmsnorm()
            self.head = nn.Linear(H, n_out)

        def forward(self, x):
            if model == "gru":
                h = x
                for layer in self.gru:
                    h = layer(h)[0]
                return self.head(h[:, -1])
            e = self.embed(x)
            if model == "hybrid":
                ym, yg = e, e
                for block in self.mamba_blocks:
                    ym = block(ym)
                for block in self.mingru_blocks:
                    yg = block(yg)
                ym, yg = ym[:, -1], yg[:, -1]
                s = torch.sigmoid(self.alpha)
                return self.head(self.norm_f(s * ym + (1 - s) * yg))
            for block in self.blocks:
                e = block(e)
            return self.head(self.norm_f(e[:, -1]))

    return Forecaster()


def _to_ours(named: dict, zero_biases: bool) -> dict:
    """A peer model's state dict (or gradients), NumPy, under our names."""
    out = {}
    for key, value in named.items():
        if key.endswith("mixer.to_hidden_and_gate.weight"):     # minGRU-pytorch: rows hidden, then gate
            prefix = key[: -len("to_hidden_and_gate.weight")]
            H = value.shape[0] // 2
            out[prefix + "linear_h.weight"] = value[:H]
            out[prefix + "linear_z.weight"] = value[H:]
            if zero_biases:
                out[prefix + "linear_h.bias"] = np.zeros(H, dtype=value.dtype)
                out[prefix + "linear_z.bias"] = np.zeros(H, dtype=value.dtype)
        else:
            out[key] = value
    return out


class PeerModel:
    """A forecaster assembled in PyTorch from the peers, ready to train.

    Parameters
    ----------
    spec : dict
        ``model``, ``dtype``, ``size`` (a :class:`Size` as a dict), ``seed``, ``threads``
        and ``compile`` (bool).
    """

    def __init__(self, spec: dict):
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        self.name = spec["model"]
        default = torch.get_num_threads()
        torch.set_num_threads(int(spec["threads"]))
        torch.manual_seed(int(spec["seed"]))
        self.dtype = np.dtype(spec["dtype"])
        tdtype = {"float32": torch.float32, "float64": torch.float64}[self.dtype.name]
        self.module = self._module(spec).to(tdtype)
        self.compiled = bool(spec.get("compile"))
        self.forward = torch.compile(self.module) if self.compiled else self.module
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=1e-3)
        x, y = self._data(spec)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.stepped = False
        self.info = {"impl": f"{self.name} model in PyTorch ({'torch.compile' if self.compiled else 'eager'})",
                     "assembled from": MODEL_PEERS[self.name], "torch": torch.__version__,
                     "torch default threads": default, "torch threads": torch.get_num_threads(),
                     "torch interop threads": torch.get_num_interop_threads(),
                     "optimizer": "torch.optim.Adam(lr=1e-3)",
                     "engine modules loaded": sorted(m for m in ("engine", "models", "numba") if m in sys.modules)}
        if self.compiled:
            # The first call compiles the forward and backward graphs; measured here, apart
            # from the timed steps, on a copy of the weights (the step must start from them).
            saved = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
            t0 = time.perf_counter()
            self._loss().backward()
            first = time.perf_counter() - t0
            self.module.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            self._loss().backward()
            second = time.perf_counter() - t0
            self.module.zero_grad(set_to_none=True)
            extra = self._compile_more()
            self.module.load_state_dict(saved)
            self.info["first step seconds"] = first
            self.info["compile seconds"] = max(0.0, first - second) + extra

    def _module(self, spec: dict):
        """The untrained PyTorch model of ``spec`` (float32; subclasses build others)."""
        return _build(self.name, Size(**spec["size"]))

    def _data(self, spec: dict):
        """The batch ``(x, y)`` of ``spec`` as NumPy arrays in the model's dtype."""
        return train_data(Size(**spec["size"]), self.dtype, int(spec["seed"]))

    def _compile_more(self) -> float:
        """Seconds of compiling other shapes a subclass's step meets (none here)."""
        return 0.0

    def _loss(self):
        return self.F.mse_loss(self.forward(self.x), self.y)

    def step(self) -> None:
        """One optimisation step: zero_grad, forward, MSE, backward, Adam."""
        self.stepped = True
        self.optimizer.zero_grad(set_to_none=True)
        self._loss().backward()
        self.optimizer.step()

    def state(self) -> dict:
        """The weights under our names, as NumPy arrays (see the module docstring for ``A_log``)."""
        torch = self.torch
        sd = {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}
        if self.dtype == np.float64:
            for key, value in sd.items():
                if key.endswith("mixer.A_log"):     # log of the float32 A that mambapy computes with
                    a32 = torch.exp(torch.from_numpy(value).float()).double().numpy()
                    sd[key] = np.log(a32)
        return _to_ours(sd, zero_biases=True)

    def grad_names(self) -> list[str]:
        """Our names of the gradients the peer has (minGRU-pytorch has no biases), sorted."""
        return sorted(_to_ours({k: np.zeros((2, 1)) for k, _ in self.module.named_parameters()},
                               zero_biases=False))

    def outputs(self) -> tuple:
        """``(loss, prediction, *gradients by sorted name)`` from the initial weights.

        Raises
        ------
        RuntimeError
            After a step (the weights have moved).
        """
        if self.stepped:
            raise RuntimeError("outputs() must come before the first step")
        self.module.zero_grad(set_to_none=True)
        pred = self.forward(self.x)
        loss = self.F.mse_loss(pred, self.y)
        loss.backward()
        grads = _to_ours({k: p.grad.detach().numpy().copy() for k, p in self.module.named_parameters()},
                         zero_biases=False)
        self.module.zero_grad(set_to_none=True)
        return ((np.asarray(loss.item(), dtype=np.float64), pred.detach().numpy().copy())
                + tuple(grads[k] for k in sorted(grads)))
