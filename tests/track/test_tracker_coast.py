"""Tracker.coast: frames without detections (box-only detect every N) are predicted, not measured."""

from __future__ import annotations

import numpy as np
import pytest
from track_inputs import box, poses

from stip_rt.errors import DataError
from stip_rt.schemas import COCO17
from stip_rt.track import tracker as tracker_module
from stip_rt.track.backfill import DelayedOutput
from stip_rt.track.config import TrackerConfig
from stip_rt.track.tracker import Tracker, TrackState


def _walk(tr: Tracker, frames: range, speed: float = 4.0) -> None:
    for f in frames:
        tr.update(poses([box(100.0 + speed * f)]), f)


def test_coast_moves_boxes_at_the_learnt_speed_and_grows_the_uncertainty() -> None:
    tr = Tracker(fps=25.0)
    _walk(tr, range(10))  # 4 px per frame to the right
    spread = np.trace(tr._table.p[0])
    xs = []
    for f in range(10, 15):
        out = tr.coast(f)
        assert out.ids.tolist() == [1] and out.det_index.tolist() == [-1] and out.keypoints is None
        xs.append(float(out.boxes[0, 0]))
        grown = np.trace(tr._table.p[0])
        assert grown > spread  # predicted only: no measurement shrinks the covariance
        spread = grown
    speed = tr._table.x[0, 4]  # px per frame learnt from the 10 matched frames
    assert 3.5 < speed < 4.5
    assert np.diff(xs) == pytest.approx([speed] * 4, abs=1e-3)  # moved at that speed, not damped
    np.testing.assert_allclose(xs, [100.0 + 4 * f for f in range(10, 15)], atol=2.0)
    np.testing.assert_allclose(tr.coast(15).box_scores, [0.9])  # the last match's score
    # the next detection matches the prediction: the same id
    assert tr.update(poses([box(100.0 + 4 * 16)]), 16).ids.tolist() == [1]


def test_coasted_frames_are_not_misses_of_a_tentative_track() -> None:
    """With ``tentative_max_misses`` 0 a tentative track dies at its first missed detection; coasted
    frames are no detection, so it lives to be confirmed, and its coasted frames are back-filled."""
    tr = Tracker(TrackerConfig(tentative_max_misses=0), fps=25.0)
    out = DelayedOutput(tr, delay=tr.backfill_frames * 5)
    released = out.update(poses([box(100.0)]), 0, payload=0)
    released += out.update(poses([box(100.0), box(400.0)]), 1, payload=1)  # id 2 born: tentative
    for f in range(2, 6):
        released += out.coast(f, payload=f)
        assert tr.track_states() == {1: TrackState.CONFIRMED, 2: TrackState.TENTATIVE}
    released += out.update(poses([box(100.0), box(400.0)]), 6, payload=6)
    assert tr.track_states()[2] == TrackState.CONFIRMED
    released += out.flush()
    by_frame = dict(released)
    assert all(by_frame[f].ids.tolist() == [1, 2] for f in range(1, 7))  # 2 from its first frame
    assert [int(by_frame[f].det_index[1]) for f in range(1, 7)] == [1, -1, -1, -1, -1, 1]


def test_a_confirmed_track_stays_confirmed_and_a_lost_one_ages_by_time() -> None:
    tr = Tracker(TrackerConfig(max_age_s=0.2), fps=25.0)  # lost for more than 5 frames: removed
    tr.update(poses([box(100.0), box(400.0)]), 0)
    tr.update(poses([box(100.0)]), 1)  # id 2 missed by a detection: lost
    assert tr.track_states() == {1: TrackState.CONFIRMED, 2: TrackState.LOST}
    for f in range(2, 6):
        assert tr.coast(f).ids.tolist() == [1]  # a lost track is not output
    assert tr.track_states() == {1: TrackState.CONFIRMED, 2: TrackState.LOST}  # unseen for 5 frames
    tr.coast(6)
    assert tr.track_states() == {1: TrackState.CONFIRMED}  # 6 frames: past max_age, no detector needed


