"""The stacked Kalman steps equal filterpy's own predict/update (filterpy is the reference)."""

from __future__ import annotations

import numpy as np

from stip_rt.track.config import KalmanConfig
from stip_rt.track.kalman import (
    initiate,
    predict,
    reference_filter,
    reference_predict,
    reference_update,
    state_boxes,
    update,
)

CFG = KalmanConfig()


def test_state_boxes_round_trip():
    b = np.array([[10.0, 20.0, 60.0, 140.0]])
    x, _ = initiate(b, CFG)
    np.testing.assert_allclose(x, [[35, 80, 50, 120, 0, 0, 0, 0]])
    np.testing.assert_allclose(state_boxes(x), b)


def test_batched_equals_filterpy():
    rng = np.random.default_rng(0)
    boxes = np.array([[0, 0, 50, 120], [300, 50, 330, 130], [600, 200, 700, 450]], float)
    x, p = initiate(boxes, CFG)
    ref = [reference_filter(xi, pi) for xi, pi in zip(x, p)]
    for step in range(6):
        dt = 1 if step != 3 else 2
        for kf in ref:
            reference_predict(kf, CFG, dt)
        x, p = predict(x, p, CFG, dt)
        z = boxes + rng.normal(0, 3, boxes.shape) + step * 5
        for kf, b in zip(ref, z):
            reference_update(kf, b, CFG)
        x, p = update(x, p, z, CFG)
        for a, xi, pi in zip(ref, x, p):
            np.testing.assert_allclose(xi, a.x[:, 0], rtol=1e-9, atol=1e-8)
            np.testing.assert_allclose(pi, a.P, rtol=1e-7, atol=1e-8)


def test_steps_do_not_change_their_inputs():
    x, p = initiate(np.array([[0, 0, 50, 100.0], [10, 10, 40, 90]]), CFG)
    x0, p0 = x.copy(), p.copy()
    xp, pp = predict(x, p, CFG)
    update(xp, pp, np.array([[1, 1, 51, 101.0], [12, 10, 42, 90]]), CFG)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(p, p0)
    xp2, pp2 = predict(x, p, CFG)
    np.testing.assert_array_equal(xp2, xp)
    np.testing.assert_array_equal(pp2, pp)


def test_constant_velocity_is_learned():
    x, p = initiate(np.array([[0, 0, 50, 100.0]]), CFG)
    for f in range(1, 30):
        x, p = predict(x, p, CFG)
        x, p = update(x, p, np.array([[5.0 * f, 0, 5.0 * f + 50, 100]]), CFG)
    x, _ = predict(x, p, CFG)
    assert abs(x[0, 4] - 5.0) < 0.1  # vx in px/frame
    np.testing.assert_allclose(state_boxes(x)[0], [150, 0, 200, 100], atol=1.0)


def test_noise_scales_with_size():
    _, p = initiate(np.array([[0, 0, 10, 20.0], [0, 0, 100, 200.0]]), CFG)
    np.testing.assert_allclose(p[1], p[0] * 100)
