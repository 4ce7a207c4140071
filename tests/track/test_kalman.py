"""The stacked Kalman steps equal filterpy's own predict/update."""

from __future__ import annotations

import copy

import numpy as np

from stip_rt.track.config import KalmanConfig
from stip_rt.track.kalman import (
    new_filter,
    predict_many,
    predict_one,
    update_many,
    update_one,
    xyxy_to_z,
    z_to_xyxy,
)

CFG = KalmanConfig()


def test_box_state_round_trip():
    b = np.array([[10.0, 20.0, 60.0, 140.0]])
    np.testing.assert_allclose(xyxy_to_z(b), [[35, 80, 50, 120]])
    np.testing.assert_allclose(z_to_xyxy(xyxy_to_z(b)), b)


def test_batched_equals_filterpy():
    rng = np.random.default_rng(0)
    boxes = np.array([[0, 0, 50, 120], [300, 50, 330, 130], [600, 200, 700, 450]], float)
    ref = [new_filter(b, CFG) for b in boxes]
    fast = copy.deepcopy(ref)
    for step in range(6):
        dt = 1 if step != 3 else 2
        for kf in ref:
            predict_one(kf, CFG, dt)
        predict_many(fast, CFG, dt)
        z = boxes + rng.normal(0, 3, boxes.shape) + step * 5
        for kf, b in zip(ref, z):
            update_one(kf, b, CFG)
        update_many(fast, z, CFG)
        for a, b in zip(ref, fast):
            np.testing.assert_allclose(b.x, a.x, rtol=1e-9, atol=1e-8)
            np.testing.assert_allclose(b.P, a.P, rtol=1e-7, atol=1e-8)


def test_constant_velocity_is_learned():
    kf = [new_filter(np.array([0, 0, 50, 100.0]), CFG)]
    for f in range(1, 30):
        predict_many(kf, CFG)
        update_many(kf, np.array([[5.0 * f, 0, 5.0 * f + 50, 100]]), CFG)
    x = predict_many(kf, CFG)
    assert abs(x[0, 4] - 5.0) < 0.1  # vx in px/frame
    np.testing.assert_allclose(z_to_xyxy(x)[0], [150, 0, 200, 100], atol=1.0)


def test_noise_scales_with_size():
    small, big = new_filter(np.array([0, 0, 10, 20.0]), CFG), new_filter(np.array([0, 0, 100, 200.0]), CFG)
    np.testing.assert_allclose(big.P, small.P * 100)
