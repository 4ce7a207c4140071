"""One-Euro (causal) and the offline zero-phase smoother."""

from __future__ import annotations

import numpy as np
import pytest

from stip_rt.track.config import OneEuroConfig
from stip_rt.track.smoothing import OneEuroFilter, smooth_offline


def test_one_euro_reduces_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.0), min_score=0.3)
    truth = np.full(200, 100.0)
    noisy = truth + rng.normal(0, 2, 200)
    out = np.array([f(i / 30, np.array([[x, 0.0, 0.9]]))[0, 0] for i, x in enumerate(noisy)])
    assert np.std(out[50:] - truth[50:]) < 0.5 * np.std(noisy[50:] - truth[50:])
    g = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.05), min_score=0.3)
    ramp = [g(i / 30, np.array([[10.0 * i, 0.0, 0.9]]))[0, 0] for i in range(60)]
    assert abs(ramp[-1] - 590) < 20  # a fast mover is followed with little lag


def test_one_euro_low_score_never_pulls():
    f = OneEuroFilter(OneEuroConfig(), min_score=0.3)
    f(0.0, np.array([[10.0, 10.0, 0.9]]))
    out = f(0.1, np.array([[500.0, 500.0, 0.1]]))
    np.testing.assert_allclose(out, [[500.0, 500.0, 0.1]])  # passed through as is
    assert np.allclose(f.state.x, [[10.0, 10.0]])  # the filter did not move
    out = f(0.2, np.array([[10.0, 10.0, 0.9]]))
    np.testing.assert_allclose(out[0, :2], [10.0, 10.0])


def test_offline_fills_short_gaps_and_is_zero_phase():
    fps = 30.0
    t = np.arange(90)
    x = 100 + 50 * np.sin(2 * np.pi * 0.5 * t / fps)  # 0.5 Hz motion, far below the 6 Hz cutoff
    rng = np.random.default_rng(0)
    kp = np.zeros((90, 1, 3))
    kp[:, 0, 0] = x + rng.normal(0, 2, 90)
    kp[:, 0, 1] = 50
    kp[:, 0, 2] = 0.9
    kp[40:44, 0, 2] = 0.1  # a 4-frame low-score gap
    frames = np.delete(t, [60, 61])  # and 2 missing frames
    res = smooth_offline(frames, np.delete(kp, [60, 61], axis=0), fps, cutoff_hz=2.0, max_gap=5)
    np.testing.assert_array_equal(res.frames, t)
    assert res.filled[40:44, 0].all() and res.filled[60:62, 0].all() and not res.filled[:40, 0].any()
    err = res.keypoints[5:-5, 0, 0] - x[5:-5]
    raw = kp[5:-5, 0, 0] - x[5:-5]
    assert np.abs(err).mean() < 0.6 * np.abs(raw).mean()  # noise removed ...
    assert abs(np.corrcoef(err, np.gradient(x[5:-5]))[0, 1]) < 0.3  # ... without lag (no trailing the sine)


def test_offline_long_gaps_are_not_filled():
    kp = np.zeros((4, 1, 3))
    kp[..., 2] = 0.9
    res = smooth_offline(np.array([0, 1, 20, 21]), kp, 30.0, max_gap=5)
    assert res.frames.tolist() == [0, 1, 20, 21]
    assert not res.filled.any()


def test_offline_gap_joints_without_both_sides_are_missing_not_zero():
    # Frames 3-5 are missing. Joint 0 is good around the gap; joint 1 only before it; joint 2 never
    # (a negative score, as random weights give): even with min_score 0, neither is made up.
    frames = np.array([0, 1, 2, 6, 7, 8])
    kp = np.zeros((6, 3, 3))
    kp[:, :, 0] = frames[:, None] * 10.0
    kp[:, :, 1] = 5.0
    kp[:, :, 2] = [[0.9, 0.9, -0.1]] * 3 + [[0.9, -0.1, -0.1]] * 3
    res = smooth_offline(frames, kp, 30.0, cutoff_hz=20.0, max_gap=5, min_score=0.0)
    np.testing.assert_array_equal(res.frames, np.arange(9))
    np.testing.assert_allclose(res.keypoints[3:6, 0, 0], [30.0, 40.0, 50.0])
    assert res.filled[3:6, 0].all() and not res.missing[:, 0].any()
    assert res.missing[3:6, 1:].all() and not res.missing[[0, 1, 2, 6, 7, 8]].any()
    assert np.isnan(res.keypoints[3:6, 1:]).all()
    np.testing.assert_allclose(res.keypoints[[6, 7, 8], 1], kp[3:, 1])  # observed low scores pass through


def test_offline_rejects_bad_frames():
    with pytest.raises(ValueError, match="increasing"):
        smooth_offline(np.array([0, 0]), np.zeros((2, 1, 3)), 30.0)
