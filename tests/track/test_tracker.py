"""Tracker lifecycle, two-stage matching, OKS use, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from track_inputs import box, poses

from stip_rt.errors import ConfigError, DataError
from stip_rt.schemas import COCO17
from stip_rt.track.config import OneEuroConfig, TrackerConfig
from stip_rt.track.tracker import Tracker, TrackState
from stip_rt.types import Poses

NO_SMOOTH = OneEuroConfig(enabled=False)


def test_birth_confirmation_and_ids_from_one():
    tr = Tracker(TrackerConfig(min_hits=3, smoothing=NO_SMOOTH, activate_first_frame=False), fps=10)
    assert len(tr.update(poses([box(0), box(300)]), 0)) == 0  # tentative: not output
    assert tr.backfill() == {}
    assert len(tr.update(poses([box(2), box(302)]), 1)) == 0
    assert tr.backfill() == {}
    out = tr.update(poses([box(4), box(304)]), 2)
    assert out.ids.tolist() == [1, 2]
    assert out.det_index.tolist() == [0, 1]
    assert tr.track_states() == {1: TrackState.CONFIRMED, 2: TrackState.CONFIRMED}
    late = tr.backfill()  # the two tentative frames, handed out at confirmation
    assert sorted(late) == [0, 1]
    assert all(late[f].ids.tolist() == [1, 2] and late[f].det_index.tolist() == [0, 1] for f in (0, 1))
    np.testing.assert_allclose(late[0].boxes, [box(0), box(300)], atol=1e-3)


def test_first_frame_people_are_output_at_once():
    tr = Tracker(TrackerConfig(min_hits=3), fps=10)
    assert tr.update(poses([box(0), box(300)]), 0).ids.tolist() == [1, 2]  # ByteTrack: frame 1 activates
    assert tr.update(poses([box(2), box(302), box(600)]), 1).ids.tolist() == [1, 2]  # later: tentative


def test_det_index_follows_input_order():
    tr = Tracker(TrackerConfig(min_hits=1), fps=10)
    tr.update(poses([box(0), box(300)]), 0)
    out = tr.update(poses([box(302), box(2)]), 1)  # people given in the other order
    assert out.ids.tolist() == [1, 2]
    assert out.det_index.tolist() == [1, 0]


def test_tentative_removed_at_first_miss():
    tr = Tracker(TrackerConfig(min_hits=3, tentative_max_misses=0, activate_first_frame=False), fps=10)
    tr.update(poses([box(0)]), 0)
    tr.update(poses([]), 1)
    assert tr.track_states() == {}
    out = tr.update(poses([box(0)]), 2)
    assert tr.track_states() == {2: TrackState.TENTATIVE}  # a new id, never 1 again
    assert len(out) == 0


def test_loss_refind_and_death_scale_with_fps():
    cfg = TrackerConfig(min_hits=1, max_age_s=0.5)
    tr = Tracker(cfg, fps=10)  # max_age = 5 frames
    assert tr.max_age == 5
    for f in range(3):
        tr.update(poses([box(10.0 * f)]), f)
    for f in range(3, 6):  # missed for 3 frames: lost, still predicting
        assert len(tr.update(poses([]), f)) == 0
        assert tr.track_states() == {1: TrackState.LOST}
    out = tr.update(poses([box(60.0)]), 6)  # re-found where the motion model predicts it
    assert out.ids.tolist() == [1]
    assert tr.track_states() == {1: TrackState.CONFIRMED}
    for f in range(7, 13):
        tr.update(poses([]), f)
    assert tr.track_states() == {}  # removed after max_age frames without a match
    out = tr.update(poses([box(120.0)]), 13)
    assert out.ids.tolist() == [2]


def test_max_age_in_frames_depends_on_fps():
    cfg = TrackerConfig(max_age_s=1.5)
    assert Tracker(cfg, fps=30).max_age == 45
    assert Tracker(cfg, fps=7).max_age == 11


def test_two_stage_low_score_continues_but_never_starts():
    tr = Tracker(TrackerConfig(min_hits=1), fps=10)
    tr.update(poses([box(0)], [0.9]), 0)
    out = tr.update(poses([box(3)], [0.3]), 1)  # low score: second stage keeps the track alive
    assert out.ids.tolist() == [1]
    tr2 = Tracker(TrackerConfig(min_hits=1), fps=10)
    assert len(tr2.update(poses([box(0)], [0.3]), 0)) == 0  # a low score never starts a track
    assert tr2.track_states() == {}


def test_low_score_not_used_when_high_score_matches():
    tr = Tracker(TrackerConfig(min_hits=1), fps=10)
    tr.update(poses([box(0)]), 0)
    out = tr.update(poses([box(20, 100), box(2, 100)], [0.3, 0.9]), 1)
    assert out.ids.tolist() == [1] and out.det_index.tolist() == [1]


def test_first_stage_prefers_high_score_over_closer_low_score():
    tr = Tracker(TrackerConfig(min_hits=1, min_similarity_low=0.9), fps=10)
    tr.update(poses([box(0)]), 0)
    # the low-score box overlaps better, but high-score people are matched first
    out = tr.update(poses([box(0), box(12)], [0.3, 0.9]), 1)
    assert out.det_index.tolist() == [1]


def _skeleton(x0: float, y0: float, layout: np.ndarray) -> np.ndarray:
    kp = np.zeros((17, 3))
    kp[:, 0] = x0 + layout[:, 0] * 50
    kp[:, 1] = y0 + layout[:, 1] * 120
    kp[:, 2] = 0.9
    return kp


def test_oks_breaks_a_box_tie():
    rng = np.random.default_rng(0)
    la, lb = rng.uniform(0, 1, (17, 2)), rng.uniform(0, 1, (17, 2))
    cfg = TrackerConfig(min_hits=1, smoothing=NO_SMOOTH)
    for with_kpts, expected in ((True, [1, 0]), (False, None)):
        tr = Tracker(cfg, fps=10, schema=COCO17)
        k0 = np.stack([_skeleton(0, 100, la), _skeleton(30, 100, lb)]) if with_kpts else None
        tr.update(poses([box(0), box(30)], kpts=k0), 0)
        # both people now stand on the same box; only the skeletons tell them apart
        k1 = np.stack([_skeleton(15, 100, lb), _skeleton(15, 100, la)]) if with_kpts else None
        out = tr.update(poses([box(15), box(15)], kpts=k1), 1)
        if expected is not None:
            assert out.ids.tolist() == [1, 2]
            assert out.det_index.tolist() == expected  # id 1 (layout a) took the person with layout a


def test_keypoints_passed_through_and_none_for_box_only():
    tr = Tracker(TrackerConfig(min_hits=1, smoothing=NO_SMOOTH), fps=10)
    kp = _skeleton(0, 100, np.full((17, 2), 0.5))[None]
    out = tr.update(poses([box(0)], kpts=kp), 0)
    np.testing.assert_allclose(out.keypoints, kp)
    out = tr.update(poses([box(1)]), 1)
    assert out.keypoints is None and out.ids.tolist() == [1]


def test_smoothing_applied_when_enabled():
    kp = _skeleton(0, 100, np.full((17, 2), 0.5))[None]
    tr = Tracker(TrackerConfig(min_hits=1), fps=10)
    tr.update(poses([box(0)], kpts=kp), 0)
    kp2 = kp.copy()
    kp2[..., 0] += 10
    out = tr.update(poses([box(0)], kpts=kp2), 1)
    assert np.all(out.keypoints[0, :, 0] > kp[0, :, 0]) and np.all(out.keypoints[0, :, 0] < kp2[0, :, 0])


def test_empty_frames_and_kalman_output_box():
    tr = Tracker(TrackerConfig(min_hits=1), fps=10)
    assert len(tr.update(Poses.empty(), 0)) == 0
    out = tr.update(poses([box(0)]), 1)
    np.testing.assert_allclose(out.boxes[0], box(0), atol=1e-3)  # first box: the filter starts on it


def test_non_monotonic_frames_raise():
    tr = Tracker()
    tr.update(poses([box(0)]), 5)
    for bad in (5, 4):
        with pytest.raises(DataError, match=f"frame index {bad} after 5"):
            tr.update(poses([box(0)]), bad)


def test_frame_gap_is_a_longer_prediction():
    tr = Tracker(TrackerConfig(min_hits=1), fps=10)
    for f in range(5):
        tr.update(poses([box(10.0 * f)]), f)
    out = tr.update(poses([box(80.0)]), 8)  # frames 5-7 dropped by a live source
    assert out.ids.tolist() == [1]


def test_bad_boxes_are_skipped_not_tracked(caplog):
    tr = Tracker(TrackerConfig(min_hits=1), fps=10)
    bad = [[np.nan, 0, 10, 10], [50, 50, 40, 60], box(200)]
    out = tr.update(poses(bad), 0)
    assert out.det_index.tolist() == [2]
    assert "skipped 2 people" in caplog.text


def test_bad_boxes_warn_once_not_every_frame(caplog):
    """A detections file with a bad box in every frame: one warning, not one per frame of a long run."""
    tr = Tracker(TrackerConfig(min_hits=1), fps=10)
    with caplog.at_level("DEBUG", logger="stip_rt.track.tracker"):
        for f in range(50):
            tr.update(poses([[50, 50, 50, 90], box(200 + f)]), f)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "frame 0: skipped 1 people" in warnings[0].getMessage(), warnings
    assert "later ones are logged at debug level" in warnings[0].getMessage()
    assert sum("skipped 1 people" in r.getMessage() for r in caplog.records) == 50  # still at debug level
    assert tr.skipped == 50


def test_wrong_joint_count_raises():
    tr = Tracker(schema=COCO17)
    with pytest.raises(DataError, match="14 joints, schema 'coco17' has 17"):
        tr.update(poses([box(0)], kpts=np.zeros((1, 14, 3))), 0)
    with pytest.raises(DataError, match="no keypoint schema has 5 joints"):
        Tracker().update(poses([box(0)], kpts=np.zeros((1, 5, 3))), 0)
    with pytest.raises(DataError, match="keypoints must be"):
        Tracker().update(poses([box(0)], kpts=np.zeros((2, 17, 3))), 0)
    with pytest.raises(DataError, match=r"frame 0: boxes must be \(N, 4\)"):
        Tracker().update(Poses(np.zeros((2, 5)), np.ones(2), None, np.ones(2)), 0)
    with pytest.raises(DataError, match="2 boxes but 1 scores"):
        Tracker().update(Poses(np.zeros((2, 4)), np.ones(1), None, np.ones(1)), 0)


def test_bad_fps():
    with pytest.raises(ConfigError, match="fps"):
        Tracker(fps=0)


def test_two_trackers_do_not_share_ids():
    a, b = Tracker(TrackerConfig(min_hits=1)), Tracker(TrackerConfig(min_hits=1))
    assert a.update(poses([box(0)]), 0).ids.tolist() == [1]
    assert b.update(poses([box(0)]), 0).ids.tolist() == [1]


def test_crossing_people_keep_ids():
    tr = Tracker(TrackerConfig(min_hits=1), fps=25)
    ids = []
    for f in range(60):  # two people walk past each other at different heights
        out = tr.update(poses([box(4.0 * f, 100), box(240 - 4.0 * f, 180)]), f)
        ids.append(out.ids[np.argsort(out.det_index)].tolist())
    assert all(i == [1, 2] for i in ids)


def test_giou_and_detection_box_output():
    cfg = TrackerConfig(min_hits=1, box_similarity="giou", output_box="detection")
    tr = Tracker(cfg, fps=10)
    tr.update(poses([box(0), box(300)]), 0)
    b = [box(3), box(303)]
    out = tr.update(poses(b), 1)
    assert out.ids.tolist() == [1, 2]
    np.testing.assert_allclose(out.boxes, b)


def test_reused_input_buffers_do_not_change_track_state():
    tr = Tracker(TrackerConfig(min_hits=1, smoothing=NO_SMOOTH), fps=10, schema=COCO17)
    b = np.array([box(0)], np.float64)
    k = _skeleton(0, 100, np.full((17, 2), 0.5))[None]
    tr.update(Poses(b, np.ones(1), k, np.ones(1)), 0)
    b[:] = 1e4  # the caller reuses its buffers for the next frame
    k[:] = 1e4
    out = tr.update(poses([box(2)], kpts=_skeleton(2, 100, np.full((17, 2), 0.5))[None]), 1)
    assert out.ids.tolist() == [1]


def test_recently_seen_track_wins_over_long_lost_one():
    """A track lost for long whose prediction drifted onto a person does not take that person from
    the person's own track, missed for one frame only (recency weighting, docs/tracking.md)."""
    tr = Tracker(TrackerConfig(smoothing=NO_SMOOTH), fps=25)
    for f in range(10):  # two people walking side by side at 2 px/frame
        out = tr.update(poses([box(100 + 2 * f), box(130 + 2 * f)]), f)
    assert out.ids.tolist() == [1, 2]
    for f in range(10, 30):  # person 2 is gone (occluded for good): its track keeps predicting at x = 130 + 2f
        assert tr.update(poses([box(100 + 2 * f)]), f).ids.tolist() == [1]
    tr.update(poses([]), 30)  # person 1 missed once
    # Person 1 seen 16 px ahead: its box overlaps track 2's (lost 21 frames) prediction more than its own
    # track's (IoU 0.56 vs 0.52), but its own track was seen a moment ago.
    out = tr.update(poses([box(100 + 2 * 31 + 16)]), 31)
    assert out.ids.tolist() == [1]
    assert tr.track_states()[2] == TrackState.LOST


