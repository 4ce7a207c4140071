"""DetectEveryN: which frames run the detector, and boxes from tracked poses in between."""

from __future__ import annotations

import numpy as np
import pytest

from stip_rt.detect.config import IntervalConfig
from stip_rt.detect.interval import DetectEveryN, boxes_from_tracks, every_n
from stip_rt.types import Detections, Tracks


class _Counting:
    name = "fake"

    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    def detect(self, frames, indices=None):
        self.calls.append(list(indices))
        return [Detections(np.array([[1, 2, 3, 4]], np.float32), np.array([0.9], np.float32)) for _ in frames]


def _tracks(keypoints: np.ndarray | None, boxes: np.ndarray) -> Tracks:
    n = len(boxes)
    return Tracks(
        ids=np.arange(1, n + 1),
        boxes=boxes.astype(np.float32),
        box_scores=np.full(n, 0.8, np.float32),
        keypoints=keypoints,
        scores=np.full(n, 0.7, np.float32),
        det_index=np.arange(n),
    )


FRAME = np.zeros((100, 200, 3), np.uint8)


def test_keypoint_extent_expanded_like_rtmlib_and_box_fallback():
    kp = np.zeros((2, 4, 3), np.float32)
    kp[0, :, :2] = [[10, 20], [30, 60], [20, 40], [500, 500]]
    kp[0, :, 2] = [0.9, 0.9, 0.9, 0.1]  # the far-away keypoint is not visible
    kp[1, :, 2] = [0.9, 0.1, 0.1, 0.1]  # one visible keypoint: use the tracked box
    boxes = np.array([[0, 0, 5, 5], [40, 40, 60, 90]], np.float32)
    d = boxes_from_tracks(_tracks(kp, boxes), IntervalConfig(), width=200, height=100)
    # extent (10, 20)-(30, 60): centre (20, 40), half-size (10, 20) × 1.25
    np.testing.assert_allclose(d.boxes[0], [7.5, 15, 32.5, 65])
    np.testing.assert_allclose(d.boxes[1], [40, 40, 60, 90])
    np.testing.assert_allclose(d.scores, [0.8, 0.8])


def test_boxes_are_clipped_and_box_only_tracks_keep_their_boxes():
    d = boxes_from_tracks(_tracks(None, np.array([[-10, -5, 250, 120]])), IntervalConfig(), 200, 100)
    np.testing.assert_allclose(d.boxes, [[0, 0, 200, 100]])


def test_detects_every_n_frames_and_when_nothing_is_tracked():
    inner = _Counting()
    det = DetectEveryN(inner, every=3)
    assert det.name == "fake/every3"
    prev = _tracks(None, np.array([[50, 50, 80, 90]]))
    out = [det.detect([FRAME], [i], prev if i else None)[0] for i in range(7)]
    assert inner.calls == [[0], [3], [6]]
    np.testing.assert_allclose(out[1].boxes, [[50, 50, 80, 90]])
    np.testing.assert_allclose(out[3].boxes, [[1, 2, 3, 4]])
    # nobody tracked: detect at once, whatever the interval
    det.detect([FRAME], [7], Tracks.empty())
    assert inner.calls[-1] == [7]


def test_dropped_frames_still_detect_within_the_interval():
    inner = _Counting()
    det = DetectEveryN(inner, config=IntervalConfig(every=5))
    prev = _tracks(None, np.array([[0, 0, 10, 10]]))
    for i in (0, 3, 6, 9, 12):  # a live source dropping frames
        det.detect([FRAME], [i], prev)
    assert inner.calls == [[0], [6], [12]]


def test_batches_run_only_the_due_frames_together():
    inner = _Counting()
    det = DetectEveryN(inner, every=2)
    prev = _tracks(None, np.array([[0, 0, 10, 10]]))
    out = det.detect([FRAME] * 5, [0, 1, 2, 3, 4], prev)
    assert inner.calls == [[0, 2, 4]] and len(out) == 5
    np.testing.assert_allclose(out[1].boxes, [[0, 0, 10, 10]])
    det.reset()
    det.detect([FRAME], None, prev)
    assert inner.calls[-1] == [0]


