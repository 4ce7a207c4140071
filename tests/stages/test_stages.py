"""The work of each pipeline stage with fakes and no pipeline threads: detect-every-N, pose batches,
the track→pose feedback, sinks, reading from the source's buffer."""

from __future__ import annotations

import queue
import threading
from collections import deque

import numpy as np
import pytest
from fake_stages import (
    BatchingEstimator,
    FakeDetector,
    FakeEstimator,
    FakeSource,
    FakeTracker,
    ListSink,
    shifted_boxes_from_tracks,
)

from stip_rt.detect.interval import DetectEveryN
from stip_rt.errors import SourceError
from stip_rt.io.threaded_source import frame_feed
from stip_rt.pipeline_stats import StatsRecorder
from stip_rt.pose_batching import FrameBatcher
from stip_rt.sink_step import SinkStep
from stip_rt.stage_item import FrameItem
from stip_rt.stages import DetectStep, PoseStep, ReadStep, TrackStep, estimate_frames
from stip_rt.track.tracker import Tracker
from stip_rt.track_feedback import TrackFeedback
from stip_rt.types import Detections, Frame, Poses, Tracks

IMG = np.zeros((24, 32, 3), np.uint8)


def _run(n: int, every: int, limit: int, estimator, detector=None):
    """The stages in pipeline order on one thread, every frame already waiting for the pose stage."""
    detector = detector or FakeDetector()
    tracker = FakeTracker()
    rec = StatsRecorder()
    rec.start()
    det = DetectEveryN(detector, every, to_boxes=shifted_boxes_from_tracks)
    feedback = TrackFeedback()
    read = ReadStep(frame_feed(FakeSource(n)), rec)
    detect, pose = DetectStep(det, rec), PoseStep(estimator, det, feedback, rec)
    track = TrackStep(tracker, feedback, rec)
    sink = SinkStep([ListSink()], needs_image=False, recorder=rec)
    waiting: deque[FrameItem] = deque()
    while (item := read(timeout=10)) is not None:
        detect(item)
        waiting.append(item)
    batcher = FrameBatcher(limit, lambda it: it.needs_tracks)
    results = []
    while waiting or batcher.pending:
        if not batcher.pending:
            batcher.add(waiting.popleft())
        batcher.fill(lambda: waiting.popleft() if waiting else None)
        batch = batcher.take()
        assert pose(batch)
        for it in batch:  # released to the tracker one by one, in order
            track(it)
            results.append(sink(it))
    return results, tracker, detector, rec.snapshot()


def _reference(n: int, every: int) -> list[np.ndarray]:
    """What the tracker must see: DetectEveryN.detect frame by frame with the previous tracks."""
    det = DetectEveryN(FakeDetector(), every, to_boxes=shifted_boxes_from_tracks)
    est, tracker = FakeEstimator(), FakeTracker()
    previous = None
    for i in range(n):
        img = np.full((24, 32, 3), i, np.uint8)
        (d,) = det.detect([img], [i], previous)
        previous = tracker.update(est(img, d), i)
    return tracker.inputs


@pytest.mark.parametrize("every", [1, 3])
@pytest.mark.parametrize("limit", [1, 4])
def test_batching_does_not_change_what_the_tracker_sees(every, limit):
    est = BatchingEstimator()
    results, tracker, _, _ = _run(10, every, limit, est)
    assert tracker.frames == list(range(10)) and [r.index for r in results] == list(range(10))
    want = _reference(10, every)
    assert len(tracker.inputs) == len(want)
    for got, ref in zip(tracker.inputs, want):
        np.testing.assert_array_equal(got, ref)


def test_batches_reach_the_estimator_as_the_policy_cuts_them():
    est = BatchingEstimator()
    _run(10, 1, 4, est)
    assert est.calls == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    est = BatchingEstimator()
    _, _, detector, stats = _run(10, 3, 4, est)
    assert est.calls == [[0], [1], [2, 3], [4], [5, 6], [7], [8, 9]]
    assert detector.seen == [0, 3, 6, 9] and stats.detector_runs == 4
    assert set(stats.stage_ms) == {"decode", "detect", "pose", "track", "sink"}


def test_estimator_without_estimate_frames_runs_frame_by_frame():
    est = FakeEstimator()
    _run(6, 1, 4, est)
    assert est.calls == [[i] for i in range(6)]


def test_nobody_tracked_runs_the_detector_in_the_pose_step_without_moving_the_schedule():
    detector = FakeDetector(empty_until=2)  # frames 0-1 have nobody
    _, tracker, detector, stats = _run(8, 4, 4, BatchingEstimator(), detector)
    # 0: scheduled (empty); 1: fallback (nobody tracked, empty); 2: fallback (finds people); 3: tracks;
    # 4: scheduled again -- the fallbacks did not move it
    assert sorted(detector.seen) == [0, 1, 2, 4]  # the detect stage ran ahead: 0, 4, then fallbacks 1, 2
    assert stats.detector_runs == 4
    assert [len(b) for b in tracker.inputs] == [0, 0, 2, 2, 2, 2, 2, 2]


