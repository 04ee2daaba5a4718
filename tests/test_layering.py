"""The numerical core stands alone: engine/ and models/ never import the application.

Issue 12's rule, checked on the source (every import statement in every file of the
core, wherever it stands, lazy imports in functions included) and in a fresh process
(what importing and running the core actually loads).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ("engine", "models")
# Application libraries, and the application's own packages: the core must not reach them.
FORBIDDEN = {"pandas", "matplotlib", "sklearn", "yfinance", "tqdm", "argparse", "scipy",
             "dask", "distributed", "statsforecast", "optuna", "safetensors", "torch",
             "forecast", "bench", "cli"}
# Numba loads SciPy by itself when SciPy is installed, and numpy.f2py (which Numba loads)
# imports argparse: for those two only the source check speaks for the core.
NOT_LOADED = FORBIDDEN - {"scipy", "argparse"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


@pytest.mark.parametrize("package", CORE)
def test_core_source_imports_nothing_above_it(package):
    found = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in sorted((ROOT / package).rglob("*.py"))
             for line, name in _imports(path) if name.split(".")[0] in FORBIDDEN]
    assert not found, "\n".join(found)


def test_models_and_engine_do_not_import_upwards():
    # models may import engine; engine never imports models.
    found = [f"{path.relative_to(ROOT)}:{line} imports {name}"
             for path in sorted((ROOT / "engine").rglob("*.py"))
             for line, name in _imports(path) if name.split(".")[0] == "models"]
    assert not found, "\n".join(found)


def test_running_the_core_loads_no_application_library():
    code = (
        "import sys, numpy as np\n"
        "from models import build_model\n"
        "for backend in ('numpy', 'numba'):\n"
        "    m = build_model('hybrid', input_size=1, hidden_size=4, d_state=2, n_layers=1, horizon=1,\n"
        "                    backend=backend, dtype='float64', seed=0)\n"
        "    x = np.zeros((2, 5, 1))\n"
        "    y = m.forward(x)\n"
        "    m.backward(np.ones_like(y))\n"
        f"print(sorted(n for n in {sorted(NOT_LOADED)!r} if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
