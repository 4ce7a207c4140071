"""Small fake stages for testing the pipeline's threading machinery and its steps without models
(tests/pipeline and tests/stages)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from stip_rt.errors import SourceError
from stip_rt.pipeline_config import PipelineParts
from stip_rt.types import Detections, Frame, FrameResult, Poses, RunInfo, SourceInfo, Tracks


class FakeSource:
    """``n`` frames (pixel value = index mod 256); optionally fails at frame ``fail_at`` or sleeps per frame."""

    def __init__(
        self, n: int = 20, *, fail_at: int | None = None, delay: float = 0.0, live: bool = False, uri: str = "fake.mp4"
    ) -> None:
        self.info = SourceInfo(uri, 32, 24, 25.0, None if live else n, live)
        self.dropped = 0
        self.n, self.fail_at, self.delay = n, fail_at, delay
        self.closed = 0

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            if i == self.fail_at:
                raise SourceError(f"{self.info.uri}: frame {i}: damaged data")
            if self.delay:
                time.sleep(self.delay)
            yield Frame(i, i / 25.0, np.full((24, 32, 3), i % 256, np.uint8))

    def close(self) -> None:
        self.closed += 1


class FakeDetector:
    """Two boxes per frame (the first moves with the frame index); records the frames it ran on and its calls."""

    name = "fake-detector"

    def __init__(self, *, fail_at: int | None = None, delay: float = 0.0, empty_until: int = 0) -> None:
        self.seen: list[int] = []
        self.calls = 0
        self.fail_at, self.delay, self.empty_until = fail_at, delay, empty_until

    def detect(self, frames: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> list[Detections]:
        assert indices is not None
        self.calls += 1
        out = []
        for i in indices:
            if i == self.fail_at:
                raise RuntimeError("CUDA out of memory")
            if self.delay:
                time.sleep(self.delay)
            self.seen.append(i)
            if i < self.empty_until:
                out.append(Detections.empty())
                continue
            boxes = np.array([[1 + i, 2, 10 + i, 20], [15, 2, 30, 22]], np.float32)
            out.append(Detections(boxes, np.array([0.9, 0.8], np.float32)))
        return out


class FakeEstimator:
    """Keypoints at the box corners, one frame per call; records the frame (pixel value) of each call;
    optional delay to make it the slow stage."""

    def __init__(self, delay: float = 0.0, k: int = 4) -> None:
        self.delay, self.k = delay, k
        self.calls: list[list[int]] = []

    def __call__(self, image: np.ndarray, detections: Detections) -> Poses:
        self.calls.append([int(image[0, 0, 0])])
        return self._one(image, detections)

    def _one(self, image: np.ndarray, detections: Detections) -> Poses:
        if self.delay:
            time.sleep(self.delay)
        n = len(detections)
        kps = np.zeros((n, self.k, 3), np.float32)
        kps[:, :, 0] = detections.boxes[:, :1]
        kps[:, :, 1] = detections.boxes[:, 1:2]
        kps[:, :, 2] = 0.9
        return Poses(detections.boxes, detections.scores, kps, detections.scores.copy())


class BatchingEstimator(FakeEstimator):
    """Has ``estimate_frames``: all frames of a call in one (fake) network batch."""

    def estimate_frames(self, frames: Sequence[np.ndarray], detections: Sequence[Detections]) -> list[Poses]:
        self.calls.append([int(f[0, 0, 0]) for f in frames])
        return [self._one(f, d) for f, d in zip(frames, detections, strict=True)]


class FakeTracker:
    """Id = row + 1 (stable with the fake detector); checks frame order; records the boxes it got;
    optional delay per frame."""

    def __init__(self, *, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.frames: list[int] = []
        self.inputs: list[np.ndarray] = []
        self.fail_at, self.delay = fail_at, delay

    def update(self, poses: Poses, frame_index: int) -> Tracks:
        if self.delay:
            time.sleep(self.delay)
        if frame_index == self.fail_at:
            raise ValueError("matrix contains NaN")
        assert not self.frames or frame_index > self.frames[-1]
        self.frames.append(frame_index)
        self.inputs.append(poses.boxes.copy())
        n = len(poses)
        return Tracks(
            np.arange(1, n + 1, dtype=np.int64),
            poses.boxes,
            poses.box_scores,
            poses.keypoints,
            poses.scores,
            np.arange(n, dtype=np.int64),
        )


def boxes_from_tracks(tracks: Tracks) -> Detections:
    """The tracked boxes as detections (detect-every-N)."""
    return Detections(tracks.boxes.copy(), tracks.box_scores.copy())


def shifted_boxes_from_tracks(tracks: Tracks) -> Detections:
    """The tracked boxes, shifted by one pixel (so that derived boxes are told from detected ones)."""
    return Detections(tracks.boxes + 1, tracks.box_scores.copy())


class ListSink:
    """Keeps results in memory; optionally fails at frame ``fail_at``."""

    def __init__(self, *, fail_at: int | None = None, needs_image: bool = False) -> None:
        self.needs_image = needs_image
        self.results: list[FrameResult] = []
        self.run: RunInfo | None = None
        self.closed = 0
        self.fail_at = fail_at

    def open(self, run: RunInfo) -> None:
        self.run = run

    def write(self, result: FrameResult) -> None:
        if result.index == self.fail_at:
            raise OSError(28, "No space left on device")
        self.results.append(result)

    def close(self) -> None:
        self.closed += 1


class JsonlSink:
    """Minimal line-per-frame writer (flushed per frame) to check that nothing computed is lost."""

    needs_image = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = None

    def open(self, run: RunInfo) -> None:
        self.fh = self.path.open("w")

    def write(self, result: FrameResult) -> None:
        assert self.fh is not None
        self.fh.write(json.dumps({"frame": result.index, "ids": result.tracks.ids.tolist()}) + "\n")
        self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


def make_parts(
    source: FakeSource | None = None,
    detector: FakeDetector | None = None,
    estimator: FakeEstimator | None = None,
    tracker: FakeTracker | None = None,
    box_only: bool = False,
) -> PipelineParts:
    source = source or FakeSource()
    detector = detector or FakeDetector()
    tracker = tracker or FakeTracker()
    est = None if box_only else (estimator or FakeEstimator())
    run = RunInfo(source.info, None, "fake-pose", detector.name, "fake")
    return PipelineParts(source, detector, est, tracker, run, boxes_from_tracks)


def stip_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stip-rt-")]
