"""Adam / AdamW against hand computations, decay exclusions, clipping, schedule, stopping."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.optim import Adam, AdamW, CosineSchedule, EarlyStopping, clip_grad_norm, decays


def _param(value, grad):
    return np.array(value, dtype=np.float64), np.array(grad, dtype=np.float64)


def test_adam_two_steps_match_a_hand_computation():
    p, g = _param([[1.0, -2.0]], [[0.5, -1.0]])
    opt = Adam([("w", p, g)], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    opt.step()
    # step 1: m = 0.1 g, v = 0.001 g^2; bias-corrected m/v^0.5 = g/|g| -> p -= lr * sign(g)
    g1 = np.array([0.5, -1.0])
    after1 = np.array([1.0, -2.0]) - 0.1 * g1 / (np.abs(g1) + 1e-8)
    np.testing.assert_allclose(p[0], after1, rtol=1e-14)
    g[...] = [[1.0, 0.0]]
    opt.step()
    m = 0.9 * 0.1 * np.array([0.5, -1.0]) + 0.1 * np.array([1.0, 0.0])
    v = 0.999 * 0.001 * np.array([0.25, 1.0]) + 0.001 * np.array([1.0, 0.0])
    mhat, vhat = m / (1 - 0.9 ** 2), v / (1 - 0.999 ** 2)
    expected = after1 - 0.1 * mhat / (np.sqrt(vhat) + 1e-8)
    np.testing.assert_allclose(p[0], expected, rtol=1e-12)


def test_adamw_decay_is_decoupled_and_adam_decay_is_l2():
    # zero gradient: AdamW still shrinks the weight by lr * wd; Adam's L2 goes through m/v
    p1, g1 = _param([[2.0]], [[0.0]])
    AdamW([("w", p1, g1)], lr=0.1, weight_decay=0.5).step()
    assert p1[0, 0] == pytest.approx(2.0 * (1 - 0.1 * 0.5))
    p2, g2 = _param([[2.0]], [[0.0]])
    Adam([("w", p2, g2)], lr=0.1, weight_decay=0.5).step()
    assert p2[0, 0] == pytest.approx(2.0 - 0.1, rel=1e-6)  # sign step of g + wd * p


@pytest.mark.parametrize("name, shape, expected", [
    ("mamba_blocks.0.mixer.in_proj.weight", (4, 2), True),
    ("gru.weight_hh_l0", (6, 2), True),
    ("mamba_blocks.0.mixer.A_log", (4, 3), False),
    ("mamba_blocks.0.mixer.D", (4,), False),
    ("head.bias", (1,), False),
    ("gru.bias_ih_l0", (6,), False),
    ("norm_f.weight", (4,), False),
    ("mamba_blocks.0.norm.weight", (4,), False),
    ("alpha", (1,), False),
    ("alpha", (4,), False),
    ("gate.weight", (4, 8), True),
])
def test_weight_decay_exclusions(name, shape, expected):
    assert decays(name, np.zeros(shape)) is expected


def test_excluded_parameters_are_not_decayed_by_adamw():
    a_log, g = _param(np.ones((2, 2)), np.zeros((2, 2)))
    w, gw = _param(np.ones((2, 2)), np.zeros((2, 2)))
    AdamW([("m.A_log", a_log, g), ("m.w", w, gw)], lr=0.1, weight_decay=0.1).step()
    np.testing.assert_array_equal(a_log, 1.0)
    np.testing.assert_allclose(w, 0.99)


def test_clipping_by_global_norm():
    g1, g2 = np.array([3.0]), np.array([[4.0]])
    norm = clip_grad_norm([g1, g2], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    assert math.hypot(g1[0], g2[0, 0]) == pytest.approx(1.0, rel=1e-5)
    assert g1[0] / g2[0, 0] == pytest.approx(0.75)  # direction kept
    small = np.array([0.3])
    assert clip_grad_norm([small], max_norm=1.0) == pytest.approx(0.3) and small[0] == 0.3
    big = np.array([30.0])
    clip_grad_norm([big], max_norm=0)  # 0 disables clipping
    assert big[0] == 30.0
    inf = np.array([np.inf])
    assert clip_grad_norm([inf], 1.0) == math.inf


def test_cosine_schedule_with_warmup():
    s = CosineSchedule(base_lr=1.0, total_steps=12, warmup_steps=2, min_lr=0.0)
    assert [s(0), s(1)] == [0.5, 1.0]
    assert s(2) == pytest.approx(1.0)                   # peak after warm-up
    assert s(7) == pytest.approx(0.5)                   # half way through the decay
    assert s(12) == pytest.approx(0.0, abs=1e-12)
    values = [s(k) for k in range(2, 12)]
    assert all(a > b for a, b in zip(values, values[1:]))
    flat = CosineSchedule(0.1, 5)
    assert flat(0) == pytest.approx(0.1)


def test_early_stopping_keeps_the_best_snapshot():
    stop = EarlyStopping(patience=2)
    losses = [1.0, 0.5, 0.6, 0.7, 0.4]
    seen = []
    for epoch, loss in enumerate(losses, start=1):
        stop.update(loss, epoch, lambda e=epoch: {"epoch": e})
        seen.append(stop.should_stop)
        if stop.should_stop:
            break
    assert seen == [False, False, False, True]
    assert stop.best_epoch == 2 and stop.best_state == {"epoch": 2} and stop.best_loss == 0.5
    never = EarlyStopping(patience=0)
    for epoch in range(10):
        never.update(1.0, epoch, dict)
    assert not never.should_stop
    nan = EarlyStopping(patience=3)
    assert nan.update(float("nan"), 1, dict) is False and nan.best_state is None
