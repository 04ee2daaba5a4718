"""Rebuild an exported model in PyTorch, from its safetensors file alone.

``cli.py export`` writes a checkpoint's weights under the PyTorch names our layers use
(:mod:`forecast.export`); this module holds the PyTorch twins of the four forecasters,
stock and long-horizon, written in plain ``torch`` (``nn.Linear``, an RMSNorm, a causal
depthwise ``nn.Conv1d``, the selective scan and minGRU as sequential loops,
``nn.GRU`` for the GRU layers) with the maths of ``DESIGN.md`` and of
:mod:`models.forecasters` / :mod:`models.longhorizon`, so the same window gives the same
forecast on both sides::

    from forecast.export_torch import load_torch_model
    model = load_torch_model("model.safetensors")      # eval mode, the file's dtype
    y = model(torch.from_numpy(x))                     # x (b, L, input_size) -> (b, horizon)
                                                       # long-horizon: (b, L, C) -> (b, horizon * C)
    model.scalers["target"].inverse_transform(y.detach().numpy().reshape(-1, 1))   # target units

The returned module carries what the file's metadata says, as plain attributes:
``model_config``, ``run_config``, ``protocol`` (``"stock"`` or ``"ltsf"``), ``metadata``
(every entry, decoded) and ``scalers`` (:func:`load_scalers`). Stock runs feed windows
after the run's per-window normalisation (``metadata["window_norm"]``) and the
``feature`` scaler, and their outputs are in the ``target`` scaler's units; long-horizon
runs take windows standardised by the ``series`` scaler and give forecasts on that scale,
step-major (``y.reshape(b, horizon, C)``).

This is the only module of the project that imports ``torch``; nothing else imports it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from forecast.export import read_metadata, scaler_names

__all__ = ["RMSNorm", "MambaBlock", "MinGRULayer", "PreNormResidual", "ResidualForecaster",
           "GRUForecaster", "HybridForecaster", "LongHorizonForecaster", "build_torch_model",
           "load_torch_model", "load_scalers"]

# The engine's constants (engine.layers.RMSNorm, models.longhorizon.REVIN_EPS); repeated
# here so that the PyTorch side does not import the NumPy engine.
RMS_EPS = 1e-5
REVIN_EPS = 1e-5


def _softplus(x: torch.Tensor) -> torch.Tensor:
    # The engine's exact form; F.softplus switches to x above 20, a 2e-9 difference.
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-x.abs()))


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x**2) + eps) * weight`` over the last axis (key ``weight``)."""

    def __init__(self, d: int, eps: float = RMS_EPS):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class MambaBlock(nn.Module):
    """Mamba's mixer, the reference "slow path", with ``mambapy`` / ``mamba_ssm`` keys.

    Parameters
    ----------
    d_model, d_state : int
    d_conv, expand : int
        As in :class:`models.mamba.MambaBlock` (the forecasters use 4 and 2).
    """

    def __init__(self, d_model: int, d_state: int, d_conv: int = 4, expand: int = 2):
        super().__init__()
        E, N = expand * d_model, d_state
        self.dt_rank = R = math.ceil(d_model / 16)
        self.d_state = N
        self.in_proj = nn.Linear(d_model, 2 * E, bias=False)
        # Depthwise, padded d_conv - 1 on both sides; keeping the first L outputs leaves
        # the left padding only, so step t sees inputs <= t.
        self.conv1d = nn.Conv1d(E, E, d_conv, groups=E, padding=d_conv - 1, bias=True)
        self.x_proj = nn.Linear(E, R + 2 * N, bias=False)
        self.dt_proj = nn.Linear(R, E, bias=True)
        self.A_log = nn.Parameter(torch.zeros(E, N))
        self.D = nn.Parameter(torch.ones(E))
        self.out_proj = nn.Linear(E, d_model, bias=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h (b, L, d_model) -> (b, L, d_model)``."""
        L = h.shape[1]
        x, z = self.in_proj(h).chunk(2, dim=-1)                             # (b, L, E) each
        u = F.silu(self.conv1d(x.transpose(1, 2))[..., :L].transpose(1, 2))
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = _softplus(self.dt_proj(dt))                                 # bias inside
        y = selective_scan(u, delta, -torch.exp(self.A_log), B, C, self.D)
        return self.out_proj(y * F.silu(z))


def selective_scan(u, delta, A, B, C, D) -> torch.Tensor:
    """``h[t] = exp(delta[t] A) h[t-1] + delta[t] B[t] u[t]``, ``y[t] = C[t] h[t] + D u[t]``.

    ``u, delta (b, L, E)``, ``A (E, N)``, ``B, C (b, L, N)``, ``D (E,)``; ``h[-1] = 0``.
    """
    b, L, E = u.shape
    h = u.new_zeros(b, E, A.shape[1])
    ys = []
    for t in range(L):
        dA = torch.exp(delta[:, t, :, None] * A)                            # (b, E, N)
        dBu = (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
        h = dA * h + dBu
        ys.append((h * C[:, t, None, :]).sum(-1) + D * u[:, t])
    return torch.stack(ys, dim=1)


class MinGRULayer(nn.Module):
    """minGRU, sequential mode: ``h[t] = (1 - z[t]) h[t-1] + z[t] h~[t]``, ``h[-1] = 0``."""

    def __init__(self, d_in: int, d_hidden: int):
        super().__init__()
        self.linear_z = nn.Linear(d_in, d_hidden)
        self.linear_h = nn.Linear(d_in, d_hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (b, L, d_in) -> every hidden state (b, L, H)``."""
        z, h_tilde = torch.sigmoid(self.linear_z(x)), self.linear_h(x)
        h = x.new_zeros(x.shape[0], h_tilde.shape[-1])
        hs = []
        for t in range(x.shape[1]):
            h = (1 - z[:, t]) * h + z[:, t] * h_tilde[:, t]
            hs.append(h)
        return torch.stack(hs, dim=1)


class PreNormResidual(nn.Module):
    """``x + mixer(norm(x))`` (keys ``norm.*``, ``mixer.*``)."""

    def __init__(self, norm: nn.Module, mixer: nn.Module):
        super().__init__()
        self.norm = norm
        self.mixer = mixer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x))


