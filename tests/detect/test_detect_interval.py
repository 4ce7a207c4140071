"""DetectEveryN: which frames run the detector, and boxes from tracked poses in between."""

from __future__ import annotations

import numpy as np
import pytest

from stip_rt.detect.config import IntervalConfig
from stip_rt.detect.interval import DetectEveryN, boxes_from_tracks
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
