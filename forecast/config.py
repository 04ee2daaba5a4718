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
from forecast.train import TrainSettings
from models.names import FUSIONS, HYBRID, MODEL_NAMES

__all__ = ["DTYPES", "RunConfig"]

#: Parameter dtypes a run can train in.
DTYPES = ("float64", "float32")


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

    Attributes
    ----------
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
    out : str or None
        Output folder; ``None``: ``results/<model>-<timestamp>``.
    """

    model: str = HYBRID
    backend: str = field(default_factory=_process_default_backend)
    data: str = "sample:AAPL"
    start: str | None = None
    end: str | None = None
    features: tuple = ("close",)
    target: str = "close"
    seq_len: int = 60
    horizon: int = 1
    split: tuple = (0.7, 0.15)
    window_norm: str = "last"
    scaler: str = "minmax"
    hidden: int = 16
    d_state: int = 16
    layers: int = 1
    fusion: str = "scalar"
    # Training defaults have one home, forecast.train.TrainSettings.
    epochs: int = TrainSettings.epochs
    batch_size: int = TrainSettings.batch_size
    lr: float = TrainSettings.lr
    weight_decay: float = TrainSettings.weight_decay
    clip: float = TrainSettings.clip
    patience: int = TrainSettings.patience
    warmup: int = TrainSettings.warmup
    seed: int = TrainSettings.seed
    dtype: str = "float64"
    out: str | None = None

    # -- validation -------------------------------------------------------------------
    def validate(self) -> "RunConfig":
        """Check every value and normalise in place; returns ``self``.

        Raises
        ------
        UserInputError
            Unknown names or impossible values, with the option named.
        """
        self.model = _choice("--model", self.model, MODEL_NAMES)
        self.backend = _choice("--backend", self.backend, BACKENDS)
        self.fusion = _choice("--fusion", self.fusion, FUSIONS)
        self.target = _choice("--target", self.target, TARGETS)
        self.scaler = _choice("--scaler", self.scaler, SCALERS)
        self.window_norm = _choice("--window-norm", self.window_norm, WINDOW_NORMS)
        self.dtype = _choice("--dtype", np.dtype(self.dtype).name if _is_dtype(self.dtype) else self.dtype,
                             DTYPES)
        self.data = str(self.data).strip()
        parse_source(self.data)
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
        for name in ("seq_len", "horizon", "hidden", "d_state", "layers", "epochs", "batch_size"):
            setattr(self, name, _integer(name, getattr(self, name), minimum=1))
        for name in ("patience", "warmup", "seed"):
            setattr(self, name, _integer(name, getattr(self, name), minimum=0))
        self.lr = _real("lr", self.lr, positive=True)
        self.weight_decay = _real("weight_decay", self.weight_decay)
        self.clip = _real("clip", self.clip)
        if self.lr > 1.0:
            raise UserInputError(f"--lr {self.lr:g} is far too large; use a value like 1e-3")
        if self.out is not None:
            self.out = str(self.out)
        return self

    # -- conversion -------------------------------------------------------------------
    @classmethod
    def defaults(cls) -> dict:
        """``{field: default}`` for every field (the backend's comes from the environment)."""
        return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(cls)}

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

    def train_settings(self) -> TrainSettings:
        """The subset that :func:`forecast.train.fit` needs."""
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                             weight_decay=self.weight_decay, clip=self.clip, patience=self.patience,
                             warmup=self.warmup, seed=self.seed)

    def data_key(self) -> tuple:
        """Everything :func:`load_dataset` depends on (two configs with equal keys share data)."""
        return (self.data, self.start, self.end, tuple(self.features), self.target, self.seq_len,
                self.horizon, tuple(self.split), self.scaler, self.window_norm)


def _is_dtype(value) -> bool:
    return isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic))


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

