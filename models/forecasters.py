"""The four forecasters: a window ``(batch, seq_len, input_size)`` in, ``(batch, horizon)`` out.

Every forecaster encodes the window into features ``(b, L, H)``, keeps the last time
step and maps it with a linear head to the horizon::

    mamba / mingru:  embed -> n x [x + mixer(RMSNorm(x))] -> norm_f -> last step -> head
    gru:             n stacked GRU layers                 -> last step -> head
    hybrid:          embed -> { mamba stack, minGRU stack } -> fuse -> norm_f -> last step -> head

Use :func:`models.build_model` to construct them by name.
"""
from __future__ import annotations

import numpy as np

from engine.functional import sigmoid
from engine.layers import Linear, RMSNorm
from engine.module import Module, derive_seed
from models.blocks import PreNormResidual, Sequential
from models.gru import GRULayer
from models.mamba import MambaBlock
from models.mingru import MinGRULayer
from models.names import HYBRID, RNN_BASELINE


class Forecaster(Module):
    """Shared front and back: input checks, last-step selection and the linear head.

    Subclasses register their layers, then call :meth:`_add_head`, and implement
    ``encode(x) -> (b, H)``, the features of the last time step (all the head sees), and
    ``encode_backward(dlast) -> dx``. Whatever acts on each time step alone after the
    sequence layers (the final norm, the hybrid's fusion) runs on the last step only:
    the other steps' values could never reach the output.

    Parameters
    ----------
    config : dict
        Architecture, the keyword arguments of :func:`models.build_model` except
        ``backend``, ``dtype`` and ``seed``.
    backend, dtype, seed
        See :class:`engine.module.Module`.
    """

    name = "forecaster"

    def __init__(self, config: dict, backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(backend=backend, dtype=dtype, seed=seed)
        self.config = dict(config)
        self.input_size = int(config["input_size"])
        self.hidden_size = int(config["hidden_size"])
        self.horizon = int(config["horizon"])

    def _child_kwargs(self, stream: int) -> dict:
        return dict(backend=self.backend, dtype=self.dtype, seed=derive_seed(self.seed, stream))

    def _add_head(self) -> None:
        # Registered last so the state dict reads in data-flow order.
        self.head = self.add_child("head", Linear(self.hidden_size, self.horizon, **self._child_kwargs(99)))

    def encode(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_backward(self, dlast: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _at_last_step(dlast: np.ndarray, shape) -> np.ndarray:
        """A ``(b, L, H)`` gradient that is ``dlast`` at the last step and 0 before it."""
        dseq = np.zeros(shape, dtype=dlast.dtype)
        dseq[:, -1] = dlast
        return dseq

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Forecast. ``x (b, L, input_size) -> y (b, horizon)``.

        Raises
        ------
        ValueError
            If ``x`` is not 3-D with ``input_size`` features or has no time steps.
        """
        x = self._as_input(x)
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[1] < 1:
            raise ValueError(
                f"{self.name} expects input of shape (batch, seq_len>=1, {self.input_size}), got {x.shape}")
        return self.head.forward(self.encode(x))                         # (b, H) -> (b, horizon)

    def warm_up(self, x: np.ndarray | None = None) -> float:
        """Compile the kernels this model uses (see :meth:`engine.module.Module.warm_up`);
        ``x`` defaults to a tiny window ``(2, 2, input_size)``."""
        if x is None:
            x = np.zeros((2, 2, self.input_size), dtype=self.dtype)
        return super().warm_up(x)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """``dy (b, horizon) -> dx (b, L, input_size)``; accumulates every parameter grad."""
        return self.encode_backward(self.head.backward(self._as_input(dy)))   # (b, H) -> dx


def residual_stack(kind: str, hidden: int, d_state: int, n_layers: int,
                   backend, dtype, seed: int) -> Sequential:
    """``n_layers`` pre-norm residual blocks ``x + mixer(RMSNorm(x))`` of width ``hidden``.

    Parameters
    ----------
    kind : {"mamba", "mingru"}
        The sequence mixer inside each block.
    hidden, d_state, n_layers : int
    backend, dtype, seed
        See :class:`engine.module.Module`; every block gets its own seed stream.

    Returns
    -------
    Sequential
        Keys ``{i}.norm.weight`` and ``{i}.mixer.*``.
    """
    blocks = []
    for i in range(n_layers):
        kw = dict(backend=backend, dtype=dtype)
        block_seed = derive_seed(seed, i)
        if kind == "mamba":
            mixer = MambaBlock(hidden, d_state=d_state, seed=derive_seed(block_seed, 0), **kw)
        else:
            mixer = MinGRULayer(hidden, hidden, seed=derive_seed(block_seed, 0), **kw)
        norm = RMSNorm(hidden, seed=derive_seed(block_seed, 1), **kw)
        blocks.append(PreNormResidual(norm, mixer, **kw))
    return Sequential(blocks, backend=backend, dtype=dtype)


class ResidualForecaster(Forecaster):
    """Mamba or minGRU forecaster: embedding, residual stack, final norm, head.

    Keys ``embed.*``, ``blocks.{i}.norm.weight``, ``blocks.{i}.mixer.*``, ``norm_f.weight``,
    ``head.*``.
    """

    def __init__(self, config: dict, backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(config, backend=backend, dtype=dtype, seed=seed)
        self.name = config["name"]
        H = self.hidden_size
        self.embed = self.add_child("embed", Linear(self.input_size, H, **self._child_kwargs(0)))
        kw = self._child_kwargs(1)
        self.blocks = self.add_child("blocks", residual_stack(
            self.name, H, int(config["d_state"]), int(config["n_layers"]), **kw))
        self.norm_f = self.add_child("norm_f", RMSNorm(H, **self._child_kwargs(2)))
        self._add_head()

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, input_size) -> features of the last step (b, H)``."""
        seq = self.blocks.forward(self.embed.forward(x))                 # (b, L, H)
        self._seq_shape = seq.shape
        return self.norm_f.forward(seq[:, -1])

    def encode_backward(self, dlast: np.ndarray) -> np.ndarray:
        """``dlast (b, H) -> dx (b, L, input_size)``."""
        dseq = self._at_last_step(self.norm_f.backward(dlast), self._seq_shape)
        return self.embed.backward(self.blocks.backward(dseq))


class GRUForecaster(Forecaster):
    """Stacked GRU layers (the first maps ``input_size -> H``), then the head.

    Keys ``gru.{i}.weight_ih_l0`` ... ``gru.{i}.bias_hh_l0``, ``head.*``.
    """

    name = RNN_BASELINE

    def __init__(self, config: dict, backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(config, backend=backend, dtype=dtype, seed=seed)
        H = self.hidden_size
        layers = [GRULayer(self.input_size if i == 0 else H, H, **self._child_kwargs(10 + i))
                  for i in range(int(config["n_layers"]))]
        self.gru = self.add_child("gru", Sequential(layers, backend=self.backend, dtype=self.dtype))
        self._add_head()

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, input_size) -> the top layer's last hidden state (b, H)``."""
        h = self.gru.forward(x)                                          # (b, L, H)
        self._seq_shape = h.shape
        return h[:, -1]

    def encode_backward(self, dlast: np.ndarray) -> np.ndarray:
        """``dlast (b, H) -> dx (b, L, input_size)``."""
        return self.gru.backward(self._at_last_step(dlast, self._seq_shape))


class HybridForecaster(Forecaster):
    """Mamba and minGRU branches on the same embedded sequence, fused by a learned weight.

    ``y = s * y_mamba + (1 - s) * y_mingru`` where ``s`` depends on ``fusion``:

    - ``"scalar"``: ``s = sigmoid(alpha)``, ``alpha`` of shape ``(1,)`` starting at 0;
    - ``"channel"``: ``s = sigmoid(alpha)`` per channel, ``alpha`` of shape ``(H,)`` at 0;
    - ``"gate"``: ``s = sigmoid(gate([y_mamba, y_mingru]))`` per channel, with ``gate`` a
      ``Linear(2H, H)`` whose bias starts at 0.

    Only the last step is fused (and normalised): the forecast reads nothing else.

    Keys ``embed.*``, ``mamba_blocks.{i}.*``, ``mingru_blocks.{i}.*``, ``alpha`` or
    ``gate.*``, ``norm_f.weight``, ``head.*``.
    """

    name = HYBRID

    def __init__(self, config: dict, backend=None, dtype=np.float64, seed: int = 0):
        super().__init__(config, backend=backend, dtype=dtype, seed=seed)
        H = self.hidden_size
        d_state, n_layers = int(config["d_state"]), int(config["n_layers"])
        self.fusion = config["fusion"]
        self.embed = self.add_child("embed", Linear(self.input_size, H, **self._child_kwargs(0)))
        self.mamba_blocks = self.add_child(
            "mamba_blocks", residual_stack("mamba", H, d_state, n_layers, **self._child_kwargs(1)))
        self.mingru_blocks = self.add_child(
            "mingru_blocks", residual_stack("mingru", H, d_state, n_layers, **self._child_kwargs(3)))
        if self.fusion == "scalar":
            self.add_param("alpha", np.zeros(1))
        elif self.fusion == "channel":
            self.add_param("alpha", np.zeros(H))
        else:
            self.gate = self.add_child("gate", Linear(2 * H, H, **self._child_kwargs(4)))
            self.gate.p("bias")[...] = 0           # both branches weighted 1/2 on average at start
        self.norm_f = self.add_child("norm_f", RMSNorm(H, **self._child_kwargs(2)))
        self._add_head()
        self._cache = None

    @property
    def fusion_weight(self):
        """The weight ``s`` of the Mamba branch (``1 - s`` goes to minGRU).

        Returns
        -------
        float, ndarray or None
            ``"scalar"``: a float; ``"channel"``: an array of shape ``(H,)``;
            ``"gate"``: the mean gate value (last step, whole batch) of the last forward
            pass as a float, or ``None`` before the first forward pass.
        """
        if self.fusion == "scalar":
            return float(sigmoid(self.p("alpha"))[0])
        if self.fusion == "channel":
            return sigmoid(self.p("alpha"))
        return None if self._cache is None else float(np.mean(self._cache[2]))

    def _mix_weight(self, ym: np.ndarray, yg: np.ndarray) -> np.ndarray:
        if self.fusion == "gate":
            return sigmoid(self.gate.forward(np.concatenate([ym, yg], axis=-1)))   # (b, H)
        return sigmoid(self.p("alpha"))                                   # (1,) or (H,), broadcast

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``x (b, L, input_size) -> fused features of the last step (b, H)``."""
        e = self.embed.forward(x)                                         # (b, L, H)
        ym_seq = self.mamba_blocks.forward(e)                             # (b, L, H)
        yg_seq = self.mingru_blocks.forward(e)                            # (b, L, H)
        ym, yg = ym_seq[:, -1], yg_seq[:, -1]                             # (b, H) each
        s = self._mix_weight(ym, yg)
        self._cache = (ym, yg, s)
        self._seq_shape = ym_seq.shape
        return self.norm_f.forward(yg + s * (ym - yg))                    # s * ym + (1 - s) * yg

    def encode_backward(self, dlast: np.ndarray) -> np.ndarray:
        """``dlast (b, H) -> dx (b, L, input_size)``."""
        ym, yg, s = self._cache
        dy = self.norm_f.backward(dlast)                                  # (b, H)
        dpre = dy * (ym - yg) * s * (1 - s)                               # d loss / d logit of s
        dym, dyg = dy * s, dy * (1 - s)
        if self.fusion == "gate":
            dcat = self.gate.backward(dpre)                               # (b, 2H)
            dym = dym + dcat[:, :self.hidden_size]
            dyg = dyg + dcat[:, self.hidden_size:]
        else:
            # alpha is broadcast over the batch (and, "scalar", the channels): sum them out.
            self.g("alpha")[...] += dpre.reshape(-1, s.size).sum(axis=0)
        de = self.mamba_blocks.backward(self._at_last_step(dym, self._seq_shape))
        de += self.mingru_blocks.backward(self._at_last_step(dyg, self._seq_shape))
        return self.embed.backward(de)