def test_box_only_tracking_takes_the_boxes_as_poses():
    (poses,) = estimate_frames(None, [IMG], [Detections(np.ones((1, 4), np.float32), np.ones(1, np.float32))])
    assert poses.keypoints is None and len(poses) == 1


def test_estimate_frames_checks_the_result_count():
    class Short:
        def estimate_frames(self, frames, detections):
            return []

    with pytest.raises(ValueError, match="0 results for 1 frames"):
        estimate_frames(Short(), [IMG], [Detections.empty()])


def _item(seq: int, dets: Detections | None = None) -> FrameItem:
    return FrameItem(seq, Frame(seq, seq / 25, IMG), 0.0, dets=dets)


def test_pose_step_rejects_a_tracks_frame_inside_a_batch():
    det = DetectEveryN(FakeDetector(), 2, to_boxes=shifted_boxes_from_tracks)
    pose = PoseStep(FakeEstimator(), det, TrackFeedback())
    with pytest.raises(ValueError, match="must start its pose batch"):
        pose([_item(0, Detections.empty()), _item(1)])


def test_pose_step_waits_for_the_track_thread_and_can_be_cancelled():
    det = DetectEveryN(FakeDetector(), 5, to_boxes=shifted_boxes_from_tracks)
    feedback = TrackFeedback()
    pose = PoseStep(FakeEstimator(), det, feedback)
    assert pose([_item(0, FakeDetector().detect([IMG], [0])[0])])
    tracks = Tracks(np.array([7]), np.array([[2, 2, 8, 8]], np.float32), np.ones(1, np.float32), None,
                    np.ones(1, np.float32), np.zeros(1, np.int64))  # fmt: skip
    later = threading.Timer(0.1, feedback.publish, args=(0, tracks))
    later.start()
    item = _item(1)
    assert pose([item])  # blocks until frame 0's tracks are published
    later.join()
    assert item.dets is not None
    np.testing.assert_allclose(item.dets.boxes, [[3, 3, 9, 9]])
    cancel = threading.Event()
    cancel.set()
    stuck = _item(2)
    assert not pose([stuck], cancel)  # frame 1 is never tracked: give up when told to stop
    assert stuck.poses is None


def test_sink_step_attaches_the_image_only_when_asked():
    tracks = Tracks.empty()
    for needs in (False, True):
        sink = ListSink()
        item = _item(3, Detections.empty())
        item.poses, item.tracks = Poses.empty(), tracks
        result = SinkStep([sink], needs)(item)
        assert sink.results == [result] and result.index == 3
        assert (result.image is not None) == needs and "latency" in result.timings and "sink" in result.timings


def test_read_step_numbers_the_frames_and_raises_the_source_error_after_them():
    rec = StatsRecorder()
    rec.start()
    source = FakeSource(5, fail_at=3)
    read = ReadStep(frame_feed(source), rec)
    got = [read(timeout=10) for _ in range(3)]
    assert [(it.seq, it.frame.index) for it in got] == [(0, 0), (1, 1), (2, 2)]
    assert all("decode" in it.timings and it.t_capture > 0 for it in got)
    with pytest.raises(SourceError, match="frame 3"):
        read(timeout=10)
    assert read.last_index == 2
    read.feed.close()
    assert source.closed == 1


def test_read_step_times_out_when_no_frame_is_ready():
    read = ReadStep(frame_feed(FakeSource(2, delay=0.5)))
    with pytest.raises(queue.Empty):
        read(timeout=0.01)
    assert read(timeout=10).seq == 0
    read.feed.close()


@pytest.mark.parametrize("coast_every", [0, 5])
def test_track_step_coasts_through_frames_whose_boxes_came_from_the_tracks(coast_every: int) -> None:
    """Box-only detect every N (``coast_every``): a guided frame is coasted (its guide boxes are no
    measurement) and frames are held ``backfill_frames × N``; otherwise the guide boxes are tracked."""
    tracker = Tracker(fps=25.0)
    step = TrackStep(tracker, TrackFeedback(), guide=True, coast_every=coast_every)
    assert step.delay == tracker.backfill_frames * max(coast_every, 1)
    first = _item(0)
    first.poses = Poses(np.array([[10.0, 10.0, 40.0, 90.0]], np.float32), np.ones(1, np.float32), None,
                        np.ones(1, np.float32))  # fmt: skip
    step(first)
    off = _item(1)
    off.guided = True
    off.poses = Poses(np.array([[13.0, 10.0, 43.0, 90.0]], np.float32), np.ones(1, np.float32), None,
                      np.ones(1, np.float32))  # fmt: skip
    step(off)
    done = step.flush()
    assert [it.frame.index for it in done] == [0, 1]
    tracks = done[1].tracks
    assert tracks is not None and tracks.ids.tolist() == [1]
    if coast_every:  # predicted (no speed yet: where it was), not moved onto the guide box
        assert tracks.det_index.tolist() == [-1]
        np.testing.assert_allclose(tracks.boxes[0], [10.0, 10.0, 40.0, 90.0], atol=1e-3)
    else:
        assert tracks.det_index.tolist() == [0] and tracks.boxes[0, 0] > 10.5
