"""The search space of ``cli.py tune``: which run options a trial draws, and from what.

A space is an ordered mapping ``{option: dimension}`` over :class:`forecast.config.RunConfig`
fields. Three kinds of dimension cover every option tuned here: :class:`Choice` (a fixed
list of values: sizes, names), :class:`IntRange` and :class:`FloatRange` (optionally on a
log scale, as learning rates are searched).

The documented default space (:func:`default_space`) depends on the model and the
protocol:

=================  ===========================  ===================================
option             stock protocol               ``--protocol ltsf``
=================  ===========================  ===================================
``hidden``         8, 16, 32, 64                16, 32, 64, 128
``d_state``        8, 16, 32 (mamba, hybrid)    8, 16, 32 (mamba, hybrid)
``layers``         1 to 2                       1 to 2
``lr``             1e-4 to 1e-2, log scale      1e-4 to 1e-2, log scale
``weight_decay``   0, 1e-4, 1e-3, 1e-2, 1e-1    0, 1e-4, 1e-3, 1e-2, 1e-1
``batch_size``     32, 64, 128                  32, 64, 128
``seq_len``        30, 60, 90, 120              (fixed: the protocol's lookback)
``seg_len``        --                           8, 12, 16, 24, 48 (divide 96...720)
``norm``           --                           none, last, mean, revin
``fusion``         scalar, channel, gate        scalar, channel, gate (hybrid)
=================  ===========================  ===================================

Sizes stop at two layers and width 64 (128 for the long-horizon models, whose tokens are
segments) so that a trial of the largest model costs a few times the default's, not
tens of times: the whole 20-trial search has to fit in minutes on two cores.

:func:`narrow` changes the space from ``--space NAME=SPEC`` options: ``lo:hi`` a range
(``lo:hi:log`` on a log scale), ``a,b,c`` a list of choices, one value fixes the option;
an option the default space leaves out (``seq_len`` under ``--protocol ltsf``, ``clip``,
``channels``...) can be added that way. Options typed on the command line are fixed and
leave the space (:func:`without`).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from forecast.config import CHOICES, FALSE_WORDS, TRUE_WORDS, RunConfig
from forecast.errors import UserInputError
from forecast.ltsf.protocol import LTSF
from models.longhorizon import INSTANCE_NORMS
from models.names import BRANCHES, FUSIONS, HYBRID

__all__ = ["Choice", "IntRange", "FloatRange", "TUNABLE", "default_space", "narrow", "without",
           "start_params", "suggest", "describe", "check_space", "parse_spec"]


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (Optuna's categorical distribution)."""

    values: tuple

    def suggest(self, trial, name):
        return trial.suggest_categorical(name, list(self.values))

    def nearest(self, value):
        """``value`` when allowed, else the first choice (a choice has no distance)."""
        return value if value in self.values else self.values[0]

    def text(self) -> str:
        return ", ".join(_fmt(v) for v in self.values)

    def to_dict(self) -> dict:
        return {"choices": list(self.values)}


@dataclass(frozen=True)
class IntRange:
    """An integer from ``low`` to ``high`` inclusive."""

    low: int
    high: int

    def suggest(self, trial, name):
        return trial.suggest_int(name, self.low, self.high)

    def nearest(self, value):
        return int(min(max(int(value), self.low), self.high))

    def text(self) -> str:
        return f"{self.low} to {self.high}"

    def to_dict(self) -> dict:
        return {"int": [self.low, self.high]}


