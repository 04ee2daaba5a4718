"""``--config FILE``: run options from a JSON file (what ``cli.py tune`` writes as ``best.json``).

The file is one JSON object whose keys are :class:`forecast.config.RunConfig` fields
(``{"model": "hybrid", "hidden": 32, "lr": 0.002, ...}``); any subset will do, and the
options typed on the command line override it. ``train`` and ``backtest`` take every
field; ``compare`` takes the options its runs share (it sweeps models and seeds itself,
so the file's ``model`` and ``seed`` do not apply there, and its ``seq_len`` becomes the
study's one window length). Values are checked with the rest of the options
(:meth:`RunConfig.validate`); unknown keys and unknown models are refused at once, with
the file named.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from forecast.errors import UserInputError

__all__ = ["read_config_file", "train_defaults", "compare_defaults"]


def read_config_file(path) -> dict:
    """The options of a ``--config`` file, as ``{RunConfig field: value}``.

    Raises
    ------
    UserInputError
        Missing or unreadable file, not a JSON object, an unknown key or model.
    """
    from forecast.config import RunConfig
    from models.names import MODEL_NAMES

    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserInputError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise UserInputError(f"--config {path}: not valid JSON ({exc})") from None
    if not isinstance(values, dict):
        raise UserInputError(f"--config {path}: expected a JSON object of run options, got "
                             f"{type(values).__name__}")
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise UserInputError(f"--config {path}: unknown option(s) {', '.join(map(repr, unknown))}; "
                             "the keys are the run options of 'train' (RunConfig fields)")
    model = values.get("model")
    if model is not None and str(model).strip().lower() not in MODEL_NAMES:
        raise UserInputError(f"--config {path}: unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
    return values


def train_defaults(path) -> dict:
    """Parser defaults for ``train`` and ``backtest`` from a ``--config`` file."""
    return read_config_file(path)


#: Fields ``compare`` sets per run; a config file's values for them do not apply.
_PER_RUN = ("model", "seed", "out")


def compare_defaults(path) -> dict:
    """Parser defaults for ``compare`` from a ``--config`` file (see the module docstring)."""
    values = {k: v for k, v in read_config_file(path).items() if k not in _PER_RUN}
    seq_len = values.pop("seq_len", None)
    if seq_len is not None:
        values["seq_lens"] = str(seq_len)
    return values
