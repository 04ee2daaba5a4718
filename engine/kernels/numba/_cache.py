"""Drop the kernels' on-disk cache when any of their source files changed.

Numba reuses a cached kernel as long as the file that defines it is unchanged (it
compares that one file's modification time and size). The kernels here also inline
helpers from sibling modules (``_math``'s exp, ``_jit``'s checks, ``_sums``), so an
edited helper would leave every kernel that uses it running the old code from the cache:
a silent mismatch between the source and what runs (the parity tests of a fresh clone
would pass while an upgraded install ran stale maths). Before the first kernel loads,
:func:`refresh_stale_cache` fingerprints every source file of this package with the
Numba version; when the fingerprint differs from the one stored beside the cache, the
package's cached kernels are deleted and recompiled on first use.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["FINGERPRINT_FILE", "source_fingerprint", "refresh", "refresh_stale_cache"]

#: The file, in the kernels' cache folder, that holds the fingerprint they were built from.
FINGERPRINT_FILE = "engine-kernels.fingerprint"
_PACKAGE = Path(__file__).resolve().parent


def source_fingerprint(folder: Path = _PACKAGE) -> str:
    """SHA-256 of every ``.py`` file of ``folder`` (names and bytes) and the Numba version."""
    import numba

    digest = hashlib.sha256(numba.__version__.encode())
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def refresh(cache_dir: Path, fingerprint: str, modules) -> int:
    """Delete the cached kernels of ``modules`` in ``cache_dir`` unless they were built from
    ``fingerprint``; store it. Returns the number of files deleted.

    A cache file is named ``<module>.<function>-<line>.py<ver>[.<n>].nbi|nbc``.
    """
    marker = cache_dir / FINGERPRINT_FILE
    try:
        if marker.read_text(encoding="ascii").strip() == fingerprint:
            return 0
    except OSError:
        pass
    removed = 0
    prefixes = tuple(f"{m}." for m in modules)
    for path in cache_dir.glob("*.nb[ic]"):
        if path.name.startswith(prefixes):
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:       # another process got there first
                pass
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
    tmp.write_text(fingerprint, encoding="ascii")
    os.replace(tmp, marker)
    return removed


def _probe():
    """A function of this folder, for Numba's cache locators (they place by file)."""


def _cache_dir() -> Path | None:
    """Where Numba caches this folder's kernels (its first locator that applies), or None."""
    from numba.core.caching import CacheImpl

    for locator in CacheImpl._locator_classes:
        found = locator.from_function(_probe, __file__)
        if found is not None:
            return Path(found.get_cache_path())
    return None


def refresh_stale_cache() -> int:
    """:func:`refresh` for this package's cache folder; 0 and nothing done when Numba
    offers no cache folder here or its internals moved (the kernels then compile as
    Numba decides, which is correct, only possibly stale as before this guard)."""
    try:
        cache_dir = _cache_dir()
    except Exception:      # a private Numba API: never let it break the import
        return 0
    if cache_dir is None:
        return 0
    modules = [p.stem for p in _PACKAGE.glob("*.py")]
    try:
        return refresh(cache_dir, source_fingerprint(), modules)
    except OSError:
        return 0
