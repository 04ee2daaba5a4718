"""Atomic file and directory writes.

A reader never sees half a file: each file is written to a temporary name in its own
directory and moved into place with :func:`os.replace`. A run's output directory is
assembled under a temporary sibling name and renamed at the end, so a failed run leaves
nothing behind (:class:`OutputDir`).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import tempfile
import threading

import numpy as np

from forecast.errors import UserInputError

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "json_bytes", "to_jsonable",
           "missing_dirs", "remove_dirs", "OutputDir"]


def _umask() -> int:
    # The only portable way to read the umask is to set it; put it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into place.

    For payloads written piecewise (``numpy.savez`` into the file: a buffer in memory
    would double their footprint); parent directories are created.
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=parent)
    try:
        # mkstemp makes 0600 files; give the result the permissions open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically (parent directories are created)."""
    atomic_write(path, lambda fh: fh.write(payload))


def atomic_write_text(path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj):
    """Plain JSON types: NumPy scalars/arrays unwrapped, tuples as lists, NaN/inf as None.

    Strict JSON has no NaN, and a diverged run must still write valid files.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.dtype) or (isinstance(obj, type) and issubclass(obj, np.generic)):
        return np.dtype(obj).name
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def json_bytes(obj) -> bytes:
    """``obj`` (made JSON-safe by :func:`to_jsonable`) as indented UTF-8 JSON."""
    return (json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n").encode("utf-8")


def atomic_write_json(path, obj) -> None:
    """Write ``obj`` as :func:`json_bytes` does, atomically."""
    atomic_write_bytes(path, json_bytes(obj))


def missing_dirs(folder) -> list[str]:
    """``folder`` and the folders above it that do not exist yet, deepest first: what
    creating ``folder`` makes, and :func:`remove_dirs` removes again."""
    missing, probe = [], os.fspath(folder)
    while probe and not os.path.exists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    return missing


def remove_dirs(dirs) -> None:
    """Remove the folders of :func:`missing_dirs`, deepest first, stopping at one not empty."""
    for d in dirs:
        try:
            os.rmdir(d)
        except OSError:
            break


def _raise_on_sigterm():
    """Make SIGTERM raise SystemExit while a directory is being assembled.

    By default SIGTERM kills Python without unwinding, which would leave the
    temporary directory behind (a parent process stopping its workers sends it).
    Returns the previous handler, or None when handlers cannot be set here.
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, handler)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


class OutputDir:
    """A run's output directory that appears only if the run succeeds.

    Use as a context manager: files go into :attr:`path` (a temporary sibling of the
    target); on a clean exit it is renamed to ``target``; on an exception it is deleted,
    together with any parent directories this object created.

    Parameters
    ----------
    target : path-like
        Final directory. It must not exist, or be an empty directory.
    """

    def __init__(self, target):
        self.target = os.path.abspath(os.fspath(target))
        self.path: str | None = None
        self._made: list[str] = []
        self._old_sigterm = None

    def __enter__(self) -> "OutputDir":
        if os.path.exists(self.target):
            if not os.path.isdir(self.target) or os.listdir(self.target):
                raise UserInputError(f"output directory {self.target} already exists and is not "
                                     "empty; choose another --out")
        parent = os.path.dirname(self.target)
        missing = missing_dirs(parent)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise UserInputError(f"cannot create output directory {parent}: {exc.strerror or exc}") from exc
        self._made = missing  # deepest first, so removal order is right
        self.path = tempfile.mkdtemp(prefix="." + os.path.basename(self.target) + ".", suffix=".partial",
                                     dir=parent)
        os.chmod(self.path, 0o777 & ~_umask())  # mkdtemp makes it private
        self._old_sigterm = _raise_on_sigterm()
        return self

    def file(self, name: str) -> str:
        """Path of ``name`` inside the (temporary) directory."""
        return os.path.join(self.path, name)

    def __exit__(self, exc_type, exc, tb) -> bool:
        _restore_sigterm(self._old_sigterm)
        if exc_type is None:
            if os.path.isdir(self.target):
                os.rmdir(self.target)  # checked empty on entry
            os.replace(self.path, self.target)
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        remove_dirs(self._made)
        return False
