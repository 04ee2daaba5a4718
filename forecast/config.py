"""RunConfig: every option of one training run, its default and its validation.

Sequences may be given as lists or comma-separated strings; :meth:`RunConfig.validate`
normalises them and raises :class:`~forecast.errors.UserInputError` (one line naming the
option) for unknown names and impossible values. The command line builds its ``train``
options from these fields, and ``compare`` its shared training options.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from engine.backend import BACKENDS, default_backend
from forecast.data import FEATURES, SCALERS, TARGETS, WINDOW_NORMS, parse_source
from forecast.data.frame import parse_day
from forecast.errors import UserInputError
from forecast.fileio import to_jsonable
from forecast.intervals import DEFAULT_LEVEL, INTERVAL_METHODS, check_level
from forecast.ltsf.protocol import LTSF, LTSF_DEFAULTS, PROTOCOLS, STOCK, STOCK_ONLY
from forecast.train import TrainSettings
from models.longhorizon import CHANNEL_MODES, INSTANCE_NORMS
from models.names import CLASSICAL, FUSIONS, HYBRID, MODEL_NAMES

__all__ = ["DTYPES", "RunConfig", "refuse_classical_under_ltsf", "STOCK_DEFAULTS", "LINEAR_INITS", "CHOICES", "TRUE_WORDS", "FALSE_WORDS",
           "protocol_defaults", "option_type"]

#: Parameter dtypes a run can train in.
DTYPES = ("float64", "float32")

#: Defaults of the options that depend on ``--protocol``, under the stock protocol (the
#: long-horizon protocol's are :data:`forecast.ltsf.protocol.LTSF_DEFAULTS`). Training
#: defaults have one home, forecast.train.TrainSettings.
STOCK_DEFAULTS = {
    "features": ("close",),
    "target": "close",
    "seq_len": 60,
    "horizon": 1,
    "split": (0.7, 0.15),
    "window_norm": "last",
    "scaler": "minmax",
    "hidden": 16,
    "layers": 1,
    "epochs": TrainSettings.epochs,
    "batch_size": TrainSettings.batch_size,
    "lr": TrainSettings.lr,
    "weight_decay": TrainSettings.weight_decay,
    "patience": TrainSettings.patience,
    "warmup": TrainSettings.warmup,
    "dtype": "float64",
    "level": DEFAULT_LEVEL,
    "interval": INTERVAL_METHODS[0],
}
#: Largest --epochs accepted: far beyond any training here, and below what progress bars
#: and counters can hold.
MAX_EPOCHS = 1_000_000
#: Options that only the long-horizon protocol has.
LTSF_ONLY = ("channels", "seg_len", "norm", "linear_path", "linear_init")
#: How the linear path starts: PyTorch's default uniform draw, or the least-squares map of
#: the training windows (see models.longhorizon.LongHorizonForecaster.init_linear_path).
LINEAR_INITS = ("random", "lstsq")
#: The allowed values of every run option that has a fixed set (the command lines' choices).
CHOICES = {"protocol": PROTOCOLS, "model": MODEL_NAMES, "backend": BACKENDS, "fusion": FUSIONS, "dtype": DTYPES,
           "target": TARGETS, "scaler": SCALERS, "window_norm": WINDOW_NORMS, "channels": CHANNEL_MODES,
           "norm": INSTANCE_NORMS, "linear_init": LINEAR_INITS, "interval": INTERVAL_METHODS}
#: How a true or a false option value may be written (any case).
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def protocol_defaults(protocol: str) -> dict:
    """``{option: default}`` of the options whose default depends on the protocol."""
    if protocol == LTSF:
        return {**{name: None for name in STOCK_ONLY}, **LTSF_DEFAULTS}
    return {**STOCK_DEFAULTS, **{name: None for name in LTSF_ONLY}}


def option_type(default):
    """How a command line reads a run option's text, from the type of its default (for an
    option of one protocol only, pass the other protocol's default): a true/false word
    (:data:`TRUE_WORDS`), an int, a float, a comma-separated list or the text itself.
    :meth:`RunConfig.validate` checks the value afterwards."""
    if isinstance(default, bool):
        return lambda s: str(s).strip().lower() in TRUE_WORDS
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, (list, tuple)):
        return lambda s: [t.strip() for t in str(s).split(",") if t.strip()]
    return str


def _process_default_backend() -> str:
    """The process-wide default backend (``MAMBA_GRU_BACKEND``, else numpy)."""
    try:
        return default_backend()
    except ValueError as exc:  # a bad environment value is the user's input too
        raise UserInputError(str(exc)) from None


@dataclass
class RunConfig:
    """All options of one training run (the ``cli.py train`` options, same defaults).

    Sequences may be given as lists or comma-separated strings (``features="open,close"``,
    ``split="0.7,0.15"``); :meth:`validate` normalises them to tuples.

    Fields left at ``None`` take the default of the chosen ``protocol``
    (:func:`protocol_defaults`) when :meth:`validate` runs; an option of one protocol given
    under the other is refused.

    Attributes
    ----------
    protocol : {"stock", "ltsf"}
        ``stock``: one price series, the stock pipeline below. ``ltsf``: the long-horizon
        benchmark protocol (:mod:`forecast.ltsf`): fixed borders, a standard scaler per
        channel, all channels in and out, metrics on the standardised scale.
    model : {"mamba", "mingru", "gru", "hybrid"}
    backend : {"numpy", "numba"}
    data : str
        ``sample:TICKER``, ``yahoo:TICKER`` or a CSV path.
    start, end : str or None
        Inclusive ISO dates; ``None``: the whole file, or 2010-01-01 / 2023-12-31 for Yahoo.
    features : tuple of str
        Inputs per day, from ``open high low close volume return``.
    target : {"close", "return"}
        Next close(s) or next daily log return(s).
    seq_len, horizon : int
        Input window length and number of days predicted.
    split : (float, float)
        Train and validation fractions of the rows; the test part is the rest.
    window_norm : {"last", "none"}
        ``last``: each window relative to its last input close (prices ``x / p0 - 1``,
        volume ``log((v + 1) / (window mean + 1))``, a close target ``y / p0 - 1``; see
        :mod:`forecast.data.dataset`), so the model never extrapolates to unseen price
        levels. ``none``: raw values.
    scaler : {"minmax", "standard"}
        Fitted on the training part after the window normalisation.
    hidden, d_state, layers : int
        Model width, Mamba state size, blocks per branch.
    fusion : {"scalar", "channel", "gate"}
        Hybrid only.
    channels : {"independent", "mixed"}
        ltsf only: each channel a univariate series through shared weights, or all
        channels in every token (see :mod:`models.longhorizon`).
    seg_len : int
        ltsf only: steps per token (must divide ``seq_len``).
    norm : {"none", "last", "mean", "revin"}
        ltsf only: instance normalisation of each window (see :mod:`models.longhorizon`).
    linear_path : bool
        ltsf only: a linear window-to-horizon path beside the encoder.
    linear_init : {"random", "lstsq"}
        ltsf only: the linear path starts at a random draw, or at the least-squares map of
        the training windows with the encoder's head at zero.
    epochs, batch_size : int
    lr, weight_decay, clip : float
        Peak learning rate, AdamW decoupled decay, max gradient norm (0: no clipping).
    patience : int
        Early-stopping patience in epochs (0: off).
    warmup : int
        Warm-up epochs before the cosine decay (if it is not below ``epochs``, the
        whole run is warm-up).
    seed : int
        Seeds the weights and the mini-batch order.
    dtype : {"float64", "float32"}
    level : float
        Stock only: nominal coverage of the prediction intervals, in percent (default 90).
    interval : {"adaptive", "split"}
        Stock only: how the intervals are calibrated from the validation part's errors
        (:mod:`forecast.intervals`); both are scored in ``metrics.json``, this one fills
        ``lower`` and ``upper`` of ``predictions.csv``.
    out : str or None
        Output folder; ``None``: ``results/<model>-<timestamp>``.
    """

    protocol: str = STOCK
    model: str = HYBRID
    backend: str = field(default_factory=_process_default_backend)
    data: str = "sample:AAPL"
    start: str | None = None
    end: str | None = None
    # None: the protocol's default (STOCK_DEFAULTS, LTSF_DEFAULTS).
    features: tuple | None = None
    target: str | None = None
    seq_len: int | None = None
    horizon: int | None = None
    split: tuple | None = None
    window_norm: str | None = None
    scaler: str | None = None
    hidden: int | None = None
    d_state: int = 16
    layers: int | None = None
    fusion: str = "scalar"
    channels: str | None = None
    seg_len: int | None = None
    norm: str | None = None
    linear_path: bool | None = None
    linear_init: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    clip: float = TrainSettings.clip
    patience: int | None = None
    warmup: int | None = None
    seed: int = TrainSettings.seed
    dtype: str | None = None
    level: float | None = None
    interval: str | None = None
    out: str | None = None

    # -- validation -------------------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Check every value and normalise in place; returns ``self``.

        Raises
        ------
        UserInputError
            Unknown names or impossible values, with the option named.
        """
        self.protocol = _choice("--protocol", self.protocol, PROTOCOLS)
        self._resolve_protocol_defaults()
        # The classical baselines run through compare and backtest with the same options.
        self.model = _choice("--model", self.model, MODEL_NAMES + CLASSICAL)
        self.backend = _choice("--backend", self.backend, BACKENDS)
        self.fusion = _choice("--fusion", self.fusion, FUSIONS)
        self.dtype = _choice("--dtype", np.dtype(self.dtype).name if _is_dtype(self.dtype) else self.dtype,
                             DTYPES)
        self.data = str(self.data).strip()
        parse_source(self.data)
        if self.protocol == LTSF:
            self._validate_ltsf()
        else:
            self._validate_stock()
        for name in ("seq_len", "horizon", "hidden", "d_state", "layers", "epochs", "batch_size"):
            setattr(self, name, _integer(name, getattr(self, name), minimum=1))
        for name in ("patience", "warmup", "seed"):
            setattr(self, name, _integer(name, getattr(self, name), minimum=0))
        self.lr = _real("lr", self.lr, positive=True)
        self.weight_decay = _real("weight_decay", self.weight_decay)
        self.clip = _real("clip", self.clip)
        if self.lr > 1.0:
            raise UserInputError(f"--lr {self.lr:g} is far too large; use a value like 1e-3")
        self._check_training_bounds()
        if self.protocol == LTSF and self.seq_len % self.seg_len:
            raise UserInputError(f"--seg-len {self.seg_len} must divide --seq-len {self.seq_len}")
        if self.out is not None:
            self.out = str(self.out)
        return self

    def _check_training_bounds(self) -> None:
        """Refuse epochs and weight decays no training can use (each would run, uselessly)."""
        if self.epochs > MAX_EPOCHS:
            raise UserInputError(f"--epochs {self.epochs} is beyond any training; at most {MAX_EPOCHS}")
        # AdamW multiplies each decayed weight by 1 - lr * wd per step: at or below 0 the
        # weights flip sign or vanish every step and training diverges.
        if self.lr * self.weight_decay >= 1.0:
            raise UserInputError(f"--weight-decay {self.weight_decay:g} with --lr {self.lr:g} scales the weights "
                                 f"by 1 - lr * wd = {1 - self.lr * self.weight_decay:.3g} every step; use a weight "
                                 f"decay below {1 / self.lr:.3g} (typically 0.01)")

    def _resolve_protocol_defaults(self) -> None:
        """Fill options left at None from the protocol; refuse the other protocol's options."""
        for name, default in protocol_defaults(self.protocol).items():
            value = getattr(self, name)
            if default is None and value is not None and not _is_empty(value):
                option = "--" + name.replace("_", "-")
                raise UserInputError(f"{option} does not apply under --protocol {self.protocol} "
                                     f"({_protocol_note(self.protocol)})")
            if value is None:
                if (name == "linear_init" and self.protocol == LTSF
                        and not _boolean("--linear-path", self.linear_path)):
                    default = "random"      # no linear path to start: the default has no object
                setattr(self, name, default)

    def _validate_ltsf(self) -> None:
        refuse_classical_under_ltsf([self.model], self.protocol)
        self.channels = _choice("--channels", self.channels, CHANNEL_MODES)
        self.seg_len = _integer("seg_len", self.seg_len, minimum=1)
        self.norm = _choice("--norm", self.norm, INSTANCE_NORMS)
        self.linear_path = _boolean("--linear-path", self.linear_path)
        self.linear_init = _choice("--linear-init", self.linear_init, LINEAR_INITS)
        if self.linear_init == "lstsq" and not self.linear_path:
            raise UserInputError("--linear-init lstsq starts the linear path: it needs --linear-path")
        spec = parse_source(self.data)
        if spec.kind in ("sample", "yahoo"):
            raise UserInputError(f"--protocol ltsf takes a multichannel series (ett:ETTh1, ett:ETTh2, "
                                 f"ltsf:exchange or a dated CSV), not {self.data}")

    def _validate_stock(self) -> None:
        self.target = _choice("--target", self.target, TARGETS)
        self.scaler = _choice("--scaler", self.scaler, SCALERS)
        self.window_norm = _choice("--window-norm", self.window_norm, WINDOW_NORMS)
        spec = parse_source(self.data)
        if spec.kind in ("ett", "ltsf"):
            raise UserInputError(f"{self.data} is a multichannel benchmark series: use --protocol ltsf")
        for name in ("start", "end"):
            value = getattr(self, name)
            if value in ("", None):
                setattr(self, name, None)
                continue
            setattr(self, name, parse_day(value, f"--{name}").isoformat())
        if self.start and self.end and self.end <= self.start:
            raise UserInputError(f"--end ({self.end}) must come after --start ({self.start})")
        self.features = _features(self.features)
        self.split = _split(self.split)
        self.interval = _choice("--interval", self.interval, INTERVAL_METHODS)
        try:
            self.level = check_level(self.level)
        except (TypeError, ValueError) as exc:
            raise UserInputError(str(exc) if isinstance(exc, ValueError) and "--level" in str(exc)
                                 else f"--level {self.level!r}: a number of percent, e.g. 90") from None

    # -- conversion -------------------------------------------------------------------
    @classmethod
    def defaults(cls, protocol: str = STOCK) -> dict:
        """``{field: default}`` for every field under ``protocol`` (the backend's comes
        from the environment; the other protocol's options are None)."""
        values = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                  for f in dataclasses.fields(cls)}
        values.update(protocol_defaults(protocol), protocol=protocol)
        return values

    def to_dict(self) -> dict:
        """The fields as plain JSON values (tuples become lists)."""
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict) -> "RunConfig":
        """Build from :meth:`to_dict` output (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserInputError(f"unknown run option(s): {', '.join(unknown)}")
        return cls(**values)

    def model_options(self, input_size: int) -> dict:
        """The keyword arguments of :func:`models.build_model` for this run's architecture on
        data of ``input_size`` features (channels); backend, dtype and seed are not among them."""
        options = dict(name=self.model, input_size=input_size, hidden_size=self.hidden, d_state=self.d_state,
                       n_layers=self.layers, horizon=self.horizon, fusion=self.fusion)
        if self.protocol == LTSF:
            options.update(channels=self.channels, seq_len=self.seq_len, seg_len=self.seg_len, norm=self.norm,
                           linear_path=self.linear_path)
        return options

    def train_settings(self) -> TrainSettings:
        """The subset that :func:`forecast.train.fit` needs."""
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                             weight_decay=self.weight_decay, clip=self.clip, patience=self.patience,
                             warmup=self.warmup, seed=self.seed)

    def data_key(self) -> tuple:
        """Everything :func:`load_dataset` depends on (two configs with equal keys share data)."""
        features = tuple(self.features) if self.features is not None else None
        split = tuple(self.split) if self.split is not None else None
        return (self.protocol, self.data, self.start, self.end, features, self.target, self.seq_len,
                self.horizon, split, self.scaler, self.window_norm)


def refuse_classical_under_ltsf(models, protocol) -> None:
    """One line when classical baselines are asked for under ``--protocol ltsf``."""
    names = [m for m in models if str(m).strip().lower() in CLASSICAL]
    if names and protocol == LTSF:
        raise UserInputError(f"{'/'.join(names)} {'is' if len(names) == 1 else 'are'} not available under "
                             f"--protocol {LTSF} yet")


def _is_dtype(value) -> bool:
    return isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic))


def _is_empty(value) -> bool:
    return isinstance(value, (str, list, tuple)) and len(value) == 0


def _protocol_note(protocol: str) -> str:
    if protocol == LTSF:
        return ("its borders, scaler, channels and metrics are fixed by the benchmark; "
                "see README 'Long-horizon benchmarks'")
    return "it is an option of --protocol ltsf"


def _boolean(option: str, value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise UserInputError(f"{option} must be true or false, got {value!r}")


def _choice(option: str, value, allowed) -> str:
    key = str(value).strip().lower()
    if key not in allowed:
        raise UserInputError(f"{option}: unknown value {value!r}; choose one of {', '.join(allowed)}")
    return key


def _integer(name: str, value, minimum: int) -> int:
    option = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        raise UserInputError(f"{option} must be an integer, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{option} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise UserInputError(f"{option} must be an integer, got {value!r}")
    if number < minimum:
        raise UserInputError(f"{option} must be at least {minimum}, got {int(number)}")
    return int(number)


def _real(name: str, value, positive: bool = False) -> float:
    option = "--" + name.replace("_", "-")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{option} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise UserInputError(f"{option} must be {'positive' if positive else 'zero or positive'}, "
                             f"got {value!r}")
    return number


def _items(value) -> list:
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    try:
        return [str(t).strip() for t in value]
    except TypeError:
        return [str(value)]


def _features(value) -> tuple:
    names = [t.lower() for t in _items(value)]
    if not names:
        raise UserInputError(f"--features: give at least one of {', '.join(FEATURES)}")
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise UserInputError(f"--features: unknown feature(s) {', '.join(unknown)}; "
                             f"choose from {', '.join(FEATURES)}")
    if len(set(names)) != len(names):
        raise UserInputError(f"--features: a feature is listed twice in {','.join(names)}")
    return tuple(names)


def _split(value) -> tuple:
    items = _items(value)
    try:
        fractions = [float(t) for t in items]
    except ValueError:
        raise UserInputError(f"--split must be two fractions like 0.7,0.15, got {value!r}") from None
    if len(fractions) != 2:
        raise UserInputError(f"--split takes two fractions (train, validation) like 0.7,0.15; "
                             f"got {len(fractions)}")
    train, val = fractions
    if not (0 < train < 1 and 0 < val < 1 and train + val < 1):
        raise UserInputError(f"--split {train:g},{val:g}: each fraction must lie in (0, 1) and their sum "
                             "below 1, so the test part is not empty")
    return (train, val)

