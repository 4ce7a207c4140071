"""Detect every N frames; in between, boxes come from the previous frame's tracked poses.

The detector's cost is paid once per N frames (RTMPose's pipeline and rtmlib's ``PoseTracker``
use the same trick): on a frame without detection each tracked person gets the extent of its
visible keypoints, expanded ×1.25 about its centre (rtmlib ``pose_to_bbox``), or its tracked box
when too few keypoints are visible or the tracking is box-only. People who enter the scene are
found at the next detection frame.

Contract (the pipeline calls it in frame order)::

    every5 = DetectEveryN(detector, every=5)
    dets = every5.detect(frames, indices, previous=tracks_of_the_frame_before)

A frame is a detection frame when no detection ran yet, when ``previous`` is None or empty, or
when its index is ``every`` or more frames past the last detection frame (frame indices, so a
live source that drops frames still detects at least every ``every`` source frames). In a batch,
every frame that is not a detection frame gets the boxes derived from ``previous`` (the newest
tracked frame the caller has).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..types import Detections, Tracks
from .base import Detector
from .config import IntervalConfig


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
        every: detection interval (``config.every``); overrides the config when given.
        config: interval settings.

    Attributes:
        name: ``<detector>`` (every 1) or ``<detector>/every<N>``.
        last_detected: index of the last detection frame, or None.
    """

    def __init__(self, detector: Detector, every: int | None = None, config: IntervalConfig | None = None) -> None:
        cfg = config or IntervalConfig()
        if every is not None:
            cfg = IntervalConfig(every, cfg.expansion, cfg.min_keypoint_score, cfg.min_visible)
        self.detector = detector
        self.config = cfg
        self.name = detector.name if cfg.every == 1 else f"{detector.name}/every{cfg.every}"
        self.last_detected: int | None = None
        self._calls = 0

    def reset(self) -> None:
        """Forget the last detection frame (a new source starts)."""
        self.last_detected = None
        self._calls = 0

    def detect(
        self, frames: Sequence[np.ndarray], indices: Sequence[int] | None = None, previous: Tracks | None = None
    ) -> list[Detections]:
        """Detections for a batch of consecutive frames.

        Args:
            frames: (H, W, 3) uint8 BGR images, in frame order.
            indices: their 0-based frame numbers (default: a running count of frames seen).
            previous: tracks of the newest frame already tracked (None: none yet).

        Returns:
            One :class:`Detections` per frame: the detector's on detection frames, else boxes from ``previous``.
        """
        if indices is None:
            indices = range(self._calls, self._calls + len(frames))
        self._calls += len(frames)
        have_tracks = previous is not None and len(previous) > 0
        run = []
        for idx in indices:
            due = self.last_detected is None or idx - self.last_detected >= self.config.every
            if due or not have_tracks:
                self.last_detected = idx
                run.append(True)
            else:
                run.append(False)
        out: list[Detections | None] = [None] * len(frames)
        picked = [i for i, r in enumerate(run) if r]
        if picked:
            found = self.detector.detect([frames[i] for i in picked], [indices[i] for i in picked])
            for i, d in zip(picked, found):
                out[i] = d
        if previous is not None:  # every frame not in `picked` implies tracks were given
            for i, r in enumerate(run):
                if not r:
                    h, w = frames[i].shape[:2]
                    out[i] = boxes_from_tracks(previous, self.config, w, h)
        return [d if d is not None else Detections.empty() for d in out]
