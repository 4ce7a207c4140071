"""Tracker.reset: forgets the tracks and the frame order, keeps counting ids (a viewer seek)."""

import numpy as np
import pytest

from stip_rt.errors import ConfigError
from stip_rt.track.config import TrackerConfig
from stip_rt.track.tracker import Tracker
from stip_rt.types import Poses


def _poses(n):
    boxes = np.array([[10 + 60 * i, 10, 50 + 60 * i, 110] for i in range(n)], np.float32)
    return Poses(boxes, np.full(n, 0.9, np.float32), None, np.full(n, 0.9, np.float32))


def test_reset_keeps_the_id_counter_and_allows_earlier_frames():
    tracker = Tracker(TrackerConfig(min_hits=1), fps=10)
    for f in range(5):
        first = tracker.update(_poses(2), f)
    assert set(first.ids.tolist()) == {1, 2}
    tracker.reset()
    assert tracker.track_states() == {}
    again = tracker.update(_poses(2), 0)  # an earlier frame is accepted after a reset
    for f in range(1, 3):
        again = tracker.update(_poses(2), f)
    assert set(again.ids.tolist()) == {3, 4}


def test_reset_to_a_next_id():
    tracker = Tracker(TrackerConfig(min_hits=1), fps=10)
    tracker.reset(next_id=50)
    for f in range(3):
        out = tracker.update(_poses(1), f)
    assert out.ids.tolist() == [50]
    with pytest.raises(ConfigError, match="repeat"):
        tracker.reset(next_id=10)
