"""Checkpoint files: weights plus everything needed to use them, with no pickle.

A checkpoint is an ``.npz`` archive. Each parameter is stored as a plain numeric array
under ``param/<name>`` (PyTorch-style names, see ``DESIGN.md``); one more entry,
``meta``, is a NumPy unicode string holding JSON: the model's ``config`` (so
``build_model(**config)`` rebuilds it), the run configuration, the per-window
normalisation (``window_norm``; absent in older checkpoints, which means ``"none"``),
the fitted scalers as numbers, and a description of the training data. :func:`load_checkpoint` opens it
with ``allow_pickle=False``, so an archive smuggling object arrays is refused rather
than unpickled.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from forecast.errors import CheckpointError, UserInputError, first_line
from forecast.fileio import atomic_write_bytes, to_jsonable

__all__ = ["FORMAT", "VERSION", "checkpoint_bytes", "save_checkpoint", "load_checkpoint", "checkpoint_model"]

FORMAT = "mamba-gru-engine/checkpoint"
VERSION = 1
_PREFIX = "param/"
_META = "meta"


def checkpoint_bytes(state_dict, meta: dict) -> bytes:
    """The bytes of a checkpoint file (what :func:`save_checkpoint` writes).

    A study's worker returns these to the client, which writes them, so a worker needs
    no access to the study's folder.

    Parameters
    ----------
    state_dict : mapping of str to ndarray
        ``model.state_dict()``.
    meta : dict
        JSON-able metadata (NumPy scalars, dtypes and tuples are converted).
    """
    arrays = {_PREFIX + name: np.ascontiguousarray(value) for name, value in state_dict.items()}
    header = dict(meta, format=FORMAT, version=VERSION)
    arrays[_META] = np.array(json.dumps(to_jsonable(header), allow_nan=False))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def save_checkpoint(path, state_dict, meta: dict) -> None:
    """Write weights and metadata to ``path`` atomically (see :func:`checkpoint_bytes`)."""
    atomic_write_bytes(path, checkpoint_bytes(state_dict, meta))


def load_checkpoint(path) -> tuple["OrderedDict[str, np.ndarray]", dict]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns
    -------
    state_dict : OrderedDict of str to ndarray
    meta : dict

    Raises
    ------
    CheckpointError
        Missing file, not an npz archive, damaged, holding pickled objects, or not a
        checkpoint of this engine.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"PK\x03\x04":
        # np.load would try to unpickle an unknown format; say what it really is.
        raise CheckpointError(f"{path} is not a checkpoint (not an .npz archive)"
                              if magic else f"checkpoint file is empty: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise CheckpointError(f"{path} is a single array, not a checkpoint archive")
            names = list(archive.files)
            if _META not in names:
                raise CheckpointError(f"{path} is an npz archive but not a checkpoint of this engine (no meta)")
            entries = {name: archive[name] for name in names}
    except CheckpointError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise CheckpointError(f"{path} holds pickled Python objects (object arrays); "
                                  "refusing to load it") from exc
        raise CheckpointError(f"{path} is not a readable checkpoint ({first_line(exc)})") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise CheckpointError(f"{path} is corrupt or not a checkpoint ({first_line(exc)})") from exc
    meta = _parse_meta(entries.pop(_META), path)
    state = OrderedDict()
    for name, value in entries.items():
        if not name.startswith(_PREFIX):
            raise CheckpointError(f"{path} has an unexpected entry {name!r}")
        if value.dtype.kind not in "fiu":
            raise CheckpointError(f"{path}: parameter {name[len(_PREFIX):]!r} is not numeric ({value.dtype})")
        if not np.isfinite(value).all():
            # Weights of a diverged or tampered run: every forecast would be NaN.
            raise CheckpointError(f"{path}: parameter {name[len(_PREFIX):]!r} holds non-finite values")
        state[name[len(_PREFIX):]] = value
    return state, meta


def _parse_meta(value: np.ndarray, path: str) -> dict:
    if value.dtype.kind != "U" or value.ndim != 0:
        raise CheckpointError(f"{path}: meta entry is not a JSON string")
    try:
        meta = json.loads(str(value))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: meta entry is not valid JSON ({exc.msg})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a checkpoint of this engine")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {meta.get('version')}; "
                              f"this engine reads version {VERSION}")
    return meta


def checkpoint_model(state, model_config: dict, path, backend=None, dtype="float64", seed: int = 0):
    """The model ``build_model(**model_config)`` with a checkpoint's weights ``state`` loaded.

    Raises
    ------
    UserInputError
        ``backend`` cannot be loaded on this machine.
    CheckpointError
        The weights do not fit the model (``path`` names the checkpoint).
    """
    from engine.backend import BackendUnavailableError
    from models import build_model

    try:
        model = build_model(**model_config, backend=backend, dtype=dtype, seed=seed)
        model.load_state_dict(state)
    except BackendUnavailableError as exc:
        raise UserInputError(str(exc)) from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} does not fit its model ({first_line(exc)})") from exc
    return model