@dataclass(frozen=True)
class FloatRange:
    """A real number from ``low`` to ``high``, on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False

    def suggest(self, trial, name):
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    def nearest(self, value):
        return float(min(max(float(value), self.low), self.high))

    def text(self) -> str:
        return f"{_fmt(self.low)} to {_fmt(self.high)}" + (", log scale" if self.log else "")

    def to_dict(self) -> dict:
        return {"float": [self.low, self.high], "log": self.log}


#: The models with a Mamba branch, hence a state size.
_WITH_STATE = (BRANCHES[0], HYBRID)

#: Every option a space may hold, with the type of its values (what ``--space`` parses).
TUNABLE = {"hidden": int, "d_state": int, "layers": int, "lr": float, "weight_decay": float,
           "batch_size": int, "seq_len": int, "seg_len": int, "norm": str, "fusion": str,
           "channels": str, "clip": float, "warmup": int, "patience": int, "linear_path": bool}
#: Options searched on a log scale when ``--space`` gives them a range.
_LOG_SCALE = ("lr",)

_WEIGHT_DECAYS = Choice((0.0, 1e-4, 1e-3, 1e-2, 1e-1))
_LR = FloatRange(1e-4, 1e-2, log=True)


def default_space(model: str, protocol: str) -> dict:
    """The documented space of ``model`` under ``protocol`` (see the module docstring)."""
    ltsf = protocol == LTSF
    space = {"hidden": Choice((16, 32, 64, 128) if ltsf else (8, 16, 32, 64))}
    if model in _WITH_STATE:
        space["d_state"] = Choice((8, 16, 32))
    space.update(layers=IntRange(1, 2), lr=_LR, weight_decay=_WEIGHT_DECAYS, batch_size=Choice((32, 64, 128)))
    if ltsf:
        # Every segment length divides every benchmark lookback (96, 192, 336, 720).
        space.update(seg_len=Choice((8, 12, 16, 24, 48)), norm=Choice(INSTANCE_NORMS))
    else:
        space["seq_len"] = Choice((30, 60, 90, 120))
    if model == HYBRID:
        space["fusion"] = Choice(FUSIONS)
    return space


def without(space: dict, fixed) -> dict:
    """``space`` minus the options in ``fixed`` (typed on the command line: not tuned)."""
    return {name: dim for name, dim in space.items() if name not in set(fixed)}


def parse_spec(text: str) -> tuple[str, object]:
    """``NAME=SPEC`` of ``--space`` -> ``(name, dimension)``, or ``(name, value)`` to fix it.

    Raises
    ------
    UserInputError
        Unknown option, or a spec its values do not fit.
    """
    name, sep, spec = str(text).partition("=")
    name = name.strip().lstrip("-").replace("-", "_")
    if not sep or not spec.strip():
        raise UserInputError(f"--space {text!r}: write NAME=LOW:HIGH, NAME=A,B,C or NAME=VALUE")
    if name not in TUNABLE:
        raise UserInputError(f"--space {text!r}: {name!r} cannot be tuned; choose from {', '.join(TUNABLE)}")
    kind, spec = TUNABLE[name], spec.strip()
    if ":" in spec:
        if kind not in (int, float):
            raise UserInputError(f"--space {text!r}: {name} takes a list of values, not a range")
        parts = spec.split(":")
        log = len(parts) == 3 and parts[2].strip().lower() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise UserInputError(f"--space {text!r}: a range is LOW:HIGH or LOW:HIGH:log")
        low, high = (_value(name, kind, p, text) for p in parts[:2])
        if not low < high:
            raise UserInputError(f"--space {text!r}: LOW must be below HIGH")
        if kind is int:
            if log:
                raise UserInputError(f"--space {text!r}: integer ranges have no log scale; list the values")
            return name, IntRange(low, high)
        log = log or (name in _LOG_SCALE and low > 0)
        if log and low <= 0:
            raise UserInputError(f"--space {text!r}: a log scale needs LOW above 0")
        return name, FloatRange(low, high, log)
    values = tuple(dict.fromkeys(_value(name, kind, v, text) for v in spec.split(",") if v.strip()))
    if not values:
        raise UserInputError(f"--space {text!r}: give at least one value")
    return (name, values[0]) if len(values) == 1 else (name, Choice(values))


def narrow(space: dict, specs, model: str) -> tuple[dict, dict]:
    """Apply ``--space`` specs: ``(new space, {option: value} fixed by a one-value spec})``."""
    space, fixed = dict(space), {}
    for text in specs or ():
        name, dim = parse_spec(text)
        if name == "fusion" and model != HYBRID:
            raise UserInputError(f"--space {text!r}: only the hybrid has a fusion")
        if name == "d_state" and model not in _WITH_STATE:
            raise UserInputError(f"--space {text!r}: only mamba and the hybrid have a state size")
        fixed.pop(name, None)
        if isinstance(dim, (Choice, IntRange, FloatRange)):
            space[name] = dim          # in place when the space had it: the order stays documented
        else:
            space.pop(name, None)
            fixed[name] = dim
    return space, fixed


def check_space(space: dict, base: RunConfig) -> None:
    """Refuse a space holding values the run options do not accept (before any trial).

    Every choice and both ends of every range are validated as part of ``base``; under
    ``--protocol ltsf`` each segment length must divide each lookback the space can draw.
    """
    for name, dim in space.items():
        values = dim.values if isinstance(dim, Choice) else (dim.low, dim.high)
        for value in values:
            try:
                dataclasses.replace(base, **{name: value}, out=None).validate()
            except UserInputError as exc:
                if name in ("seq_len", "seg_len"):
                    continue          # judged below, as pairs
                raise UserInputError(f"search space: {name} = {_fmt(value)} is not allowed ({exc})") from None
    if base.protocol == LTSF:
        seq = _values(space.get("seq_len"), base.seq_len, "seq_len")
        seg = _values(space.get("seg_len"), base.seg_len, "seg_len")
        bad = [(s, g) for s in seq for g in seg if s % g]
        if bad:
            s, g = bad[0]
            raise UserInputError(f"search space: seg_len {g} does not divide seq_len {s}; every segment "
                                 "length the search can draw must divide every lookback")


def _values(dim, fixed, name):
    if dim is None:
        return (fixed,)
    if isinstance(dim, IntRange):
        raise UserInputError(f"--space {name}: under --protocol ltsf give a list of values (seg_len must "
                             "divide seq_len), not a range")
    return dim.values


def start_params(space: dict, start: RunConfig) -> dict:
    """The first trial's values: ``start``'s, moved into the space where narrowing left them out."""
    return {name: dim.nearest(getattr(start, name)) for name, dim in space.items()}


def suggest(space: dict, trial) -> dict:
    """Draw a trial's values (Optuna's sampler decides)."""
    return {name: dim.suggest(trial, name) for name, dim in space.items()}


def describe(space: dict) -> dict:
    """``{option: {...}}``, JSON-ready: stored with the study, compared when it continues."""
    return {name: dim.to_dict() for name, dim in space.items()}


def _value(name: str, kind, text: str, spec: str):
    text = text.strip()
    try:
        if kind is bool:
            low = text.lower()
            if low not in TRUE_WORDS + FALSE_WORDS:
                raise ValueError
            return low in TRUE_WORDS
        if kind is int:
            number = float(text)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind is float:
            number = float(text)
            if not math.isfinite(number):
                raise ValueError
            return number
    except ValueError:
        raise UserInputError(f"--space {spec!r}: {text!r} is not a valid {name} value") from None
    value = text.lower()
    if name in CHOICES and value not in CHOICES[name]:
        raise UserInputError(f"--space {spec!r}: unknown {name} {text!r}; choose from {', '.join(CHOICES[name])}")
    return value


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
