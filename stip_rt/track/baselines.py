"""Reference trackers for ``scripts/eval_tracking.py`` only (not used by the pipeline).

* :class:`GreedyIouTracker`: what mmpose (``_track_by_iou``, ``tracking_thr`` 0.3) and rtmlib's
  PoseTracker (IoU threshold 0.3) do: each person takes the id of the unused person of the previous
  frame with the highest box IoU above the threshold, else a new id. No motion model, no memory
  beyond one frame, every person is output.
* :func:`short_buffer_config`: this package's :class:`~stip_rt.track.tracker.Tracker` with OKS and
  smoothing off and a 1 s lost buffer (ByteTrack's ``track_buffer`` 30 frames at 30 fps), the rest
  at ByteTrack's thresholds. It is *our* tracker with a shorter buffer, not ByteTrack: it used to
  be called "ByteTrack-style", and its results were often identical to ours.
* :class:`BoxmotTracker`: a real ByteTrack / OC-SORT / BoT-SORT / OccluBoost from the optional
  ``boxmot`` package (never a dependency; :func:`boxmot_available` says whether it can be imported),
  behind the ``update(poses, frame_index) -> Tracks`` contract.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from ..geometry import iou_matrix
from ..types import Poses, Tracks
from .config import OneEuroConfig, TrackerConfig


def short_buffer_config() -> TrackerConfig:
    """Our tracker with a 1 s lost buffer, OKS and smoothing off, ByteTrack's thresholds."""
    return TrackerConfig(
        high_score=0.5,
        low_score=0.1,
        new_track_score=0.6,
        min_hits=2,
        max_age_s=1.0,
        box_similarity="iou",
        oks_weight=0.0,
        min_similarity_high=0.2,
        min_similarity_lost=0.2,
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


def boxmot_available() -> bool:
    """True when the optional ``boxmot`` package can be imported."""
    return importlib.util.find_spec("boxmot") is not None


class BoxmotTracker:
    """A ``boxmot`` tracker (box-only) with the :meth:`Tracker.update` contract, for comparisons.

    Each runs with boxmot's own defaults, except: no re-id model, no camera-motion compensation
    (static cameras; the frame given to boxmot is black), and ``frame_rate`` set to the source's
    where the tracker takes it (ByteTrack, BoT-SORT). Ids are boxmot's + 1 (they start at 0).

    Args:
        name: ``ByteTrack``, ``OcSort``, ``BotSort`` or ``OccluBoost``.
        fps: frames per second of the source.
        frame_size: (width, height) px.
    """

    def __init__(self, name: str, fps: float, frame_size: tuple[int, int]) -> None:
        import boxmot

        kwargs: dict[str, dict] = {
            "ByteTrack": {"frame_rate": round(fps)},
            "OcSort": {},
            "BotSort": {"frame_rate": round(fps), "use_embeddings": False, "use_cmc": False},
            "OccluBoost": {"use_embeddings": False, "use_cmc": False},
        }
        if name not in kwargs:
            raise ValueError(f"boxmot tracker '{name}' is not one of {list(kwargs)}")
        self.name = name
        self._tracker = getattr(boxmot, name)(**kwargs[name])
        w, h = frame_size
        self._image = np.zeros((h, w, 3), np.uint8)

    def update(self, poses: Poses, frame_index: int) -> Tracks:
        """Track one frame (box-only: keypoints are not used; ``det_index`` from boxmot's output)."""
        n = len(poses.scores)
        dets = np.zeros((n, 6), np.float32)
        dets[:, :4] = np.asarray(poses.boxes, np.float32).reshape(n, 4)
        dets[:, 4] = np.asarray(poses.scores, np.float32)
        out = np.asarray(self._tracker.update(dets, self._image)).reshape(-1, 8)
        det = out[:, 7].astype(np.int64)
        return Tracks(
            out[:, 4].astype(np.int64) + 1,
            out[:, :4].astype(np.float32),
            np.asarray(poses.box_scores, np.float32)[det],
            None,
            out[:, 5].astype(np.float32),
            det,
        )
