"""``cli.py export``: a checkpoint's weights as a safetensors file for PyTorch users.

Every parameter keeps the PyTorch name our state dicts already use (``mamba_ssm`` /
``mambapy`` names inside a Mamba block, ``torch.nn.GRU``'s inside a GRU layer), with its
shape and dtype unchanged, so ``safetensors.torch.load_file(path)`` followed by
``load_state_dict`` fills a PyTorch twin of the model (:mod:`forecast.export_torch`
builds one). What a user needs besides the weights rides in the file's metadata, which
safetensors keeps as ``str -> str``:

- ``format``: ``"pt"`` (the value Hugging Face tools look for), ``exporter`` and
  ``export_version``: plain text, identifying the file;
- every entry of the checkpoint's own metadata, each as a JSON text: ``model_config``
  (``models.build_model(**model_config)`` rebuilds the architecture), ``run_config``,
  ``scalers`` (``feature`` and ``target``, or ``series`` for a long-horizon run, as
  :func:`forecast.data.scaling.scaler_to_dict` writes them), ``dtype``, ``seed``,
  ``data``, ``best_epoch``, ``window_norm`` (stock runs) and ``protocol`` (``"stock"`` or
  ``"ltsf"``, always present here).

:func:`read_metadata` decodes them again. Only NumPy and ``safetensors.numpy`` are used:
exporting needs no PyTorch.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from forecast.checkpoint import checkpoint_model, load_checkpoint
from forecast.errors import CheckpointError, UserInputError, first_line
from forecast.fileio import atomic_write_bytes, to_jsonable
from forecast.ltsf.protocol import LTSF, STOCK

__all__ = ["EXPORTER", "EXPORT_VERSION", "PLAIN_KEYS", "STOCK", "export_checkpoint", "export_bytes",
           "read_metadata", "scaler_names", "add_arguments", "run"]

#: The ``exporter`` metadata value: which program wrote the file.
EXPORTER = "mamba-gru-engine"
#: Version of the layout described in this module's docstring.
EXPORT_VERSION = 1
#: Metadata keys holding plain text; every other key holds JSON.
PLAIN_KEYS = ("format", "exporter", "export_version")
# STOCK (in __all__): the ``protocol`` of a checkpoint whose metadata names none (the
# one-target runs); its home is forecast.ltsf.protocol.
# The checkpoint container's own bookkeeping, meaningless once the weights leave it.
_CHECKPOINT_ONLY = ("format", "version")


def scaler_names(protocol: str) -> tuple[str, ...]:
    """The scalers a run of ``protocol`` saves: ``("series",)`` or ``("feature", "target")``."""
    return ("series",) if protocol == LTSF else ("feature", "target")


def _checked(state, meta: dict, path: str) -> dict:
    """The metadata to export, after proving that the weights fit their model.

    Rebuilding the model (NumPy backend: no compilation) and loading the weights into it
    is the one complete check of names and shapes; the scalers are rebuilt for the same
    reason, so a file that exports is one that loads.
    """
    from forecast.data.scaling import scaler_from_dict

    protocol = meta.get("protocol", STOCK)
    try:
        model_config = dict(meta["model_config"])
        dtype = np.dtype(meta.get("dtype", "float64"))
        scalers = dict(meta["scalers"])
        for name in scaler_names(protocol):
            scaler_from_dict(scalers[name])
        run_config = dict(meta["run_config"])
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: metadata incomplete ({first_line(exc)})") from exc
    if dtype not in (np.float32, np.float64):
        raise CheckpointError(f"{path}: dtype {dtype} is neither float32 nor float64")
    if (protocol == LTSF) != ("channels" in model_config):
        raise CheckpointError(f"{path}: protocol {protocol!r} does not match its model configuration")
    checkpoint_model(state, model_config, path, backend="numpy", dtype=dtype)
    wrong = sorted(k for k, v in state.items() if v.dtype != dtype)
    if wrong:
        raise CheckpointError(f"{path}: parameters {wrong[:3]} are not {dtype} like the model")
    out = {k: v for k, v in meta.items() if k not in _CHECKPOINT_ONLY}
    out.update(protocol=protocol, model_config=model_config, run_config=run_config, scalers=scalers,
               dtype=dtype.name)
    return out


def export_bytes(checkpoint) -> tuple[bytes, dict]:
    """The safetensors file of a checkpoint, in memory.

    Parameters
    ----------
    checkpoint : path-like
        A ``checkpoint.npz`` written by ``train`` (stock or ``--protocol ltsf``).

    Returns
    -------
    payload : bytes
        The safetensors file.
    meta : dict
        The exported metadata, decoded (what :func:`read_metadata` returns).

    Raises
    ------
    CheckpointError
        Missing, corrupt or incomplete checkpoint, or weights that do not fit its model.
    """
    payload, meta, _ = _export(os.fspath(checkpoint))
    return payload, meta


def _export(path: str):
    """``(payload, meta, state)``: :func:`export_bytes` and the weights it wrote."""
    from safetensors.numpy import save

    state, meta = load_checkpoint(path)
    meta = _checked(state, meta, path)
    text = {"format": "pt", "exporter": EXPORTER, "export_version": str(EXPORT_VERSION)}
    text.update({k: json.dumps(to_jsonable(v), allow_nan=False) for k, v in meta.items()})
    tensors = {k: np.ascontiguousarray(v) for k, v in state.items()}
    return save(tensors, metadata=text), meta, state


def read_metadata(path) -> dict:
    """The metadata of an exported file, each JSON value decoded.

    Parameters
    ----------
    path : path-like
        A file written by :func:`export_checkpoint`.

    Returns
    -------
    dict
        ``format``, ``exporter`` and ``export_version`` as text; ``model_config``,
        ``run_config``, ``scalers``, ``protocol``, ``dtype`` and the rest of the
        checkpoint's metadata as the JSON values they were.

    Raises
    ------
    UserInputError
        The file is missing, is not a safetensors file, or was not written by this exporter.
    """
    from safetensors import safe_open

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserInputError(f"exported model not found: {path}")
    try:
        with safe_open(path, framework="numpy") as fh:
            raw = fh.metadata() or {}
    except Exception as exc:  # safetensors raises its own SafetensorError for any damage
        raise UserInputError(f"{path} is not a safetensors file ({first_line(exc)})") from exc
    if raw.get("exporter") != EXPORTER:
        raise UserInputError(f"{path} was not exported by {EXPORTER} (no exporter metadata)")
    if raw.get("export_version") != str(EXPORT_VERSION):
        raise UserInputError(f"{path} has export version {raw.get('export_version')}; "
                             f"this code reads version {EXPORT_VERSION}")
    try:
        return {k: v if k in PLAIN_KEYS else json.loads(v) for k, v in raw.items()}
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: metadata entry is not JSON ({exc.msg})") from exc


def _check_target(out: str, checkpoint: str, force: bool) -> None:
    if os.path.isdir(out):
        raise UserInputError(f"--out {out} is a directory; name the file to write")
    if os.path.exists(out):
        if os.path.exists(checkpoint) and os.path.samefile(out, checkpoint):
            raise UserInputError(f"--out {out} is the checkpoint itself; choose another file")
        if not force:
            raise UserInputError(f"{out} already exists; pass --force to replace it")


def export_checkpoint(checkpoint, out, force: bool = False) -> dict:
    """Write a checkpoint's weights and metadata to a safetensors file, atomically.

    Parameters
    ----------
    checkpoint : path-like
        A ``checkpoint.npz`` written by ``train``.
    out : path-like
        The file to write (parent folders are created).
    force : bool
        Replace ``out`` if it exists.

    Returns
    -------
    dict
        The exported metadata, decoded, plus ``tensors`` (their count) and
        ``parameters`` (the number of values).

    Raises
    ------
    UserInputError
        ``out`` exists (without ``force``), is a directory or cannot be written.
    CheckpointError
        As :func:`export_bytes`. Nothing is written on any error.
    """
    checkpoint, out = os.fspath(checkpoint), os.fspath(out)
    _check_target(out, checkpoint, force)
    payload, meta, state = _export(checkpoint)
    try:
        atomic_write_bytes(out, payload)
    except OSError as exc:
        raise UserInputError(f"cannot write {out}: {exc.strerror or first_line(exc)}") from exc
    return dict(meta, tensors=len(state), parameters=int(sum(v.size for v in state.values())))


# -- the command line ------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``export``."""
    p.add_argument("--checkpoint", required=True, help="a checkpoint.npz written by train")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")


def run(args) -> int:
    """``export``: write the file, then one line saying what it holds."""
    info = export_checkpoint(args.checkpoint, args.out, force=args.force)
    cfg = info["model_config"]
    kind = "long-horizon " if info["protocol"] == LTSF else ""
    print(f"{kind}{cfg['name']} ({info['tensors']} tensors, {info['parameters']} {info['dtype']} values, "
          f"scalers {', '.join(scaler_names(info['protocol']))}) written to {args.out}")
    return 0
