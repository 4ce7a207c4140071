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


def _alternating(n: int) -> np.ndarray:
    """Frame times of a phone video: steps of 1/30 s and 1/15 s in turn (20 fps on average)."""
    return np.r_[0.0, np.cumsum(np.where(np.arange(n - 1) % 2 == 0, 1 / 30, 1 / 15))]


def test_offline_even_times_give_the_filter_over_frames():
    rng = np.random.default_rng(1)
    frames = np.delete(np.arange(100), [30, 31, 70])
    kp = rng.normal(100, 5, (frames.size, 3, 3))
    kp[..., 2] = rng.uniform(0, 1, (frames.size, 3))
    ref = smooth_offline(frames, kp, 30.0, max_gap=5)
    jitter = rng.uniform(-1e-4, 1e-4, frames.size)  # times rounded to 0.1 ms: still an even clock
    for times in (5 + frames / 30, 5 + frames / 30 + jitter, frames / 29.5):
        res = smooth_offline(frames, kp, 30.0, max_gap=5, times=times)
        np.testing.assert_array_equal(res.keypoints, ref.keypoints)
        np.testing.assert_array_equal(res.filled, ref.filled)
        np.testing.assert_array_equal(res.missing, ref.missing)


@pytest.mark.parametrize("noise", [0.0, 2.0])
def test_offline_uneven_times_are_filtered_in_time(noise: float):
    # a 1 Hz sine (20 px) at alternating 1/30-1/15 s steps, 2 Hz cutoff at the mean 20 fps: over frames,
    # the uneven steps look like a 10 Hz wobble of the path, which the filter bends away (1 px off);
    # in time the sine comes out as at a steady rate, and noise is removed without lag
    t = _alternating(200)
    x = 100 + 20 * np.sin(2 * np.pi * t)
    rng = np.random.default_rng(0)
    kp = np.zeros((200, 1, 3))
    kp[:, 0, 0] = x + rng.normal(0, noise, 200) if noise else x
    kp[:, 0, 1] = 50
    kp[:, 0, 2] = 0.9
    res = smooth_offline(np.arange(200), kp, 20.0, cutoff_hz=2.0, times=t)
    err = res.keypoints[20:-20, 0, 0] - x[20:-20]
    if not noise:
        assert np.abs(err).max() < 0.15
        return
    raw = kp[20:-20, 0, 0] - x[20:-20]
    assert np.abs(err).mean() < 0.6 * np.abs(raw).mean()
    assert abs(np.corrcoef(err, np.gradient(x[20:-20], t[20:-20]))[0, 1]) < 0.3


def test_offline_gaps_are_filled_linearly_in_time_and_counted_in_frames():
    # a joint moving 100 px/s at alternating frame steps, below the score for frames 10-12 (3 frames,
    # filled at its positions in time) and 30-35 (6 frames > max_gap 5: left as it was); no filtering
    t = _alternating(50)
    kp = np.zeros((50, 1, 3))
    kp[:, 0, 0] = 100 * t
    kp[:, 0, 2] = 0.9
    kp[10:13, 0, 2] = 0.1
    kp[30:36, 0, :] = [0.0, 0.0, 0.1]
    res = smooth_offline(np.arange(50), kp, 20.0, cutoff_hz=10.0, max_gap=5, times=t)
    assert res.filled[10:13, 0].all() and not res.filled[30:36].any()
    np.testing.assert_allclose(res.keypoints[10:13, 0, 0], 100 * t[10:13], rtol=1e-6)
    np.testing.assert_array_equal(res.keypoints[30:36, 0], kp[30:36, 0].astype(np.float32))


def test_offline_rejects_bad_times():
    kp = np.zeros((3, 1, 3))
    with pytest.raises(ValueError, match="times must be"):
        smooth_offline(np.arange(3), kp, 30.0, times=np.array([0.0, 0.1]))
    with pytest.raises(ValueError, match="increasing"):
        smooth_offline(np.arange(3), kp, 30.0, times=np.array([0.0, 0.2, 0.1]))
