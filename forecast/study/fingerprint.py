"""What a worker must share with the client for a study's numbers to be the client's.

A run's results depend on the project's code and on the numerical libraries it calls.
A version string says little about the code (an edited checkout keeps its version), so
:func:`fingerprint` hashes the source files of the packages a run executes, beside the
versions of Python, NumPy, Numba and statsforecast. A Dask worker compares its own
fingerprint with the client's before its first run and refuses to train with a
different one (:func:`check_fingerprint`).

This module stays cheap to import (no NumPy at module level).
"""
from __future__ import annotations

import functools
import hashlib
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from forecast.errors import UserInputError
from forecast.study.workers import PROJECT_ROOT

__all__ = ["CODE_PACKAGES", "VersionMismatch", "fingerprint", "code_hash", "check_fingerprint"]

#: The packages a training run executes (bench/ and cli.py never run on a worker).
CODE_PACKAGES = ("engine", "models", "forecast")


class VersionMismatch(UserInputError):
    """A worker runs other code or other numerical libraries than the client."""


def code_hash(root: Path = PROJECT_ROOT, packages=CODE_PACKAGES) -> str:
    """SHA-256 of the ``.py`` files of ``packages`` below ``root`` (paths and contents).

    Files are taken in sorted relative-path order with ``/`` separators, so the hash is
    the same on every operating system and in every checkout of the same code.
    """
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _dist_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


@functools.lru_cache(maxsize=1)
def fingerprint() -> dict:
    """This process's code hash and library versions (computed once per process).

    Returns
    -------
    dict
        ``code`` (:func:`code_hash`), ``python`` (major.minor), ``numpy``, ``numba``,
        ``statsforecast`` (which fits the classical baselines).
    """
    return {"code": code_hash(),
            "python": ".".join(platform.python_version_tuple()[:2]),
            "numpy": _dist_version("numpy"),
            "numba": _dist_version("numba"),
            "statsforecast": _dist_version("statsforecast")}


def check_fingerprint(expected: dict, where: str) -> None:
    """Raise :class:`VersionMismatch` (one line) when this process differs from ``expected``.

    Parameters
    ----------
    expected : dict
        The client's :func:`fingerprint`.
    where : str
        Names this process in the message (a worker's address).
    """
    mine = fingerprint()
    for key, want in expected.items():
        have = mine.get(key)
        if have == want:
            continue
        if key == "code":
            what = (f"other project code (fingerprint {have[:12]}, the client's {want[:12]}); "
                    "install the client's version of the project on every worker")
        else:
            what = f"{key} {have} (the client has {want}); install the same version on every worker"
        raise VersionMismatch(f"worker {where} runs {what}")
