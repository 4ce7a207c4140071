"""Tracks start at their first frame (back-fill + DelayedOutput), activation, lost tracks' size."""

from __future__ import annotations

import numpy as np
import pytest
from track_inputs import box, poses

from stip_rt.schemas import COCO17
from stip_rt.track.backfill import DelayedOutput, merge_tracks
from stip_rt.track.config import OneEuroConfig, TrackerConfig
from stip_rt.track.tracker import Tracker, TrackState
from stip_rt.types import Poses, Tracks


def _skeleton(x0: float, y0: float, layout: np.ndarray) -> np.ndarray:
    kp = np.zeros((17, 3))
    kp[:, 0] = x0 + layout[:, 0] * 50
    kp[:, 1] = y0 + layout[:, 1] * 120
    kp[:, 2] = 0.9
    return kp


def _run(tracker: Tracker, frames: list[Poses], delay: int | None = None) -> dict[int, Tracks]:
    """Frame index → released tracks, every frame exactly once and in order."""
    out = DelayedOutput(tracker, delay)
    got: list[tuple[int, Tracks]] = []
    for i, p in enumerate(frames):
        got.extend(out.update(p, i, payload=i))
    got.extend(out.flush())
    assert [i for i, _ in got] == list(range(len(frames)))
    return dict(got)


def _first_frames(res: dict[int, Tracks]) -> dict[int, int]:
    first: dict[int, int] = {}
    for f, t in sorted(res.items()):
        for i in t.ids.tolist():
            first.setdefault(i, f)
    return first


def test_every_track_starts_at_its_first_frame():
    # six people entering at frames 0, 0, 0, 16, 21, 40 (the ground truth), 60 frames
    starts = [0, 0, 0, 16, 21, 40]
    frames = []
    for f in range(60):
        b = [box(120.0 * k + 0.5 * (f - s), 100.0) for k, s in enumerate(starts) if f >= s]
        frames.append(poses(b))
    res = _run(Tracker(fps=25), frames)
    assert sorted(_first_frames(res).values()) == starts
    assert all(len(res[f]) == sum(f >= s for s in starts) for f in range(60))  # nobody missing anywhere
    for t in res.values():
        assert np.all(np.diff(t.ids) > 0)  # rows in id order after merging


def test_live_output_starts_at_confirmation_and_backfill_rows_are_dropped():
    frames = [poses([]), poses([box(0)]), poses([box(1)]), poses([box(2)])]
    res = _run(Tracker(fps=25), frames, delay=0)
    assert _first_frames(res) == {1: 2}  # live: from the confirming frame on


def test_person_detected_every_other_frame_is_output():
    frames = [poses([box(300)]) if f % 2 == 0 else poses([]) for f in range(1, 21)]  # not on the first frame
    tr = Tracker(fps=25)
    res = _run(tr, frames)
    seen = [f for f, t in res.items() if len(t)]
    assert seen == list(range(1, 20, 2))  # every frame it was detected in, from the first
    assert {int(i) for t in res.values() for i in t.ids} == {1}


def test_person_scored_055_throughout_is_output():
    frames = [poses([]), *(poses([box(2.0 * f)], [0.55]) for f in range(10))]
    res = _run(Tracker(fps=25), frames)
    assert [f for f, t in res.items() if len(t)] == list(range(1, 11))


def test_one_off_detection_is_never_output():
    frames = [poses([]), poses([box(0)]), poses([]), poses([]), poses([box(400)])]
    res = _run(Tracker(fps=25), frames)
    assert all(len(t) == 0 for t in res.values())


def test_late_keypoints_smoothed_in_frame_order():
    tr = Tracker(TrackerConfig(), fps=10, schema=COCO17)
    layout = np.full((17, 2), 0.5)
    frames = [poses([])] + [poses([box(0)], kpts=_skeleton(10.0 * f, 100, layout)[None]) for f in range(4)]
    res = _run(tr, frames)
    xs = [float(res[f].keypoints[0, 0, 0]) for f in range(1, 5)]
    assert xs[0] == pytest.approx(25.0)  # the filter's first sample passes through
    assert xs[0] < xs[1] < xs[2] < xs[3] < 55.0  # then smoothed (lags the raw 35, 45, 55)
    assert xs[1] < 35.0


def test_merge_tracks_keeps_keypoints_and_order():
    a = Tracks(
        np.array([3]),
        np.zeros((1, 4), np.float32),
        np.ones(1, np.float32),
        np.zeros((1, 17, 3), np.float32),
        np.ones(1, np.float32),
        np.array([0]),
    )
    b = Tracks(
        np.array([1]),
        np.ones((1, 4), np.float32),
        np.ones(1, np.float32),
        np.ones((1, 17, 3), np.float32),
        np.ones(1, np.float32),
        np.array([1]),
    )
    m = merge_tracks(a, b)
    assert m.ids.tolist() == [1, 3] and m.det_index.tolist() == [1, 0] and m.keypoints[0, 0, 0] == 1
    assert merge_tracks(Tracks.empty(17), b) is b


def test_delayed_output_rejects_negative_delay():
    with pytest.raises(ValueError, match="delay"):
        DelayedOutput(Tracker(), -1)
    assert DelayedOutput(Tracker()).delay == Tracker().backfill_frames == 2


def test_lost_track_keeps_its_size_and_is_refound_after_40_frames():
    cfg = TrackerConfig(max_age_s=2.0, smoothing=OneEuroConfig(enabled=False))
    tr = Tracker(cfg, fps=30)  # 60 frames of buffer
    for f in range(12):  # the box shrinks about its centre by 2 px a frame: the filter learns a size velocity
        w = 80.0 - 2.0 * f
        tr.update(poses([[300 - w / 2, 200 - w, 300 + w / 2, 200 + w]]), f)
    for f in range(12, 52):  # lost for 40 frames
        assert len(tr.update(poses([]), f)) == 0
    assert tr.track_states() == {1: TrackState.LOST}
    w_pred = tr._table.x[0, 2]
    assert 50.0 < w_pred < 60.0  # frozen near the last width (58), not 58 - 2·40
    out = tr.update(poses([[300 - 29, 200 - 58, 300 + 29, 200 + 58]]), 52)
    assert out.ids.tolist() == [1]  # re-found with its id


def test_lost_track_leaving_the_frame_is_removed():
    def walk(frame_size):
        tr = Tracker(TrackerConfig(max_age_s=10.0), fps=10, frame_size=frame_size)
        for f in range(10):  # walks right at 20 px/frame, last seen at x = 580..630
            tr.update(poses([box(400.0 + 20 * f)]), f)
        for f in range(10, 20):
            tr.update(poses([]), f)
        return tr.track_states()

    assert walk((640, 480)) == {}  # the prediction left the frame: it can never be re-found
    assert walk(None) == {1: TrackState.LOST}  # without the frame size it waits for max_age
