"""Interrupted training: the state folder beside a run folder, and continuing from it.

While ``train --out DIR`` runs, its training state lives in the sibling folder
``DIR.partial/``:

* ``run.json``: the run's options (the :class:`~forecast.config.RunConfig` fields),
  written before the first epoch, so even a run killed in its first epoch can be
  continued with the same options;
* ``state.npz``: replaced atomically after every finished epoch. Numeric arrays under
  their names (``model/...`` weights, ``best/...`` best weights, ``adam_m/...`` and
  ``adam_v/...`` moments) and one ``meta`` entry, a JSON string (epoch, optimiser step,
  learning rate, early-stopping counters, the shuffle generator's state, the history and
  a fingerprint of settings, data and initial weights; see :mod:`forecast.train`). It
  loads with ``allow_pickle=False``.

Why a sibling and not ``DIR/.state``: ``DIR`` appears only when complete (it is assembled
under a temporary name, :class:`forecast.fileio.OutputDir`), so a folder ``DIR`` is always
a finished run and the state can never be left inside one.

When ``DIR`` has been written, ``DIR.partial`` is deleted. A run that fails (bad input, a
diverged training, an error while writing) deletes the state it created: it would fail
the same way again. A run that is interrupted (Ctrl-C, SIGTERM, SIGKILL, a power cut)
leaves it, and ``train --resume --out DIR`` continues from the last finished epoch with
the options in ``run.json``; options given again must equal them. A resumed run that
fails leaves the state as it found it (or as far as it got).
"""
from __future__ import annotations

import json
import os
import shutil
import zipfile
import zlib

import numpy as np

from forecast.errors import UserInputError, first_line
from forecast.fileio import atomic_write, atomic_write_bytes, json_bytes, missing_dirs, remove_dirs

__all__ = ["STATE_SUFFIX", "FORMAT", "VERSION", "state_dir", "RunState", "resume_config"]

#: Suffix of the state folder: ``DIR`` keeps its state in ``DIR + STATE_SUFFIX``.
STATE_SUFFIX = ".partial"
FORMAT = "mamba-gru-engine/train-state"
VERSION = 1
_RUN_FILE = "run.json"
_STATE_FILE = "state.npz"
_META = "meta"


def state_dir(target) -> str:
    """The state folder of run folder ``target`` (absolute; a trailing slash is ignored)."""
    return os.path.abspath(os.fspath(target)) + STATE_SUFFIX


def _finished(target: str) -> bool:
    return os.path.isdir(target) and bool(os.listdir(target))


