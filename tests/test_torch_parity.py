"""Cross-checks against PyTorch in float64: outputs, input gradients, parameter gradients.

The references are independent of our code: autograd instead of hand-written backward
passes, ``torch.nn.functional.conv1d`` instead of our convolution kernel and, for the
GRU, ``torch.nn.GRU`` itself. Each reference is loaded from our state dict, which also
proves that the key names and layouts are PyTorch's.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from engine.parity import TORCH_TOL  # noqa: E402
from models import build_model  # noqa: E402
from models.gru import GRULayer  # noqa: E402
from models.mamba import MambaBlock  # noqa: E402
from models.mingru import MinGRULayer  # noqa: E402
from tests.gradcheck import perturb_parameters, rel_error  # noqa: E402


def _to_torch(state_dict) -> dict:
    return {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in state_dict.items()}


def _ours(module, x, R):
    """Output, input gradient and parameter gradients of ``sum(module(x) * R)``."""
    module.zero_grad()
    y = module.forward(x)
    dx = module.backward(R)
    return y, dx, module.grads()


def _theirs(fn, x, R):
    """The same three from a torch function of a float64 leaf tensor."""
    xt = torch.tensor(x, requires_grad=True)
    y = fn(xt)
    (y * torch.tensor(R)).sum().backward()
    return y.detach().numpy(), xt.grad.numpy()


def _assert_parity(ours, theirs_y, theirs_dx, theirs_grads: dict, tol: float = TORCH_TOL) -> None:
    y, dx, grads = ours
    errors = {"output": rel_error(y, theirs_y), "input": rel_error(dx, theirs_dx)}
    assert set(grads) == set(theirs_grads)
    errors.update({k: rel_error(grads[k], theirs_grads[k]) for k in grads})
    bad = {k: v for k, v in errors.items() if not v <= tol}
    assert not bad, f"parity with PyTorch failed (tol {tol:g}): {bad}"


def _setup(module, shape, seed):
    rng = np.random.default_rng(seed)
    perturb_parameters(module, rng)
    for name, p, _ in module.named_parameters():
        if name.endswith("dt_proj.bias"):           # steps of order one: the SSM matters
            p[...] = rng.uniform(-1.0, 0.5, p.shape)
    x = rng.standard_normal(shape)
    y = module.forward(x)
    return x, rng.standard_normal(y.shape)


# ----------------------------------------------------------------------------------
# References written with torch operations
# ----------------------------------------------------------------------------------
def torch_mamba(x, P, d_state, dt_rank):
    """Mamba block as in DESIGN.md, with a sequential selective scan. ``P``: our keys."""
    b, L, _ = x.shape
    E = P["D"].shape[0]
    k = P["conv1d.weight"].shape[-1]
    xs, z = (x @ P["in_proj.weight"].T).split(E, dim=-1)
    xc = F.conv1d(xs.transpose(1, 2), P["conv1d.weight"], P["conv1d.bias"], padding=k - 1, groups=E)
    u = F.silu(xc[..., :L].transpose(1, 2))                              # keep the causal part
    dt, B, C = (u @ P["x_proj.weight"].T).split([dt_rank, d_state, d_state], dim=-1)
    delta = F.softplus(dt @ P["dt_proj.weight"].T + P["dt_proj.bias"])
    A = -torch.exp(P["A_log"])
    h = torch.zeros(b, E, d_state, dtype=x.dtype)
    ys = []
    for t in range(L):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1) + P["D"] * u[:, t])
    y = torch.stack(ys, dim=1)
    return (y * F.silu(z)) @ P["out_proj.weight"].T


def torch_mingru(x, P):
    """minGRU, sequential mode. ``P``: our keys."""
    z = torch.sigmoid(x @ P["linear_z.weight"].T + P["linear_z.bias"])
    h_tilde = x @ P["linear_h.weight"].T + P["linear_h.bias"]
    h = torch.zeros_like(h_tilde[:, 0])
    hs = []
    for t in range(x.shape[1]):
        h = (1 - z[:, t]) * h + z[:, t] * h_tilde[:, t]
        hs.append(h)
    return torch.stack(hs, dim=1)


# ----------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("d_model, d_state, d_conv, dt_rank", [(4, 3, 4, "auto"), (5, 2, 3, 2)])
def test_mamba_block_matches_torch_ops(d_model, d_state, d_conv, dt_rank):
    block = MambaBlock(d_model, d_state=d_state, d_conv=d_conv, dt_rank=dt_rank, backend="numpy", seed=1)
    x, R = _setup(block, (2, 6, d_model), seed=2)
    P = _to_torch(block.state_dict())
    y, dx = _theirs(lambda xt: torch_mamba(xt, P, d_state, block.dt_rank), x, R)
    _assert_parity(_ours(block, x, R), y, dx, {k: p.grad.numpy() for k, p in P.items()})


def test_mamba_block_matches_mambapy():
    # mambapy rounds A and D to float32 inside (``A_log.float()``), hence the looser bound.
    mambapy = pytest.importorskip("mambapy.mamba")
    block = MambaBlock(4, d_state=3, d_conv=4, backend="numpy", seed=3)
    x, R = _setup(block, (2, 6, 4), seed=4)
    ref = mambapy.MambaBlock(mambapy.MambaConfig(d_model=4, n_layers=1, d_state=3, d_conv=4)).double()
    ref.load_state_dict({k: torch.tensor(v) for k, v in block.state_dict().items()})
    y, dx = _theirs(ref, x, R)
    _assert_parity(_ours(block, x, R), y, dx,
                   {k: p.grad.numpy() for k, p in ref.named_parameters()}, tol=1e-6)


def test_mingru_layer_matches_torch_ops():
    layer = MinGRULayer(3, 4, backend="numpy", seed=5)
    x, R = _setup(layer, (2, 6, 3), seed=6)
    P = _to_torch(layer.state_dict())
    y, dx = _theirs(lambda xt: torch_mingru(xt, P), x, R)
    _assert_parity(_ours(layer, x, R), y, dx, {k: p.grad.numpy() for k, p in P.items()})


def test_gru_layer_matches_torch_nn_gru():
    layer = GRULayer(3, 4, backend="numpy", seed=7)
    x, R = _setup(layer, (2, 6, 3), seed=8)
    ref = torch.nn.GRU(3, 4, batch_first=True, dtype=torch.float64)
    ref.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    y, dx = _theirs(lambda xt: ref(xt)[0], x, R)
    _assert_parity(_ours(layer, x, R), y, dx, {k: p.grad.numpy() for k, p in ref.named_parameters()})


def test_gru_forecaster_matches_stacked_torch_gru():
    # gru.{i}.weight_ih_l0 of our stack is weight_ih_l{i} of a multi-layer torch.nn.GRU.
    model = build_model("gru", input_size=3, hidden_size=4, n_layers=2, horizon=2, backend="numpy", seed=9)
    x, R = _setup(model, (2, 6, 3), seed=10)
    gru = torch.nn.GRU(3, 4, num_layers=2, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(4, 2, dtype=torch.float64)
    rename = {}
    for k in model.state_dict():
        if k.startswith("gru."):
            _, layer, param = k.split(".")
            rename[k] = ("gru", param.replace("_l0", f"_l{layer}"))
        else:
            rename[k] = ("head", k.split(".", 1)[1])
    sd = model.state_dict()
    gru.load_state_dict({name: torch.tensor(sd[k]) for k, (mod, name) in rename.items() if mod == "gru"})
    head.load_state_dict({name: torch.tensor(sd[k]) for k, (mod, name) in rename.items() if mod == "head"})
    y, dx = _theirs(lambda xt: head(gru(xt)[0][:, -1]), x, R)
    torch_params = {"gru": dict(gru.named_parameters()), "head": dict(head.named_parameters())}
    theirs = {k: torch_params[mod][name].grad.numpy() for k, (mod, name) in rename.items()}
    _assert_parity(_ours(model, x, R), y, dx, theirs)
