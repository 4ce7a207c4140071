"""Detect every N frames; in between, boxes come from the previous frame's tracked poses.

The detector's cost is paid once per N frames (RTMPose's pipeline and rtmlib's ``PoseTracker``
use the same trick): on a frame without detection each tracked person gets the extent of its
visible keypoints, expanded ×1.25 about its centre (rtmlib ``pose_to_bbox``), or its tracked box
when too few keypoints are visible or the tracking is box-only. The pipeline passes the tracker's
:meth:`~stip_rt.track.guide.GuideSnapshot.guide` of the tracker's snapshot after the frame before
(``stip_rt.track_feedback.TrackFeedback``): every person matched there, tentative tracks included (so people
who enter the scene, found at the next detection frame, are confirmed on the frames after it), each
box predicted to the index and time of the new frame.

:class:`DetectEveryN` is the one home of the policy. It decides in two steps, because the second
needs the tracker's output of the frame before, which a threaded pipeline has only later:

1. :meth:`DetectEveryN.is_detection_frame` (frame order, before any tracking: the detect stage):
   a frame is a *detection frame* when no detection ran yet or when its index is ``every`` or
   more past the last detection frame (frame indices, so a live source that drops frames still
   detects at least every ``every`` source frames). This schedule depends on the indices alone.
2. :meth:`DetectEveryN.boxes_for` (for the other frames, once the previous frame is tracked: the
   pose stage): boxes from the previous frame's tracks (:func:`boxes_from_tracks`); when nobody
   is tracked, the detector runs on this frame instead (people are found as soon as they appear).
   Such a fallback detection does *not* move the schedule of step 1 (frames ahead may already be
   scheduled), so the detection frames of a run do not depend on thread timing.

This is the feedback edge of the pipeline: frame t+1's boxes need frame t's tracks when t+1 is
not a detection frame. :meth:`DetectEveryN.detect` runs both steps for callers without threads::

    every5 = DetectEveryN(detector, every=5)
    dets = every5.detect(frames, indices, previous=tracks_of_the_frame_before)

The detector may be called from two threads (scheduled detections on the detect stage,
fallbacks on the pose stage); the calls are serialised by a lock, so detectors that are not
thread-safe (CUDA graphs with static buffers) are safe here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from ..types import Detections, Tracks
from .base import Detector
from .config import IntervalConfig

#: Turns the previous frame's tracks into boxes for this frame (``PipelineParts.boxes_from_tracks``).
BoxesFromTracks = Callable[[Tracks], Detections]


def boxes_from_tracks(tracks: Tracks, config: IntervalConfig, width: int, height: int) -> Detections:
    """Boxes for the next frame from tracked people.

    Args:
        tracks: the previous frame's tracks (keypoints (N, K, 3) in frame pixels, or None).
        config: expansion and visibility rules.
        width, height: frame size in pixels (boxes are clipped to it).

    Returns:
        Detections with one box per track (same order), scores = the tracks' box scores.
    """
    boxes = tracks.boxes.astype(np.float32, copy=True)
    if tracks.keypoints is not None and len(tracks):
        kp = tracks.keypoints
        vis = kp[..., 2] >= config.min_keypoint_score  # (N, K)
        use = vis.sum(axis=1) >= config.min_visible
        if use.any():
            x = np.where(vis, kp[..., 0], np.nan)[use]
            y = np.where(vis, kp[..., 1], np.nan)[use]
            ext = np.stack([np.nanmin(x, 1), np.nanmin(y, 1), np.nanmax(x, 1), np.nanmax(y, 1)], axis=1)
            centre = (ext[:, :2] + ext[:, 2:]) / 2
            half = (ext[:, 2:] - ext[:, :2]) / 2 * config.expansion
            boxes[use] = np.concatenate([centre - half, centre + half], axis=1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return Detections(boxes, tracks.box_scores.astype(np.float32, copy=True))


class DetectEveryN:
    """Wraps a :class:`~stip_rt.detect.base.Detector` so it runs on one frame in N.

    Args:
        detector: the detector run on detection frames.
        every: detection interval; overrides ``config.every`` when given.
        config: interval settings (default ``IntervalConfig()``).
        to_boxes: turns the previous tracks into boxes instead of :func:`boxes_from_tracks` with
            ``config`` and the frame's size (e.g. ``PipelineParts.boxes_from_tracks``).

    Attributes:
        name: ``<detector>`` (every 1) or ``<detector>/every<N>``.
        every: the detection interval (1: every frame is a detection frame).
        last_detected: index of the last scheduled detection frame, or None.
    """

    def __init__(
        self,
        detector: Detector,
        every: int | None = None,
        config: IntervalConfig | None = None,
        *,
        to_boxes: BoxesFromTracks | None = None,
    ) -> None:
        cfg = config or IntervalConfig()
        if every is not None:
            cfg = IntervalConfig(every, cfg.expansion, cfg.min_keypoint_score, cfg.min_visible)
        self.detector = detector
        self.config = cfg
        self.every = cfg.every
        self.name = detector.name if cfg.every == 1 else f"{detector.name}/every{cfg.every}"
        self.last_detected: int | None = None
        self._to_boxes = to_boxes
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def needs_tracks(self) -> bool:
        """True when some frames take their boxes from the previous frame's tracks (``every`` > 1)."""
        return self.every > 1

    def reset(self) -> None:
        """Forget the last detection frame (a new source starts)."""
        self.last_detected = None
        self._calls = 0

    # ---------------------------------------------------------------- step 1: the schedule

    def is_detection_frame(self, index: int) -> bool:
        """Step 1, called once per frame in frame order: does the detector run on frame ``index``?

        Updates :attr:`last_detected` when it answers True. Frames answered False get their boxes
        from :meth:`boxes_for` once the frame before them is tracked.
        """
        if self.last_detected is None or index - self.last_detected >= self.every:
            self.last_detected = index
            return True
        return False

    def run_detector(self, frames: Sequence[np.ndarray], indices: Sequence[int]) -> list[Detections]:
        """The wrapped detector on ``frames`` (one batch; calls from several threads take turns)."""
        with self._lock:
            return self.detector.detect(frames, indices)

    # ---------------------------------------------------------------- step 2: the feedback

    def boxes_for(self, frame: np.ndarray, index: int, previous: Tracks) -> tuple[Detections, bool]:
        """Step 2, for a frame that step 1 did not detect: its boxes from the previous frame's tracks.

        Args:
            frame: (H, W, 3) uint8 BGR image of frame ``index``.
            index: its frame number.
            previous: tracks of the frame just before it in this run (the last one tracked).

        Returns:
            (boxes, detector ran): boxes from ``previous``, or, when nobody is tracked, the
            detector's boxes for this frame (the schedule of step 1 is unchanged).
        """
        if len(previous) == 0:
            return self.run_detector([frame], [index])[0], True
        return self._boxes(previous, frame), False

    def _boxes(self, previous: Tracks, frame: np.ndarray) -> Detections:
        if self._to_boxes is not None:
            return self._to_boxes(previous)
        h, w = frame.shape[:2]
        return boxes_from_tracks(previous, self.config, w, h)

    # ---------------------------------------------------------------- both steps, no threads

    def detect(
        self, frames: Sequence[np.ndarray], indices: Sequence[int] | None = None, previous: Tracks | None = None
    ) -> list[Detections]:
        """Detections for a batch of consecutive frames (both steps; for callers without threads).

        Args:
            frames: (H, W, 3) uint8 BGR images, in frame order.
            indices: their 0-based frame numbers (default: a running count of frames seen).
            previous: tracks of the newest frame already tracked (None: none yet).

        Returns:
            One :class:`Detections` per frame: the detector's on detection frames and, when
            ``previous`` is None or empty, on every frame; else boxes from ``previous``. All the
            frames the detector runs on go in one detector call.
        """
        if indices is None:
            indices = range(self._calls, self._calls + len(frames))
        self._calls += len(frames)
        have_tracks = previous is not None and len(previous) > 0
        scheduled = [self.is_detection_frame(i) for i in indices]
        picked = [i for i, s in enumerate(scheduled) if s or not have_tracks]
        out: list[Detections | None] = [None] * len(frames)
        if picked:
            found = self.run_detector([frames[i] for i in picked], [indices[i] for i in picked])
            for i, d in zip(picked, found):
                out[i] = d
        if have_tracks:
            assert previous is not None
            for i in range(len(out)):
                if out[i] is None:
                    out[i] = self._boxes(previous, frames[i])
        return [d if d is not None else Detections.empty() for d in out]


def every_n(
    detector: Detector | DetectEveryN,
    config: IntervalConfig | None = None,
    *,
    to_boxes: BoxesFromTracks | None = None,
) -> DetectEveryN:
    """``detector`` as a :class:`DetectEveryN` (itself when it already is one).

    Args:
        detector: a plain detector or an already wrapped one.
        config: interval settings (``RunConfig.detect.interval``); default: every frame.
        to_boxes: see :class:`DetectEveryN`.
    """
    if isinstance(detector, DetectEveryN):
        return detector
    return DetectEveryN(detector, config=config or IntervalConfig(every=1), to_boxes=to_boxes)
