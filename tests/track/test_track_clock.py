"""The tracker's clock (``track/clock.py``): steps between frames, the smoothing's clock, which frames age
a track, and what a gap in the frame numbers or times ages out."""

from __future__ import annotations

import numpy as np
import pytest

from stip_rt.errors import DataError
from stip_rt.track.clock import TrackClock, gap_extra, gap_survivors
from stip_rt.track.lifecycle import CONFIRMED, TENTATIVE


def test_steps_and_the_smoothing_clock_follow_numbers_or_times() -> None:
    c = TrackClock(fps=10.0, keep=3)
    assert c.step(0, 0.0) == 1
    assert c.advance(0, 1, 0.0) == (None, None)
    assert c.step(2, None) == 2 and c.step(1, 0.1) == 1 and c.step(1, 0.5) == pytest.approx(5.0)
    c.advance(1, 5.0, 0.5)
    assert c.seconds(1) == pytest.approx(0.5) and c.last_frame == 1 and c.last_time == 0.5
    for f in (2, 3, 4):
        c.advance(f, 1, None)
    assert sorted(c.clocks) == [2, 3, 4] and c.seconds(0) == 0.0  # too old: its number
    with pytest.raises(DataError, match="increasing order"):
        c.step(4, None)


def test_coasted_frames_are_not_misses_of_tentative_tracks() -> None:
    c = TrackClock(fps=10.0, keep=3, coasted=[11, 12, 14])
    last, state = np.array([10, 12]), np.array([TENTATIVE, CONFIRMED])
    assert c.coasts_since(last).tolist() == [3, 1]
    assert c.missed(15, last, state).tolist() == [2, 3]
    c.forget_coasts(np.array([12, 13]))
    assert c.coasted == [14]
    c.forget_coasts(np.zeros(0, np.int64))
    assert c.coasted == []


def test_a_gap_ages_lost_tracks_by_time_and_tentative_ones_by_frames() -> None:
    assert gap_extra(5, 4, 1) is None and gap_extra(5, None, 1) is None
    assert gap_extra(8, 4, 4) == 0.0 and gap_extra(5, 4, 3.0) == pytest.approx(2.0)
    keep = gap_survivors(np.array([3, 3, 9]), 2.0, np.array([True, False, False]), 1, 4)
    assert keep.tolist() == [False, True, False]  # tentative: 3 > 2; lost: 3 + 2 <= 5; 9 + 2 > 5
