"""The tracker on variable-frame-rate video (phones): with frame times, the motion model and the
keypoint smoothing step by the real time between frames, not by frame numbers."""

from __future__ import annotations

import numpy as np
import pytest
from track_inputs import poses

from stip_rt.track.config import TrackerConfig
from stip_rt.track.tracker import Tracker


def _stalled_times(n: int = 90, fps: float = 30.0) -> list[float]:
    """30 fps with a 100 ms stall (3 frame periods) after every 10th frame, as phones record in low light."""
    times, t = [], 0.0
    for i in range(n):
        times.append(t)
        t += 0.1 if i % 10 == 9 else 1 / fps
    return times


def _run(
    times: list[float], speed: float, *, with_times: bool, kpts: bool = False, stamps: list[float] | None = None
) -> tuple[set[int], list]:
    """A 60×150 px person walking right at ``speed`` px/s, seen at ``times`` (stamped ``stamps``, default the
    same); the ids given and the outputs."""
    stamps = times if stamps is None else stamps
    rng = np.random.default_rng(0)
    tracker = Tracker(fps=30.0)
    ids: set[int] = set()
    outs = []
    for i, t in enumerate(times):
        x = 100 + speed * t
        k = None
        if kpts:
            k = np.zeros((1, 17, 3), np.float32)
            k[0, :, 0] = x + 30 + rng.normal(0, 2, 17)
            k[0, :, 1] = 175 + rng.normal(0, 2, 17)
            k[0, :, 2] = 0.9
        out = tracker.update(poses([[x, 100, x + 60, 250]], kpts=k), i, stamps[i] if with_times else None)
        ids |= set(out.ids.tolist())
        outs.append(out)
    return ids, outs


@pytest.mark.parametrize("speed", [600.0, 750.0, 900.0, 1200.0])
def test_stalls_keep_one_id_when_times_are_given(speed: float) -> None:
    # by frame numbers a stall's 3× jump falls outside the prediction (750–900 px/s: 9 ids)
    ids, _ = _run(_stalled_times(), speed, with_times=True)
    assert ids == {1}


def test_without_times_the_stalls_fragment_the_track() -> None:
    """What the times fix: the same walk tracked by frame numbers alone breaks up."""
    ids, _ = _run(_stalled_times(), 750.0, with_times=False)
    assert len(ids) > 1


def test_even_times_change_nothing() -> None:
    """Constant-rate video (times = n / fps, or jittered by timestamp rounding) tracks exactly as by frame numbers."""
    even = [i / 30 for i in range(40)]
    jitter = [t + (0.001 if i % 3 else -0.001) for i, t in enumerate(even)]  # Matroska's whole ms
    _, by_number = _run(even, 300.0, with_times=False, kpts=True)
    for stamps in (even, jitter):
        _, by_time = _run(even, 300.0, with_times=True, kpts=True, stamps=stamps)
        for a, b in zip(by_number, by_time, strict=True):
            np.testing.assert_array_equal(a.ids, b.ids)
            np.testing.assert_array_equal(a.boxes, b.boxes)
            np.testing.assert_array_equal(a.keypoints, b.keypoints)


def _standing(tracker: Tracker, frames: list[int], times: list[float | None]) -> list[list[int]]:
    """Ids given to one person standing still, seen at ``frames`` (and ``times``)."""
    return [tracker.update(poses([[100, 100, 160, 250]]), f, t).ids.tolist() for f, t in zip(frames, times)]


def test_an_outage_kept_in_the_times_only_ages_the_tracks_as_in_the_numbers() -> None:
    """A live run's outage of 5 s skips frame numbers (frame 60 after frame 9: a new track); the video
    recorded of that run keeps it in its times only (mp4: frame 10 at 6.0 s). Re-tracking that video
    once kept the old track through 5 s (max_age_s 1.5): predicted by the times, aged by the numbers."""
    cfg = TrackerConfig(min_hits=1)
    by_number = _standing(Tracker(cfg, fps=10.0), [*range(10), 60], [i / 10 for i in range(10)] + [6.0])
    by_time = _standing(Tracker(cfg, fps=10.0), list(range(11)), [i / 10 for i in range(10)] + [6.0])
    assert by_number[-1] == by_time[-1] == [2]
    assert by_number[:10] == by_time[:10] == [[1]] * 10
    # a stall within max_age_s keeps the track
    assert _standing(Tracker(cfg, fps=10.0), list(range(11)), [i / 10 for i in range(10)] + [2.0])[-1] == [1]
    # a tentative track is not aged by a stall (no frame was missed): confirmed at its second frame
    tracker = Tracker(fps=10.0)
    tracker.update(poses([]), 0, 0.0)
    assert _standing(tracker, [1, 2], [0.1, 0.6]) == [[], [1]]


def test_a_gap_in_the_numbers_ages_the_tracks_whatever_the_times_say() -> None:
    """Frames 10-14 missing, but times that step less than the numbers (a source whose clock says less
    than its nominal rate): the lifecycle counts frames, so the gap ages the track as without times."""
    frames, times = [*range(10), 15], [i / 40 for i in range(10)] + [0.25]
    cfg = TrackerConfig(min_hits=1, max_age_s=0.2)
    assert _standing(Tracker(cfg, fps=10.0), frames, [None] * 11)[-1] == [2]
    assert _standing(Tracker(cfg, fps=10.0), frames, times)[-1] == [2]
