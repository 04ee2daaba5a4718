"""Whole models against PyTorch (issue 19, item 1): the harness's pieces that need no timing.

The stand-alone command of every model spec round-trips through the worker's options;
our side of the parity check computes minGRU-pytorch's log-space minGRU with our layers
and gives the model back unchanged; the tolerances are the dtype's except the two
documented PyTorch-side exceptions. The PyTorch side itself runs in
``bench/test_bench_models.py`` (a smoke test in the normal run).
"""
from __future__ import annotations

import numpy as np
import pytest

from bench.harness.sizes import Size, TRAIN_SIZE
from bench.harness.specs import command_for, model_spec, spec_from_args
from bench.harness.worker import _parser
from bench.harness.wholemodel import (check_model_parity, compared_names, log_space_mingru, peer_form_outputs,
                                      plain_mingru)
from engine.parity import ParityError

TINY = Size("tiny", batch=2, seq_len=5, d_model=4, d_state=2)


@pytest.mark.parametrize("spec", [
    model_spec("hybrid", "ours", np.float64, TRAIN_SIZE, backend="numba"),
    model_spec("mamba", "peer", np.float32, TRAIN_SIZE, threads=2),
    model_spec("gru", "peer", np.float64, TINY, threads=1, compile=True),
], ids=["ours", "eager", "compile"])
def test_model_commands_round_trip(spec):
    argv = command_for(spec)
    assert argv[:4] == ["-m", "bench.harness.worker", "model", spec["model"]]
    back = spec_from_args(_parser().parse_args(argv[2:]))
    if spec["size"] != TRAIN_SIZE.to_dict():
        spec = dict(spec, size=dict(spec["size"], name="custom"))
    assert back == spec


def test_log_space_mingru_matches_its_definition_and_is_undone():
    from bench.harness.peers import mingru_log_space_outputs
    from models import build_model

    model = build_model("mingru", input_size=1, hidden_size=4, d_state=2, backend="numpy", seed=3)
    layer = model.blocks.layers[0].mixer
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((2, 5, 4)), rng.standard_normal((2, 5, 4))
    xb, yb = rng.standard_normal((2, 5, 1)), rng.standard_normal((2, 1))
    plain = model.forward(xb)
    keys = ("linear_h.weight", "linear_z.weight")
    want = mingru_log_space_outputs(layer, x, dy, keys)
    log_space_mingru(layer)
    layer.zero_grad()
    h = layer.forward(x)
    dx = layer.backward(dy)
    grads = layer.grads()
    got = (h, dx) + tuple(grads[k] for k in sorted(keys))
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # the parity outputs leave the plain minGRU in place
    plain_mingru(layer)
    peer_form_outputs(model, xb, yb)
    np.testing.assert_array_equal(model.forward(xb), plain)
    assert not any(g.any() for _, _, g in model.named_parameters())


def test_compared_gradients_leave_out_the_biases_minGRU_pytorch_lacks():
    from models import build_model

    names = compared_names(build_model("hybrid", input_size=1, hidden_size=4, d_state=2, backend="numpy"))
    assert "mingru_blocks.0.mixer.linear_z.weight" in names and "alpha" in names
    assert not any(n.endswith(("linear_z.bias", "linear_h.bias")) for n in names)
    assert names == sorted(names)


def test_parity_tolerances():
    names = ["blocks.0.mixer.A_log", "head.weight"]
    ref = (np.float64(1.0), np.ones(3), np.ones(2), np.ones(2))
    off = lambda e: tuple(np.asarray(a) * (1 + e) for a in ref)           # noqa: E731
    assert check_model_parity(off(1e-12), ref, names, np.float64, "x") <= 1e-10
    with pytest.raises(ParityError, match="loss"):
        check_model_parity(off(1e-8), ref, names, np.float64, "x")
    # mambapy rounds the A_log gradient to float32: float32's tolerance there, on its side only
    got = ref[:2] + (ref[2] * (1 + 1e-7), ref[3])
    assert check_model_parity(got, ref, names, np.float64, "x", peer=True, model="mamba") > 1e-8
    with pytest.raises(ParityError, match="A_log"):
        check_model_parity(got, ref, names, np.float64, "x")
    # float32 outputs against the float64 reference; minGRU-pytorch's float32 scan gets 1e-3
    ref32 = (ref[0],) + tuple(a.astype(np.float32) for a in ref[1:])
    got32 = (ref[0],) + tuple((a * (1 + 5e-4)).astype(np.float32) for a in ref[1:])
    assert check_model_parity(got32, ref, names, np.float32, "x", peer=True, model="mingru") < 1e-3
    with pytest.raises(ParityError):
        check_model_parity(got32, ref, names, np.float32, "x")
    with pytest.raises(ParityError, match="dtype"):
        check_model_parity(ref32, ref, names, np.float64, "x")