def test_every_1_is_plain_detection_and_config_is_checked():
    inner = _Counting()
    det = DetectEveryN(inner, every=1)
    assert det.name == "fake"
    det.detect([FRAME] * 3, None, _tracks(None, np.zeros((1, 4))))
    assert inner.calls == [[0, 1, 2]]
    with pytest.raises(ValueError, match="'every'"):
        IntervalConfig(every=0)


# ---------------------------------------------------------------- the two steps the pipeline calls


def test_schedule_depends_on_indices_only():
    det = DetectEveryN(_Counting(), every=3)
    assert [det.is_detection_frame(i) for i in range(8)] == [True, False, False, True, False, False, True, False]
    assert det.last_detected == 6
    # live: frames 7-8 dropped, 9 is 3 past 6
    assert det.is_detection_frame(9) and not det.is_detection_frame(10)


def test_boxes_for_uses_previous_tracks_and_falls_back_to_the_detector():
    inner = _Counting()
    det = DetectEveryN(inner, every=4)
    assert det.is_detection_frame(0)
    prev = _tracks(None, np.array([[50, 50, 80, 90]]))
    assert not det.is_detection_frame(1)
    boxes, ran = det.boxes_for(FRAME, 1, prev)
    assert not ran and inner.calls == []
    np.testing.assert_allclose(boxes.boxes, [[50, 50, 80, 90]])
    # nobody tracked: the detector runs on this frame ...
    assert not det.is_detection_frame(2)
    boxes, ran = det.boxes_for(FRAME, 2, Tracks.empty())
    assert ran and inner.calls == [[2]]
    np.testing.assert_allclose(boxes.boxes, [[1, 2, 3, 4]])
    # ... and the schedule stays: frame 4 is the next detection frame, whatever the fallback did
    assert det.last_detected == 0
    assert not det.is_detection_frame(3) and det.is_detection_frame(4)


def test_custom_to_boxes_replaces_the_keypoint_extent():
    seen = []

    def to_boxes(tracks):
        seen.append(len(tracks))
        return Detections(np.array([[9, 9, 19, 19]], np.float32), np.array([0.5], np.float32))

    det = DetectEveryN(_Counting(), every=2, to_boxes=to_boxes)
    det.is_detection_frame(0)
    boxes, _ = det.boxes_for(FRAME, 1, _tracks(None, np.array([[0, 0, 5, 5]])))
    assert seen == [1]
    np.testing.assert_allclose(boxes.boxes, [[9, 9, 19, 19]])


def test_every_n_wraps_once_and_reads_the_interval_config():
    inner = _Counting()
    wrapped = every_n(inner)
    assert wrapped.every == 1 and not wrapped.needs_tracks and wrapped.name == "fake"
    assert all(wrapped.is_detection_frame(i) for i in range(5))
    five = every_n(inner, IntervalConfig(every=5, expansion=1.5))
    assert five.every == 5 and five.needs_tracks and five.config.expansion == 1.5
    assert every_n(five) is five


def test_detector_calls_from_two_threads_are_serialised():
    import threading
    import time

    class _Exclusive(_Counting):
        busy = False

        def detect(self, frames, indices=None):
            assert not self.busy, "two detector calls overlapped"
            self.busy = True
            time.sleep(0.002)
            self.busy = False
            return super().detect(frames, indices)

    det = DetectEveryN(_Exclusive(), every=2)
    errors: list[BaseException] = []

    def hammer(offset: int) -> None:
        try:
            for i in range(20):
                det.run_detector([FRAME], [offset + i])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=hammer, args=(k * 100,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(det.detector.calls) == 40


def test_factory_builds_the_plain_detector_and_every_n_wraps_it(data_dir):
    from stip_rt.detect.factory import create_detector

    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    plain = create_detector(gt)
    assert not isinstance(plain, DetectEveryN)  # detect-every-N has one home: every_n / DetectEveryN
    two = every_n(plain, IntervalConfig(every=2, min_visible=4))
    assert isinstance(two, DetectEveryN) and two.every == 2 and two.config.min_visible == 4
    assert two.detector is plain and two.name == f"{plain.name}/every2"
    one = every_n(plain, IntervalConfig(every=1))
    assert one.every == 1 and not one.needs_tracks and one.name == plain.name