def _stack(kind: str, hidden: int, d_state: int, n_layers: int) -> nn.Sequential:
    """The engine's ``residual_stack``: keys ``{i}.norm.weight``, ``{i}.mixer.*``."""
    def mixer():
        return MambaBlock(hidden, d_state) if kind == "mamba" else MinGRULayer(hidden, hidden)
    return nn.Sequential(*(PreNormResidual(RMSNorm(hidden), mixer()) for _ in range(n_layers)))


class ResidualForecaster(nn.Module):
    """Mamba or minGRU: ``embed -> blocks -> last step -> norm_f -> head``."""

    def __init__(self, config: dict):
        super().__init__()
        H = int(config["hidden_size"])
        self.embed = nn.Linear(int(config["input_size"]), H)
        self.blocks = _stack(config["name"], H, int(config["d_state"]), int(config["n_layers"]))
        self.norm_f = RMSNorm(H)
        self.head = nn.Linear(H, int(config["horizon"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (b, L, input_size) -> (b, horizon)``."""
        # The final norm acts on each step alone, so only the step the head reads needs it.
        return self.head(self.norm_f(self.blocks(self.embed(x))[:, -1]))


class GRUForecaster(nn.Module):
    """Stacked ``nn.GRU`` layers (keys ``gru.{i}.weight_ih_l0`` ...), last step, head."""

    def __init__(self, config: dict):
        super().__init__()
        H, d_in = int(config["hidden_size"]), int(config["input_size"])
        # One nn.GRU per layer, not num_layers=n: the engine names them gru.{i}.*_l0.
        self.gru = nn.ModuleList(nn.GRU(d_in if i == 0 else H, H, batch_first=True)
                                 for i in range(int(config["n_layers"])))
        self.head = nn.Linear(H, int(config["horizon"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (b, L, input_size) -> (b, horizon)``."""
        for layer in self.gru:
            x, _ = layer(x)
        return self.head(x[:, -1])


class HybridForecaster(nn.Module):
    """Mamba and minGRU stacks on one embedding, fused on the last step by ``fusion``.

    ``y = s * y_mamba + (1 - s) * y_mingru`` with ``s = sigmoid(alpha)`` (``"scalar"``:
    ``alpha (1,)``; ``"channel"``: ``alpha (H,)``) or ``s = sigmoid(gate([y_mamba,
    y_mingru]))`` (``"gate"``), then ``norm_f`` and ``head``.
    """

    def __init__(self, config: dict):
        super().__init__()
        H, d_state, n = int(config["hidden_size"]), int(config["d_state"]), int(config["n_layers"])
        self.fusion = config.get("fusion", "scalar")
        self.embed = nn.Linear(int(config["input_size"]), H)
        self.mamba_blocks = _stack("mamba", H, d_state, n)
        self.mingru_blocks = _stack("mingru", H, d_state, n)
        if self.fusion == "gate":
            self.gate = nn.Linear(2 * H, H)
        else:
            self.alpha = nn.Parameter(torch.zeros(1 if self.fusion == "scalar" else H))
        self.norm_f = RMSNorm(H)
        self.head = nn.Linear(H, int(config["horizon"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (b, L, input_size) -> (b, horizon)``."""
        e = self.embed(x)
        ym, yg = self.mamba_blocks(e)[:, -1], self.mingru_blocks(e)[:, -1]
        logit = self.gate(torch.cat([ym, yg], dim=-1)) if self.fusion == "gate" else self.alpha
        s = torch.sigmoid(logit)
        return self.head(self.norm_f(yg + s * (ym - yg)))                  # s ym + (1 - s) yg


def _encoder(config: dict) -> nn.Module:
    if config["name"] == "gru":
        return GRUForecaster(config)
    if config["name"] == "hybrid":
        return HybridForecaster(config)
    if config["name"] in ("mamba", "mingru"):
        return ResidualForecaster(config)
    raise ValueError(f"unknown model {config['name']!r}")


class LongHorizonForecaster(nn.Module):
    """All channels in, all steps out: :class:`models.longhorizon.LongHorizonForecaster`.

    ``x (b, L, C)`` -> instance norm (``norm``) -> segment tokens of ``seg_len`` steps
    (``channels="independent"``: one univariate sequence per channel, shared weights;
    ``"mixed"``: tokens of all channels) -> encoder, plus the optional linear path
    ``L -> H`` per channel -> de-normalise -> ``(b, H * C)``, step-major.
    """

    def __init__(self, config: dict):
        super().__init__()
        self.C, self.L, self.H = int(config["input_size"]), int(config["seq_len"]), int(config["horizon"])
        self.channels, self.norm = config["channels"], config["norm"]
        self.seg_len = w = int(config["seg_len"])
        self.n_tokens = self.L // w
        independent = self.channels == "independent"
        self.encoder = _encoder(dict(config, input_size=w if independent else w * self.C,
                                     horizon=self.H if independent else self.H * self.C))
        self.linear = nn.Linear(self.L, self.H) if config["linear_path"] else None

    def _statistics(self, x: torch.Tensor):
        """``(level, scale)`` per window and channel, ``(b, 1, C)``; None where unused."""
        if self.norm == "none":
            return None, None
        if self.norm == "last":
            return x[:, -1:, :], None
        mu = x.mean(dim=1, keepdim=True)
        if self.norm == "mean":
            return mu, None
        return mu, torch.sqrt(x.var(dim=1, keepdim=True, correction=0) + REVIN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (b, L, C) -> y (b, H * C)``, ``y.reshape(b, H, C)[:, s, c]``."""
        b, C, H = x.shape[0], self.C, self.H
        mu, sd = self._statistics(x)
        xn = x if mu is None else (x - mu) if sd is None else (x - mu) / sd
        xc = xn.transpose(1, 2)                                             # (b, C, L)
        if self.channels == "independent":
            deep = self.encoder(xc.reshape(b * C, self.n_tokens, self.seg_len)).reshape(b, C, H)
        else:
            tokens = xn.reshape(b, self.n_tokens, self.seg_len * C)        # time-major tokens
            deep = self.encoder(tokens).reshape(b, H, C).transpose(1, 2)
        yc = deep + self.linear(xc) if self.linear is not None else deep    # (b, C, H)
        yn = yc.transpose(1, 2)                                             # (b, H, C)
        y = yn if mu is None else (yn + mu) if sd is None else yn * sd + mu
        return y.reshape(b, H * C)


def build_torch_model(model_config: dict) -> nn.Module:
    """The PyTorch twin of ``models.build_model(**model_config)``, untrained, float32.

    ``model_config`` with ``channels`` gives a :class:`LongHorizonForecaster`.
    """
    if model_config.get("channels") is not None:
        return LongHorizonForecaster(model_config)
    return _encoder(model_config)


def load_scalers(path) -> dict:
    """The fitted scalers saved with an exported model.

    Parameters
    ----------
    path : path-like
        A file written by ``cli.py export``.

    Returns
    -------
    dict
        ``{"feature": ..., "target": ...}`` (stock runs) or ``{"series": ...}``
        (long-horizon runs), each a :mod:`forecast.data.scaling` scaler with
        scikit-learn's ``transform`` / ``inverse_transform`` on ``(rows, columns)``.
    """
    return _scalers(read_metadata(path))


def _scalers(meta: dict) -> dict:
    from forecast.data.scaling import scaler_from_dict

    return {name: scaler_from_dict(meta["scalers"][name]) for name in scaler_names(meta["protocol"])}


def load_torch_model(path, dtype: torch.dtype | None = None) -> nn.Module:
    """The exported model as a ``torch.nn.Module`` in eval mode.

    Parameters
    ----------
    path : path-like
        A file written by ``cli.py export``.
    dtype : torch.dtype or None
        None (default): the dtype of the saved weights.

    Returns
    -------
    torch.nn.Module
        With attributes ``model_config``, ``run_config``, ``protocol``, ``metadata`` and
        ``scalers`` (see the module docstring). Every key of the file is loaded with
        ``strict=True``: none missing, none left over.

    Raises
    ------
    forecast.errors.UserInputError
        Not a file written by the exporter (see :func:`forecast.export.read_metadata`).
    """
    from safetensors.torch import load_file

    meta = read_metadata(path)
    state = load_file(str(path))
    model = build_torch_model(meta["model_config"])
    model.to(dtype or next(iter(state.values())).dtype)
    model.load_state_dict(state, strict=True)
    model.eval()
    model.metadata = meta
    model.model_config = meta["model_config"]
    model.run_config = meta["run_config"]
    model.protocol = meta["protocol"]
    model.scalers = _scalers(meta)         # from the metadata read above, not the file again
    return model