def test_guide_holds_tentative_tracks_at_their_predicted_boxes() -> None:
    """``guide`` (detect every N): every track matched in the last frame, tentative ones too, its box
    predicted to the asked frame, its last keypoints and box score; nothing before any frame."""
    t = Tracker(TrackerConfig(min_hits=3), fps=25.0)
    assert len(t.guide(0)) == 0
    for f in range(4):  # id 1 walks right 4 px per frame
        t.update(poses([box(100.0 + 4 * f)], scores=[0.8]), f)
    t.update(poses([box(100.0 + 4 * 4), box(400.0)], scores=[0.8, 0.95]), 4)  # id 2 is born: tentative
    assert t.track_states()[2] == TrackState.TENTATIVE
    g = t.guide(6)
    assert g.ids.tolist() == [1, 2] and g.keypoints is None and g.det_index.tolist() == [-1, -1]
    np.testing.assert_allclose(g.box_scores, [0.8, 0.95], rtol=1e-6)
    assert 116.0 + 4.0 < g.boxes[0, 0] < 124.0 + 1.0  # ahead of its last box (116), towards 124 at the learnt speed
    np.testing.assert_allclose(g.boxes[1], box(400.0), atol=1e-3)  # one sighting: no speed yet
    t.update(poses([box(100.0 + 4 * 5)], scores=[0.8]), 5)  # id 2 not seen: not in the guide
    assert t.guide(6).ids.tolist() == [1]


