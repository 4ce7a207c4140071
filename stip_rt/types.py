"""Results are data: the frozen dataclasses that flow between the stages.

All coordinates are pixels of the source frame, origin top-left, x right, y down.
Scores are in [0, 1]. Arrays are numpy; no stage passes dicts or bare tuples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .errors import DataError

if TYPE_CHECKING:
    from .schemas import KeypointSchema


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a source knows about itself.

    Attributes:
        uri: path, URL or camera id as the user gave it.
        width, height: frame size in pixels.
        fps: frames per second (nominal for cameras).
        frame_count: number of frames when known (files), else None.
        live: True for cameras and network streams (frames may be dropped).
    """

    uri: str
    width: int
    height: int
    fps: float
    frame_count: int | None = None
    live: bool = False


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based frame number in the source.
        time: presentation time in seconds (from the stream's pts where known).
        image: (H, W, 3) uint8 BGR.
    """

    index: int
    time: float
    image: np.ndarray = field(repr=False)


@dataclass(frozen=True, slots=True)
class Detections:
    """People found in one frame.

    Attributes:
        boxes: (N, 4) float32 xyxy pixels.
        scores: (N,) float32 in [0, 1].

    Arrays (or nested lists) are converted to float32 with ``np.asarray`` (no copy when they already
    are); an empty array of any shape is (0, 4).
    Boxes that cannot be cropped (zero or negative size, not finite) are legal here: the pose
    estimator and the tracker skip them.

    Raises:
        DataError: boxes that are not (N, 4) (a single box must be ``[[x1, y1, x2, y2]]``), a score
            count that differs from the box count, or values that are not numbers.
    """

    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        boxes, scores = _numeric(self.boxes, "boxes"), _numeric(self.scores, "scores")
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise DataError(f"Detections: boxes must be (N, 4), got {boxes.shape}")
        if scores.ndim > 1 or scores.size != boxes.shape[0]:
            n = boxes.shape[0]
            raise DataError(f"Detections: scores must be (N,) = ({n},) for {n} boxes, got {scores.shape}")
        object.__setattr__(self, "boxes", boxes.astype(np.float32, copy=False))
        object.__setattr__(self, "scores", scores.reshape(-1).astype(np.float32, copy=False))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))


def _numeric(values: object, name: str) -> np.ndarray:
    """``values`` as a numeric array; DataError naming ``name`` otherwise."""
    try:
        arr = np.asarray(values)
    except ValueError as e:  # ragged nested lists
        raise DataError(f"Detections: {name} must be a numeric array ({e})") from e
    if not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"Detections: {name} must be a numeric array, got dtype {arr.dtype}")
    return arr


@dataclass(frozen=True, slots=True)
class Poses:
    """People with skeletons in one frame (the pose stage's output).

    Attributes:
        boxes: (N, 4) float32 xyxy pixels (the detection boxes).
        box_scores: (N,) float32 detector scores.
        keypoints: (N, K, 3) float32 (x, y, score) in frame pixels, or None for box-only tracking.
        scores: (N,) float32 person scores (box score × mean keypoint score above 0.2, or the box
            score when there are no keypoints).
    """

    boxes: np.ndarray
    box_scores: np.ndarray
    keypoints: np.ndarray | None
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls, num_keypoints: int | None = None) -> Poses:
        kps = None if num_keypoints is None else np.zeros((0, num_keypoints, 3), np.float32)
        z = np.zeros((0,), np.float32)
        return cls(np.zeros((0, 4), np.float32), z, kps, z.copy())

    @classmethod
    def from_detections(cls, dets: Detections) -> Poses:
        """Box-only poses (no keypoints); the person score is the box score."""
        return cls(dets.boxes, dets.scores, None, dets.scores)


@dataclass(frozen=True, slots=True)
class Tracks:
    """Tracked people in one frame (the track stage's output).

    Attributes:
        ids: (N,) int64 track ids, stable across frames, never reused, starting at 1.
        boxes: (N, 4) float32 xyxy pixels.
        box_scores: (N,) float32.
        keypoints: (N, K, 3) float32 (x, y, score) frame pixels, or None (box-only).
        scores: (N,) float32 person scores.
        det_index: (N,) int64 index of the input person each row came from.
    """

    ids: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    keypoints: np.ndarray | None
    scores: np.ndarray
    det_index: np.ndarray

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls, num_keypoints: int | None = None) -> Tracks:
        p = Poses.empty(num_keypoints)
        return cls(np.zeros((0,), np.int64), p.boxes, p.box_scores, p.keypoints, p.scores,
                   np.zeros((0,), np.int64))


@dataclass(frozen=True, slots=True)
class FrameResult:
    """Everything the pipeline produced for one frame.

    Attributes:
        index: 0-based frame number in the source.
        time: seconds from the start of the source.
        tracks: the tracked people.
        timings: seconds spent per stage for this frame (``decode``, ``detect``, ``pose``, ``track``)
            and ``latency`` (capture to result).
        image: the frame (H, W, 3) uint8 BGR when a sink asked for pictures, else None.
    """

    index: int
    time: float
    tracks: Tracks
    timings: dict[str, float] = field(default_factory=dict)
    image: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What a sink writes in its header: the source, the skeleton and the models used.

    Attributes:
        source: the source's metadata.
        schema: the keypoint schema, or None for box-only tracking.
        pose_model: pose model name (e.g. ``stip-w32-coco-256x192``) or ``none``.
        detector: detector name (e.g. ``rtmdet-tiny`` or ``file:dets.json``).
        backend: backend description (e.g. ``torch cpu fp32``).
        device: the device the run's networks use (``runtime.device`` resolved: ``cpu``, ``cuda``,
            ``cuda:1``); empty when unknown.
    """

    source: SourceInfo
    schema: KeypointSchema | None
    pose_model: str = "none"
    detector: str = "none"
    backend: str = "none"
    device: str = ""
