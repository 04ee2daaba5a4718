"""The kernels' disk cache is dropped when any of their source files changes
(engine/kernels/numba/_cache.py): Numba itself only watches each kernel's own file."""
from __future__ import annotations

from pathlib import Path

from engine.kernels.numba._cache import FINGERPRINT_FILE, refresh, source_fingerprint


def _touch(folder: Path, *names):
    for name in names:
        (folder / name).write_bytes(b"cached")


def test_a_changed_fingerprint_drops_the_packages_cached_kernels_only(tmp_path):
    _touch(tmp_path, "scan._fwd-12.py311.nbi", "scan._fwd-12.py311.1.nbc", "_math._exp-40.py311.nbi",
           "other_lib.f-1.py311.nbi", "scanner.g-2.py311.nbi")
    assert refresh(tmp_path, "v1", ["scan", "_math"]) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [FINGERPRINT_FILE, "other_lib.f-1.py311.nbi",
                                                          "scanner.g-2.py311.nbi"]
    # Built again under v1: kept while the sources do not change...
    _touch(tmp_path, "scan._fwd-12.py311.nbi")
    assert refresh(tmp_path, "v1", ["scan", "_math"]) == 0
    assert (tmp_path / "scan._fwd-12.py311.nbi").exists()
    # ...dropped when they do.
    assert refresh(tmp_path, "v2", ["scan", "_math"]) == 1
    assert (tmp_path / FINGERPRINT_FILE).read_text() == "v2"


def test_the_fingerprint_follows_every_source_file(tmp_path):
    (tmp_path / "scan.py").write_text("def f(): pass\n")
    (tmp_path / "_math.py").write_text("def exp(x): return x\n")
    before = source_fingerprint(tmp_path)
    assert source_fingerprint(tmp_path) == before
    (tmp_path / "_math.py").write_text("def exp(x): return x + 0\n")   # a helper, not the kernel's file
    assert source_fingerprint(tmp_path) != before