def test_a_prediction_leaving_the_frame_ends_the_track() -> None:
    tr = Tracker(fps=25.0, frame_size=(200, 300))
    for f in range(5):
        tr.update(poses([box(100.0 + 10 * f)]), f)  # 10 px per frame towards the right edge
    f = 5
    while tr.coast(f).ids.tolist() == [1]:
        f += 1
    assert 100.0 + 10 * f >= 200 - 10 and tr.track_states() == {}  # gone once its box is out of the frame


def test_coast_before_any_update_and_out_of_order() -> None:
    tr = Tracker(fps=25.0)
    assert len(tr.coast(0)) == 0
    tr.update(poses([box(100.0)]), 1)
    with pytest.raises(DataError, match="frame index 1 after 1"):
        tr.coast(1)


def test_coast_moves_the_last_keypoints_with_the_box() -> None:
    k = COCO17.num_keypoints
    kpts = np.concatenate([np.full((1, k, 2), 150.0), np.full((1, k, 1), 0.9)], axis=2)
    tr = Tracker(fps=25.0)
    for f in range(5):
        tr.update(poses([box(100.0 + 4 * f)], kpts=kpts + np.array([4.0 * f, 0.0, 0.0])), f)
    out = tr.coast(5)
    assert out.keypoints is not None and out.keypoints.shape == (1, k, 3)
    np.testing.assert_allclose(out.keypoints[0, :, 2], 0.9, rtol=1e-6)
    shift = out.keypoints[0, :, 0] - (150.0 + 16.0)  # from where they were seen in frame 4 (box at 116)
    assert 2.0 < shift.mean() < 6.0  # about one frame's motion
    np.testing.assert_allclose(shift, out.boxes[0, 0] - 116.0, atol=0.5)  # with the box


@pytest.mark.parametrize("buffer", [0.0, 3.0])
def test_a_newborn_is_found_again_after_coasting_by_its_buffered_box(buffer: float) -> None:
    """A person born on a detection frame has no speed yet; 5 frames later, at 6 px per frame, it moved a whole
    box width (30 px): plain IoU is 0, the tentative track dies and a new one starts at every detection, never
    confirmed; the buffered box of the coasted track (3 per coasted second: 0.3 per frame at 10 fps) still
    reaches it, and one id follows it."""
    tr = Tracker(TrackerConfig(coast_buffer_per_s=buffer), fps=10.0)
    tr.update(poses([box(500.0)]), 0)  # someone else, so that the walker is born tentative
    walker_ids = []
    for f in range(5, 31):
        people = [box(500.0), box(100.0 + 6 * f, w=30.0, h=90.0)]
        out = tr.update(poses(people), f) if f % 5 == 0 else tr.coast(f)
        walker_ids.append(out.ids[out.ids != 1].tolist())
    if buffer:
        assert walker_ids[5:] == [[2]] * 21  # confirmed at frame 10, then on every frame
    else:
        assert walker_ids == [[]] * 26 and max(tr.track_states()) == 7  # ids 2..7: one per detection frame


@pytest.mark.parametrize(("fps", "every"), [(7.0, 5), (10.0, 5), (20.0, 10), (25.0, 3)])
def test_the_coast_buffer_grows_per_coasted_second(monkeypatch: pytest.MonkeyPatch, fps: float, every: int) -> None:
    """The boxes of a track coasted since its last match grow by ``coast_buffer_per_s`` × coasted frames / fps:
    0.5 s of coasting (10 frames at 20 fps, 5 at 10 fps) buffers alike; at 7 fps the default 1.4 is the former
    0.2 per coasted frame. Nothing coasted, nothing buffered."""
    seen = []
    real = tracker_module.associate

    def spy(*args, **kwargs):
        seen.append(args[-1])
        return real(*args, **kwargs)

    monkeypatch.setattr(tracker_module, "associate", spy)
    tr = Tracker(fps=fps)
    _walk(tr, range(2), speed=1.0)
    for f in range(2, 2 + every - 1):
        tr.coast(f)
    tr.update(poses([box(100.0 + every + 1)]), every + 1)
    assert seen[0] is None  # frame 1: nothing coasted
    coasted = (every - 1) / fps  # seconds
    np.testing.assert_allclose(seen[1], [1.4 * coasted], rtol=1e-12)
    if fps == 7.0:
        np.testing.assert_allclose(seen[1], [0.2 * (every - 1)], rtol=1e-12)
