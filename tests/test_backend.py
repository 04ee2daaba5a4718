"""The backend switch: names, the environment default, errors, and one interface."""
from __future__ import annotations

import builtins
import importlib
import inspect
import sys

import numpy as np
import pytest

from engine import backend
from engine.backend import BackendUnavailableError, get_kernels
from engine.kernels import numpy_ref
from engine.kernels.api import API


@pytest.fixture(autouse=True)
def _clean_default(monkeypatch):
    # Each test starts from "no override, no environment variable".
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    backend.set_default_backend(None)
    yield
    backend.set_default_backend(None)


@pytest.fixture
def numba_kernels():
    try:
        return get_kernels("numba")
    except BackendUnavailableError as exc:
        pytest.skip(str(exc))


def test_get_kernels_by_name(numba_kernels):
    assert get_kernels("numpy") is numpy_ref
    assert get_kernels(" NumPy ") is numpy_ref
    assert numba_kernels.__name__ == "engine.kernels.numba"
    assert get_kernels("NUMBA") is numba_kernels
    assert backend.BACKENDS == ("numpy", "numba")


def test_default_is_numba_when_it_imports(numba_kernels):
    assert backend.default_backend() == "numba"
    assert get_kernels() is numba_kernels
    assert get_kernels(None) is numba_kernels


def test_env_var_sets_default(monkeypatch, numba_kernels):
    monkeypatch.setenv(backend.ENV_VAR, "numba")
    assert backend.default_backend() == "numba"
    assert get_kernels() is numba_kernels
    monkeypatch.setenv(backend.ENV_VAR, " Numpy ")
    assert get_kernels() is numpy_ref
    monkeypatch.setenv(backend.ENV_VAR, "")                 # empty counts as unset
    assert backend.default_backend() == "numba"


def test_env_var_reaches_modules(monkeypatch, numba_kernels):
    from engine.module import Module

    monkeypatch.setenv(backend.ENV_VAR, "numba")
    m = Module()
    assert m.backend == "numba" and m.kernels is numba_kernels
    assert Module(backend="numpy").kernels is numpy_ref


def test_set_default_overrides_env(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "numba")
    backend.set_default_backend("numpy")
    assert backend.default_backend() == "numpy"
    backend.set_default_backend(None)
    assert backend.default_backend() == "numba"
    monkeypatch.setenv(backend.ENV_VAR, "numpy")
    assert backend.default_backend() == "numpy"


def test_bad_env_var_raises(monkeypatch):
    monkeypatch.setenv(backend.ENV_VAR, "cuda")
    with pytest.raises(ValueError, match=backend.ENV_VAR):
        backend.default_backend()


@pytest.mark.parametrize("name", ["torch", "numpy_ref", "", 3])
def test_unknown_backend_raises(name):
    with pytest.raises(ValueError, match="unknown backend"):
        get_kernels(name)
    with pytest.raises(ValueError):
        backend.set_default_backend(name)


def _block_numba(monkeypatch):
    """Make every ``import numba`` fail as if the package were not installed."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "numba" or name.startswith("numba."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    for mod in [m for m in sys.modules if m == "numba" or m.startswith("numba.")]:
        monkeypatch.delitem(sys.modules, mod)
    for mod in [m for m in sys.modules if m.startswith("engine.kernels.numba")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    # importlib.import_module bypasses builtins.__import__; None in sys.modules blocks it.
    monkeypatch.setitem(sys.modules, "numba", None)


def test_missing_numba_gives_clear_error(monkeypatch):
    _block_numba(monkeypatch)
    with pytest.raises(ImportError):
        importlib.import_module("numba")
    with pytest.raises(BackendUnavailableError, match="pip install numba") as info:
        get_kernels("numba")
    assert isinstance(info.value.__cause__, ImportError)
    # Without Numba the default falls back to the reference; the NumPy backend keeps
    # working, and layers asking for numba fail the same way.
    assert backend.default_backend() == "numpy"
    assert get_kernels() is numpy_ref
    assert get_kernels("numpy") is numpy_ref
    from engine.module import Module

    with pytest.raises(BackendUnavailableError):
        Module(backend="numba")
    monkeypatch.setenv(backend.ENV_VAR, "numba")
    with pytest.raises(BackendUnavailableError):
        get_kernels()


def _public_functions(module):
    """Functions a kernel set defines itself (numpy_ref) or in its own sub-modules (numba)."""
    return {name for name, obj in vars(module).items()
            if not name.startswith("_") and inspect.isfunction(obj)
            and (obj.__module__ == module.__name__ or obj.__module__.startswith(module.__name__ + "."))}


def test_same_public_names_and_signatures(numba_kernels):
    ref_names = set(numpy_ref.__all__)
    assert ref_names == set(API) == set(numba_kernels.__all__)
    assert ref_names == _public_functions(numpy_ref) == _public_functions(numba_kernels)
    for name in sorted(ref_names):
        assert inspect.signature(getattr(numba_kernels, name)) == inspect.signature(getattr(numpy_ref, name)), name
        assert getattr(numba_kernels, name).__doc__, f"{name} has no docstring"
    expected = {"selective_scan_fwd", "selective_scan_bwd", "mingru_fwd", "mingru_bwd", "gru_fwd",
                "gru_bwd", "causal_conv1d_fwd", "causal_conv1d_bwd", "warmup"}
    assert expected <= ref_names


def test_warmup_returns_seconds(numba_kernels):
    assert numpy_ref.warmup() == 0.0
    spent = numba_kernels.warmup((np.float64,))
    assert isinstance(spent, float) and spent >= 0.0
    assert numba_kernels.warmup((np.float32,), kernels=["linear_fwd", "rmsnorm_bwd"]) >= 0.0
    for k in (numpy_ref, numba_kernels):
        with pytest.raises(ValueError):
            k.warmup((np.int32,))
        with pytest.raises(ValueError, match="unknown kernels"):
            k.warmup((np.float64,), kernels=["linear_fwd", "conv3d"])


def test_model_warm_up_leaves_gradients(numba_kernels):
    models = pytest.importorskip("models")
    for backend_name in ("numpy", "numba"):
        m = models.build_model("hybrid", input_size=2, hidden_size=4, d_state=2, backend=backend_name, seed=0)
        for _, _, g in m.named_parameters():
            g[...] = 0.5
        assert m.warm_up() >= 0.0
        assert all(np.all(g == 0.5) for _, _, g in m.named_parameters())
