"""The track→pose feedback of detect-every-N with a real tracker: the pose step's boxes for a frame
without detection are the tracks predicted to *that* frame (its index and time), not to the frame
after the last tracked one (a live source drops frames; variable-frame-rate video stalls)."""

from __future__ import annotations

import copy

import numpy as np
from fake_stages import FakeDetector

from stip_rt.detect.interval import DetectEveryN
from stip_rt.stage_item import FrameItem
from stip_rt.stages import PoseStep, TrackStep
from stip_rt.track.config import TrackerConfig
from stip_rt.track.tracker import Tracker
from stip_rt.track_feedback import TrackFeedback
from stip_rt.types import Detections, Frame, Tracks

IMG = np.zeros((24, 32, 3), np.uint8)
FPS = 25.0


def _as_boxes(tracks: Tracks) -> Detections:
    """The guide boxes as they are (no keypoint extent, no clipping)."""
    return Detections(tracks.boxes.copy(), tracks.box_scores.copy())


def _walk(frames: list[int], times: list[float]) -> tuple[Tracker, PoseStep, TrackStep]:
    """Pose (box-only) and track steps after one person walking right 4 px per frame of ``FPS`` was
    detected in ``frames`` (at ``times``)."""
    tracker = Tracker(TrackerConfig(min_hits=1), fps=FPS)
    feedback = TrackFeedback()
    every = DetectEveryN(FakeDetector(), 5, to_boxes=_as_boxes)
    pose, track = PoseStep(None, every, feedback), TrackStep(tracker, feedback, delay=0, guide=True)
    for seq, (f, t) in enumerate(zip(frames, times, strict=True)):
        x = 100.0 + 4.0 * t * FPS
        dets = Detections(np.float32([[x, 100, x + 50, 220]]), np.ones(1, np.float32))
        item = FrameItem(seq, Frame(f, t, IMG), 0.0, dets=dets)
        assert pose([item])
        track(item)
    return tracker, pose, track


def _guided(pose: PoseStep, seq: int, frame: int, time: float) -> np.ndarray:
    item = FrameItem(seq, Frame(frame, time, IMG), 0.0)
    assert pose([item]) and item.guided and item.dets is not None
    return item.dets.boxes


def test_after_dropped_frames_the_guide_boxes_are_predicted_to_the_frame_that_came() -> None:
    frames = list(range(6))
    tracker, pose, _ = _walk(frames, [f / FPS for f in frames])
    expected = copy.deepcopy(tracker).coast(9, 9 / FPS).boxes  # frames 6-8 dropped by the live source
    got = _guided(pose, 6, 9, 9 / FPS)
    np.testing.assert_array_equal(got, expected)
    assert got[0, 0] - (100.0 + 4.0 * 5) > 3.0 * 4.0  # four frames of motion ahead, not one


def test_on_variable_frame_rate_video_the_guide_boxes_follow_the_time() -> None:
    frames = list(range(6))
    times = [f / FPS for f in frames]
    tracker, pose, _ = _walk(frames, times)
    stalled = times[-1] + 4 / FPS  # the next frame, 160 ms later (a phone's stall)
    expected = copy.deepcopy(tracker).coast(6, stalled).boxes
    got = _guided(pose, 6, 6, stalled)
    np.testing.assert_array_equal(got, expected)
    assert got[0, 0] - (100.0 + 4.0 * 5) > 3.0 * 4.0


def test_the_pose_step_reads_a_snapshot_the_track_step_does_not_change() -> None:
    """The track thread may go on (other frames, a reset) while the pose thread predicts the guide."""
    frames = list(range(4))
    tracker, pose, track = _walk(frames, [f / FPS for f in frames])
    published = track.feedback.tracks_for(3, Frame(4, 4 / FPS, IMG))
    tracker.coast(4, 4 / FPS)
    tracker.reset()
    assert published is not None and published.ids.tolist() == [1]
    np.testing.assert_array_equal(_guided(pose, 4, 4, 4 / FPS), published.boxes)


def test_at_a_constant_rate_without_drops_the_guide_boxes_are_the_next_frame_prediction() -> None:
    """Files: the frame the pose step gets is the next one, predicted one frame on, as before."""
    frames = list(range(6))
    tracker, pose, _ = _walk(frames, [f / FPS for f in frames])
    np.testing.assert_array_equal(_guided(pose, 6, 6, 6 / FPS), tracker.guide(6).boxes)
    np.testing.assert_array_equal(tracker.guide(6).boxes, tracker.guide_snapshot().guide(6, None).boxes)