def _comparable(options: dict) -> dict:
    # Where the run is written is not an option of the training.
    return {k: v for k, v in options.items() if k != "out"}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _shown(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


class RunState:
    """The state folder of one run; an :class:`forecast.train.EpochStore` for :func:`fit`.

    Use :meth:`create` for a new run and :meth:`open` to continue one.

    Attributes
    ----------
    target : str
        The run folder (absolute).
    path : str
        The state folder, ``target + ".partial"``.
    run_config : dict
        The options the run was started with (``run.json``).
    where : str
        How messages name the store.
    """

    def __init__(self, target, run_config: dict, made: list[str] | None = None):
        self.target = os.path.abspath(os.fspath(target))
        self.path = state_dir(target)
        self.where = self.path
        self.run_config = run_config
        self._made = made or []

    # -- opening ----------------------------------------------------------------------
    @classmethod
    def create(cls, target, run_config: dict) -> "RunState":
        """Start the state folder of a new run writing to ``target``.

        Raises
        ------
        UserInputError
            ``target`` exists and is not empty, or an interrupted run's state is there.
        """
        target = os.path.abspath(os.fspath(target))
        if os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)):
            raise UserInputError(f"output directory {target} already exists and is not empty; "
                                 "choose another --out")
        path = state_dir(target)
        made = missing_dirs(os.path.dirname(path))
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.mkdir(path)
        except FileExistsError:
            raise UserInputError(f"{path} holds the state of an interrupted run of {target}: continue it "
                                 f"with 'train --resume --out {target}', or delete {path} to start "
                                 "over") from None
        except OSError as exc:
            raise UserInputError(f"cannot create {path}: {exc.strerror or exc}") from exc
        state = cls(target, dict(run_config), made)
        try:
            atomic_write_bytes(os.path.join(path, _RUN_FILE), json_bytes(
                {"format": FORMAT, "version": VERSION, "run_config": run_config}))
        except BaseException:
            state.discard()
            raise
        return state

    @classmethod
    def open(cls, target) -> "RunState":
        """The state of the interrupted run of ``target``.

        Raises
        ------
        UserInputError
            ``target`` is a finished run, no state is there, or it is unreadable.
        """
        target = os.path.abspath(os.fspath(target))
        path = state_dir(target)
        if _finished(target):
            if os.path.isdir(path):
                # Killed after the run folder appeared but before its state was deleted.
                shutil.rmtree(path, ignore_errors=True)
            raise UserInputError(f"{target} holds a finished run: nothing to resume")
        if not os.path.isdir(path):
            raise UserInputError(f"nothing to resume: no interrupted run of {target} (its state would be in "
                                 f"{path}); start it without --resume")
        header = _read_json(os.path.join(path, _RUN_FILE))
        if not isinstance(header.get("run_config"), dict):
            raise UserInputError(f"{path}/{_RUN_FILE} holds no run options; delete {path} to start over")
        return cls(target, header["run_config"])

    # -- the EpochStore interface -----------------------------------------------------
    def load(self) -> tuple[dict, dict] | None:
        """``(arrays, meta)`` of the last finished epoch, or None before the first."""
        file = os.path.join(self.path, _STATE_FILE)
        if not os.path.exists(file):
            return None
        try:
            with np.load(file, allow_pickle=False) as archive:
                entries = {name: archive[name] for name in archive.files}
            meta = json.loads(str(entries.pop(_META)))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise UserInputError(f"{file} is unreadable ({first_line(exc)}); delete {self.path} to start "
                                 "over") from exc
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise UserInputError(f"{file} is not a training state of this version of the engine; delete "
                                 f"{self.path} to start over")
        return entries, meta

    def save(self, arrays: dict, meta: dict) -> None:
        """Replace the saved state, atomically (see the module docstring)."""
        entries = {name: np.ascontiguousarray(value) for name, value in arrays.items()}
        entries[_META] = np.array(json.dumps({**meta, "format": FORMAT, "version": VERSION}))
        # Straight into the temporary file: a buffer in memory would double the weights' footprint.
        atomic_write(os.path.join(self.path, _STATE_FILE), lambda fh: np.savez(fh, **entries))

    # -- checks and clean-up ----------------------------------------------------------
    def check_options(self, run_config: dict) -> None:
        """Refuse to continue with options other than the run's own (``out`` aside)."""
        saved, given = _comparable(self.run_config), _comparable(run_config)
        differ = [k for k in sorted(set(saved) | set(given)) if saved.get(k) != given.get(k)]
        if differ:
            k = differ[0]
            raise UserInputError(f"the interrupted run in {self.path} was started with {_option(k)} "
                                 f"{_shown(saved.get(k))}, not {_shown(given.get(k))}: resume with its "
                                 "options (leave them out to keep them), or start a new run with another --out")

    def discard(self) -> None:
        """Delete the state folder, and the parent folders :meth:`create` made."""
        shutil.rmtree(self.path, ignore_errors=True)
        remove_dirs(self._made)


def resume_config(target, given: dict):
    """The options to continue the interrupted run of ``target`` with.

    Parameters
    ----------
    target : path-like
        The run folder (``--out``).
    given : dict
        Options typed again on the command line (RunConfig field names); each must equal
        the run's own.

    Returns
    -------
    RunConfig
        The run's options, validated, with ``out = target``.

    Raises
    ------
    UserInputError
        Nothing to resume, a finished run, or an option that differs.
    """
    from forecast.config import RunConfig

    state = RunState.open(target)
    saved = RunConfig.from_dict(state.run_config).validate().to_dict()
    merged = RunConfig.from_dict({**saved, **given}).validate().to_dict()
    state.check_options({**saved, **{k: merged[k] for k in given}})
    return RunConfig.from_dict({**saved, "out": os.fspath(target)}).validate()


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            value = json.load(fh)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"cannot read {path} ({first_line(exc)}); delete {os.path.dirname(path)} to "
                             "start over") from exc
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise UserInputError(f"{path} is not a training state of this engine")
    return value
