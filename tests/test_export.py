"""``cli.py export``: safetensors out, the same model back in PyTorch.

Each case builds a tiny forecaster (NumPy backend), saves a checkpoint with the metadata
the pipeline writes (:func:`forecast.pipeline._checkpoint_meta` for stock runs,
``SeriesRun.files`` for ``--protocol ltsf``), exports it through the command line and
checks three things: the file's tensors are our state dict, key for key and bit for bit;
its metadata gives back the model configuration, the run configuration and the scalers;
and :func:`forecast.export_torch.load_torch_model` rebuilds a PyTorch model that forecasts
what ours does on the same window (float64 within ``TORCH_TOL``, float32 within the
float32 parity tolerance). Bad input ends with one ``error:`` line, exit status 2 and
no file.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cli
from engine.parity import TORCH_TOL, rel_error, tolerance
from forecast.checkpoint import checkpoint_bytes, save_checkpoint
from forecast.config import RunConfig
from forecast.data.scaling import fit_scaler, scaler_from_dict, scaler_to_dict
from forecast.export import EXPORTER, read_metadata
from models import build_model
from tests.gradcheck import perturb_parameters
from tests.model_cases import FORECASTERS

ROOT = Path(__file__).resolve().parents[1]
DTYPES = ("float64", "float32")
# Long-horizon layouts: between them every channel mode, instance norm, a segment
# length above 1 and the linear path, each with every model.
LAYOUTS = {
    "indep-revin-seg2-linear": dict(channels="independent", seg_len=2, norm="revin", linear_path=True),
    "mixed-last-seg4": dict(channels="mixed", seg_len=4, norm="last", linear_path=False),
    "indep-mean": dict(channels="independent", seg_len=1, norm="mean", linear_path=False),
    "mixed-none-seg2-linear": dict(channels="mixed", seg_len=2, norm="none", linear_path=True),
}
SEQ_LEN, CHANNELS = 8, 3


def _model(case: str, dtype: str, layout: str | None):
    """A tiny forecaster with every parameter moved off its initial value."""
    rng = np.random.default_rng(7)
    args = dict(hidden_size=4, d_state=3, horizon=2, backend="numpy", dtype=dtype, seed=3, **FORECASTERS[case])
    if layout is None:
        model = build_model(input_size=2, **args)
    else:
        model = build_model(input_size=CHANNELS, seq_len=SEQ_LEN, **LAYOUTS[layout], **args)
    perturb_parameters(model, rng, scale=0.3)
    for name, p, _ in model.named_parameters():
        if name.endswith("dt_proj.bias"):      # steps of order one, so the scan's state matters
            p[...] = rng.uniform(-1.0, 0.5, p.shape)
    return model


def _meta(model, dtype: str, layout: str | None) -> dict:
    """What the pipeline saves beside the weights, with scalers fitted on random rows."""
    rng = np.random.default_rng(11)
    cfg = model.config
    common = dict(model=cfg["name"], backend="numpy", dtype=dtype, hidden=cfg["hidden_size"],
                  layers=cfg["n_layers"], fusion=cfg["fusion"], seq_len=SEQ_LEN, horizon=cfg["horizon"])
    if layout is None:
        run = RunConfig(**common).validate()
        feature = fit_scaler("minmax", rng.normal(50, 5, (40, model.input_size)))
        target = fit_scaler("minmax", rng.normal(50, 5, (40, 1)))
        return {"model_config": dict(cfg), "seed": 3, "dtype": dtype, "run_config": run.to_dict(),
                "window_norm": run.window_norm,
                "scalers": {"feature": scaler_to_dict(feature), "target": scaler_to_dict(target)},
                "data": {"spec": "sample:AAPL"}, "best_epoch": 2}
    # The least-squares start (the protocol's default) needs the linear path.
    run = RunConfig(protocol="ltsf", data="ett:ETTh1", channels=cfg["channels"], seg_len=cfg["seg_len"],
                    norm=cfg["norm"], linear_path=cfg["linear_path"],
                    linear_init="lstsq" if cfg["linear_path"] else "random", **common).validate()
    series = fit_scaler("standard", rng.normal(3, 2, (40, CHANNELS)))
    return {"model_config": dict(cfg), "seed": 3, "dtype": dtype, "run_config": run.to_dict(), "protocol": "ltsf",
            "scalers": {"series": scaler_to_dict(series)}, "data": {"spec": "ett:ETTh1"}, "best_epoch": 1}


def _export(tmp_path, case, dtype, layout):
    model = _model(case, dtype, layout)
    meta = _meta(model, dtype, layout)
    ckpt, out = tmp_path / "checkpoint.npz", tmp_path / "model.safetensors"
    save_checkpoint(ckpt, model.state_dict(), meta)
    assert cli.main(["export", "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    return model, meta, out


CASES = [pytest.param(case, dtype, None, id=f"{case}-{dtype}-stock")
         for case in FORECASTERS for dtype in DTYPES]
CASES += [pytest.param(case, dtype, layout, id=f"{case}-{dtype}-{layout}")
          for case in FORECASTERS for dtype in DTYPES for layout in LAYOUTS]


@pytest.mark.parametrize("case, dtype, layout", CASES)
def test_export_round_trips_weights_and_metadata(tmp_path, case, dtype, layout):
    from safetensors.numpy import load_file

    model, meta, out = _export(tmp_path, case, dtype, layout)
    tensors, state = load_file(str(out)), model.state_dict()
    assert list(tensors) == sorted(state) and set(tensors) == set(state)
    for key, value in state.items():
        assert tensors[key].dtype == np.dtype(dtype) and tensors[key].shape == value.shape, key
        assert np.array_equal(tensors[key], value), key

    got = read_metadata(out)
    assert got["format"] == "pt" and got["exporter"] == EXPORTER
    assert got["model_config"] == meta["model_config"]
    assert build_model(**got["model_config"]).config == model.config
    assert got["run_config"] == meta["run_config"] and RunConfig.from_dict(got["run_config"]).validate()
    assert got["scalers"] == meta["scalers"]
    assert got["protocol"] == meta.get("protocol", "stock") and got["dtype"] == dtype
    for name, saved in meta["scalers"].items():
        scaler = scaler_from_dict(got["scalers"][name])
        x = np.random.default_rng(0).normal(50, 5, (5, scaler.n_features_in_))
        assert np.array_equal(scaler.transform(x), scaler_from_dict(saved).transform(x))


@pytest.mark.parametrize("case, dtype, layout", CASES)
def test_torch_model_forecasts_like_ours(tmp_path, case, dtype, layout):
    torch = pytest.importorskip("torch")
    from forecast.export_torch import load_torch_model

    model, meta, out = _export(tmp_path, case, dtype, layout)
    twin = load_torch_model(out)
    assert not twin.training
    assert set(twin.state_dict()) == set(model.state_dict())
    assert all(p.dtype == getattr(torch, dtype) for p in twin.parameters())

    length = SEQ_LEN if layout else 9
    x = np.random.default_rng(5).standard_normal((3, length, model.input_size)).astype(dtype)
    ours = model.forward(x)
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    assert theirs.dtype == np.dtype(dtype) and theirs.shape == ours.shape
    tol = TORCH_TOL if dtype == "float64" else tolerance(np.float32)
    assert rel_error(theirs, ours) <= tol

    assert twin.model_config == meta["model_config"] and twin.run_config == meta["run_config"]
    assert twin.protocol == meta.get("protocol", "stock")
    assert set(twin.scalers) == set(meta["scalers"])
    for name, scaler in twin.scalers.items():
        assert scaler_to_dict(scaler) == meta["scalers"][name]


def test_torch_model_in_another_dtype(tmp_path):
    torch = pytest.importorskip("torch")
    from forecast.export_torch import load_torch_model

    model, _, out = _export(tmp_path, "hybrid-gate", "float64", "indep-revin-seg2-linear")
    twin = load_torch_model(out, dtype=torch.float32)
    x = np.random.default_rng(1).standard_normal((2, SEQ_LEN, CHANNELS))
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x.astype(np.float32))).numpy()
    assert rel_error(theirs, model.forward(x)) <= tolerance(np.float32)


def test_exported_mamba_block_loads_into_mambapy(tmp_path):
    # The names are mambapy's, not just our twin's: its MambaBlock takes the tensors as they are.
    torch = pytest.importorskip("torch")
    mambapy = pytest.importorskip("mambapy.mamba")
    from safetensors.torch import load_file

    from forecast.export_torch import load_torch_model

    _, _, out = _export(tmp_path, "mamba", "float64", None)
    prefix = "blocks.1.mixer."
    block = {k[len(prefix):]: v for k, v in load_file(str(out)).items() if k.startswith(prefix)}
    ref = mambapy.MambaBlock(mambapy.MambaConfig(d_model=4, n_layers=1, d_state=3, d_conv=4)).double()
    ref.load_state_dict(block, strict=True)
    h = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 6, 4)))
    with torch.no_grad():
        ours = load_torch_model(out).blocks[1].mixer(h).numpy()
        theirs = ref(h).numpy()
    assert rel_error(ours, theirs) <= 1e-6      # mambapy rounds A and D to float32 inside


def test_torch_side_repeats_the_engine_constants():
    # export_torch does not import the NumPy engine, so its copies are held to the originals here.
    pytest.importorskip("torch")
    from engine.layers import RMSNorm
    from forecast import export_torch
    from models.longhorizon import REVIN_EPS
    from models.names import FUSIONS, MODEL_NAMES

    assert export_torch.RMS_EPS == RMSNorm(2).eps and export_torch.REVIN_EPS == REVIN_EPS
    assert {c["name"] for c in FORECASTERS.values()} == set(MODEL_NAMES)
    assert {c.get("fusion") for c in FORECASTERS.values()} - {None} == set(FUSIONS)


def test_torch_loader_refuses_a_foreign_file(tmp_path):
    pytest.importorskip("torch")
    from safetensors.numpy import save_file

    from forecast.errors import UserInputError
    from forecast.export_torch import load_torch_model

    path = tmp_path / "other.safetensors"
    save_file({"weight": np.zeros(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(UserInputError, match="not exported by"):
        load_torch_model(path)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(UserInputError, match="not a safetensors file"):
        load_torch_model(tmp_path / "junk.safetensors")


def test_export_loads_no_torch(tmp_path):
    model = _model("hybrid-scalar", "float64", None)
    save_checkpoint(tmp_path / "c.npz", model.state_dict(), _meta(model, "float64", None))
    code = ("import sys, cli\n"
            f"rc = cli.main(['export', '--checkpoint', {str(tmp_path / 'c.npz')!r}, "
            f"'--out', {str(tmp_path / 'm.safetensors')!r}])\n"
            "print(rc, 'torch' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "0 False"


def test_force_replaces_an_existing_file(tmp_path, capsys):
    from safetensors.numpy import load_file

    model, _, out = _export(tmp_path, "gru", "float64", None)
    capsys.readouterr()
    out.write_bytes(b"old")
    assert cli.main(["export", "--checkpoint", str(tmp_path / "checkpoint.npz"), "--out", str(out), "--force"]) == 0
    assert set(load_file(str(out))) == set(model.state_dict())
    assert "written to" in capsys.readouterr().out


# -- bad input --------------------------------------------------------------------------------

def _good_checkpoint(tmp_path) -> Path:
    model = _model("mamba", "float64", None)
    path = tmp_path / "good.npz"
    save_checkpoint(path, model.state_dict(), _meta(model, "float64", None))
    return path


def _broken(tmp_path, kind: str) -> Path:
    path = tmp_path / "bad.npz"
    model = _model("mamba", "float64", None)
    meta, state = _meta(model, "float64", None), model.state_dict()
    if kind == "missing":
        return tmp_path / "nowhere.npz"
    if kind == "not-npz":
        path.write_text("date,close\n2020-01-02,1\n")
    elif kind == "truncated":
        path.write_bytes(checkpoint_bytes(state, meta)[:300])
    elif kind == "missing-weight":
        state.pop("head.weight")
        save_checkpoint(path, state, meta)
    elif kind == "wrong-shape":
        state["embed.weight"] = np.zeros((5, 5))
        save_checkpoint(path, state, meta)
    elif kind == "no-scaler":
        meta["scalers"].pop("target")
        save_checkpoint(path, state, meta)
    elif kind == "bad-scaler":
        meta["scalers"]["feature"] = {"kind": "robust"}
        save_checkpoint(path, state, meta)
    elif kind == "no-model-config":
        meta.pop("model_config")
        save_checkpoint(path, state, meta)
    elif kind == "ltsf-without-channels":
        save_checkpoint(path, state, dict(meta, protocol="ltsf", scalers={"series": meta["scalers"]["feature"]}))
    return path


def _assert_refused(tmp_path, capsys, argv, out, needle: str) -> None:
    listing = sorted(os.listdir(os.path.dirname(out))) if os.path.isdir(os.path.dirname(out)) else None
    capsys.readouterr()
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], captured.err
    assert captured.out == ""
    if listing is not None:     # nothing written, not even a temporary file
        assert sorted(os.listdir(os.path.dirname(out))) == listing


@pytest.mark.parametrize("kind, needle", [
    ("missing", "not found"), ("not-npz", "not a checkpoint"), ("truncated", "corrupt"),
    ("missing-weight", "does not fit its model"), ("wrong-shape", "does not fit its model"),
    ("no-scaler", "metadata incomplete"), ("bad-scaler", "unknown scaler kind"),
    ("no-model-config", "metadata incomplete"), ("ltsf-without-channels", "does not match"),
])
def test_bad_checkpoint_is_one_line_and_no_file(tmp_path, capsys, kind, needle):
    out = tmp_path / "out" / "model.safetensors"
    _assert_refused(tmp_path, capsys, ["export", "--checkpoint", str(_broken(tmp_path, kind)), "--out", str(out)],
                    out, needle)
    assert not out.exists() and not out.parent.exists()


def test_existing_out_needs_force(tmp_path, capsys):
    out = tmp_path / "model.safetensors"
    out.write_bytes(b"keep me")
    _assert_refused(tmp_path, capsys, ["export", "--checkpoint", str(_good_checkpoint(tmp_path)), "--out", str(out)],
                    out, "--force")
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("target", ["directory", "under-a-file", "the-checkpoint"])
def test_unusable_out_is_one_line(tmp_path, capsys, target):
    ckpt = _good_checkpoint(tmp_path)
    out = {"directory": tmp_path, "under-a-file": ckpt / "model.safetensors", "the-checkpoint": ckpt}[target]
    before = ckpt.read_bytes()
    needle = {"directory": "is a directory", "under-a-file": "cannot write", "the-checkpoint": "checkpoint itself"}
    argv = ["export", "--checkpoint", str(ckpt), "--out", str(out), "--force"]
    _assert_refused(tmp_path, capsys, argv, tmp_path / "x", needle[target])
    assert ckpt.read_bytes() == before


def test_out_is_required(tmp_path, capsys):
    _assert_refused(tmp_path, capsys, ["export", "--checkpoint", str(_good_checkpoint(tmp_path))],
                    tmp_path / "x", "--out")


def test_metadata_values_are_json_text(tmp_path):
    from safetensors import safe_open

    _, _, out = _export(tmp_path, "mingru", "float32", "mixed-last-seg4")
    with safe_open(str(out), framework="numpy") as fh:
        raw = fh.metadata()
    assert all(isinstance(v, str) for v in raw.values())
    assert json.loads(raw["model_config"])["channels"] == "mixed"
    assert json.loads(raw["scalers"])["series"]["kind"] == "standard"