def test_guide_keeps_the_last_keypoints() -> None:
    k = COCO17.num_keypoints
    kpts = np.concatenate([np.full((1, k, 2), 150.0), np.full((1, k, 1), 0.9)], axis=2)
    t = Tracker(fps=25.0)
    t.update(poses([box(100.0)], kpts=kpts), 0)
    g = t.guide(1)
    assert g.keypoints is not None and g.keypoints.shape == (1, k, 3)
    np.testing.assert_allclose(g.keypoints, kpts)


def test_a_rejected_frame_changes_nothing_and_can_be_given_again() -> None:
    """A frame refused for its input (wrong shapes, counts, index type) leaves the tracker as it was."""
    t = Tracker(fps=25.0)
    t.update(poses([box(10.0)]), 0)
    t.update(poses([box(12.0)]), 1)
    bad = Poses(np.float32(box(14.0)), np.float32([0.9]), None, np.float32([0.9]))  # (4,), not (1, 4)
    with pytest.raises(DataError, match=r"boxes must be \(N, 4\)"):
        t.update(bad, 2)
    two = np.float32([box(14.0), box(300.0)])
    with pytest.raises(DataError, match="2 boxes but 1 box scores"):
        t.update(Poses(two, np.float32([0.9]), None, np.float32([0.9, 0.9])), 2)
    with pytest.raises(DataError, match=r"frame index 2\.5 is not an integer"):
        t.update(poses([box(14.0)]), 2.5)  # type: ignore[arg-type]
    out = t.update(poses([box(14.0)]), 2)  # the same frame again: accepted, one step after frame 1
    assert out.ids.tolist() == [1]


@pytest.mark.parametrize("kw", [{"fps": "30"}, {"fps": float("inf")}, {"fps": 0}, {"frame_size": (640,)},
                                {"frame_size": ("640", "480")}, {"frame_size": (0, 0)}])  # fmt: skip
def test_bad_tracker_arguments_are_one_config_error(kw: dict) -> None:
    with pytest.raises(ConfigError, match=r"tracker: (fps|frame_size) must be"):
        Tracker(**kw)
