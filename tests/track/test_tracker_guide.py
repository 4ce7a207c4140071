"""The guide of detect-every-N (``Tracker.guide_snapshot`` / ``guide``): the tracks matched by the last
update, predicted to the frame asked for by the rule ``update`` and ``coast`` step by (frame numbers,
or the times on variable-frame-rate video), from a snapshot the tracker's later frames do not change."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from track_inputs import box, poses

from stip_rt.track.config import TrackerConfig
from stip_rt.track.tracker import Tracker

FPS = 30.0


def _walker(frames: list[int], times: list[float] | None = None, speed: float = 4.0) -> Tracker:
    """A tracker that saw one person walking right ``speed`` px per frame of ``FPS`` (by its time when given)."""
    t = Tracker(TrackerConfig(min_hits=1), fps=FPS)
    for i, f in enumerate(frames):
        at = f if times is None else times[i] * FPS
        t.update(poses([box(100.0 + speed * at)]), f, None if times is None else times[i])
    return t


def _coasted_boxes(tracker: Tracker, frame: int, time: float | None) -> np.ndarray:
    """Where ``coast`` (a copy of the tracker) puts the tracks in ``frame``: the same prediction rule."""
    return copy.deepcopy(tracker).coast(frame, time).boxes


def test_the_guide_to_a_frame_after_dropped_ones_is_the_prediction_to_that_frame() -> None:
    t = _walker(list(range(8)))
    g = t.guide_snapshot()
    after_drop = g.guide(10)  # frames 8 and 9 dropped
    np.testing.assert_array_equal(after_drop.boxes, _coasted_boxes(t, 10, None))
    # three frames of motion ahead of the last box (128), not one
    assert after_drop.boxes[0, 0] - 128.0 > 2.5 * 4.0 > g.guide(8).boxes[0, 0] - 128.0
    np.testing.assert_array_equal(t.guide(10).boxes, after_drop.boxes)


def test_the_guide_follows_the_times_of_variable_frame_rate_video() -> None:
    """A stall of 100 ms (3 frame periods at 30 fps) before frame 8: predicted by the time, as ``update``."""
    times = [i / FPS for i in range(8)]
    t = _walker(list(range(8)), times)
    stalled = times[-1] + 0.1
    g = t.guide_snapshot()
    assert g.step(8, stalled) == pytest.approx(3.0) and g.step(8) == 1
    by_time = t.guide(8, stalled)
    np.testing.assert_array_equal(by_time.boxes, _coasted_boxes(t, 8, stalled))
    assert by_time.boxes[0, 0] - (100.0 + 4.0 * 7) > 2.5 * 4.0  # three frames of motion, not one
    # even times (or none) step by the frame numbers, as before
    np.testing.assert_array_equal(t.guide(8, times[-1] + 1 / FPS).boxes, t.guide(8).boxes)


def test_a_snapshot_is_not_changed_by_the_frames_tracked_after_it() -> None:
    t = _walker(list(range(5)))
    g = t.guide_snapshot()
    before = g.guide(5)
    assert not g.x.flags.writeable and not g.ids.flags.writeable
    t.update(poses([box(400.0)]), 5)  # the walker is gone, someone else appears
    t.coast(6)
    t.reset()
    again = g.guide(5)
    np.testing.assert_array_equal(again.boxes, before.boxes)
    assert again.ids.tolist() == before.ids.tolist() == [1] and g.last_frame == 4
    again.boxes[:] = 0  # the output is the caller's to change
    np.testing.assert_array_equal(g.guide(5).boxes, before.boxes)


def test_an_empty_tracker_guides_nobody() -> None:
    t = Tracker(fps=FPS)
    assert len(t.guide_snapshot()) == 0 and len(t.guide_snapshot().guide(3, 0.1)) == 0
    t.update(poses([]), 0)
    assert len(t.guide(1)) == 0
