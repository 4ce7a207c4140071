"""Reference trackers for ``scripts/eval_tracking.py`` only (not used by the pipeline).

* :class:`GreedyIouTracker`: what mmpose (``_track_by_iou``, ``tracking_thr`` 0.3) and rtmlib's
  PoseTracker (IoU threshold 0.3) do: each person takes the id of the unused person of the previous
  frame with the highest box IoU above the threshold, else a new id. No motion model, no memory
  beyond one frame, every person is output.
* :func:`bytetrack_config`: a ByteTrack-style IoU + Kalman tracker without OKS, built from this
  package's :class:`~stip_rt.track.tracker.Tracker` with ByteTrack's documented defaults
  (``track_thresh`` 0.5, new tracks at 0.6, ``match_thresh`` 0.8 on 1 − IoU, 0.5 in the second
  stage, 0.7 for unconfirmed tracks, ``track_buffer`` 30 frames at 30 fps = 1 s). Differences from
  the official code: the Kalman state is BoT-SORT's (cx, cy, w, h) instead of (cx, cy, a, h), and
  there is no IoU × score fusion.
"""

from __future__ import annotations

import numpy as np

from ..geometry import iou_matrix
from ..types import Poses, Tracks
from .config import OneEuroConfig, TrackerConfig


def bytetrack_config() -> TrackerConfig:
    """ByteTrack's default thresholds as a :class:`TrackerConfig` with OKS and smoothing off."""
    return TrackerConfig(
        high_score=0.5,
        low_score=0.1,
        new_track_score=0.6,
        min_hits=2,
        max_age_s=1.0,
        box_similarity="iou",
        oks_weight=0.0,
        min_similarity_high=0.2,
        min_similarity_low=0.5,
        min_similarity_tentative=0.3,
        output_box="kalman",
        smoothing=OneEuroConfig(enabled=False),
    )


class GreedyIouTracker:
    """Greedy frame-to-frame IoU matching (mmpose / rtmlib style).

    Args:
        iou_threshold: a person keeps an id when its IoU with that id's box in the previous frame is
            above this (mmpose ``tracking_thr`` = 0.3).
        min_score: people below this score are ignored (mmpose demo `--bbox-thr` 0.3).
    """

    def __init__(self, iou_threshold: float = 0.3, min_score: float = 0.3) -> None:
        self.iou_threshold = iou_threshold
        self.min_score = min_score
        self._prev_boxes = np.zeros((0, 4))
        self._prev_ids = np.zeros(0, np.int64)
        self._next_id = 1

    def update(self, poses: Poses, frame_index: int) -> Tracks:
        """Track one frame; same contract as :meth:`Tracker.update` (every person is output)."""
        keep = np.flatnonzero(np.asarray(poses.scores) >= self.min_score)
        keep = keep[np.argsort(-np.asarray(poses.scores)[keep], kind="stable")]  # best people choose first
        boxes = np.asarray(poses.boxes, np.float64)[keep]
        iou = iou_matrix(boxes, self._prev_boxes)
        ids = np.zeros(len(keep), np.int64)
        free = np.ones(len(self._prev_ids), bool)
        for i in range(len(keep)):
            cand = np.where(free, iou[i], -1.0)
            j = int(np.argmax(cand)) if cand.size else -1
            if j >= 0 and cand[j] > self.iou_threshold:
                ids[i] = self._prev_ids[j]
                free[j] = False
            else:
                ids[i] = self._next_id
                self._next_id += 1
        self._prev_boxes, self._prev_ids = boxes, ids
        kp = None if poses.keypoints is None else np.asarray(poses.keypoints, np.float32)[keep]
        return Tracks(
            ids,
            boxes.astype(np.float32),
            np.asarray(poses.box_scores, np.float32)[keep],
            kp,
            np.asarray(poses.scores, np.float32)[keep],
            keep.astype(np.int64),
        )
