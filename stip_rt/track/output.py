"""The rows a tracker outputs for a frame, built from its :class:`~stip_rt.track.table.TrackTable`: tracks
matched in the frame (Kalman or detection boxes, One-Euro smoothed keypoints) and tracks carried through
a frame without detection (predicted boxes, the last keypoints moved with them)."""

from __future__ import annotations

import numpy as np

from ..types import Poses, Tracks
from .config import TrackerConfig
from .inputs import box_scores_of
from .kalman import state_boxes
from .smoothing import OneEuroState, one_euro_step
from .table import TrackTable


def out_boxes(x: np.ndarray, det_boxes: np.ndarray, cfg: TrackerConfig) -> np.ndarray:
    """(R, 4) output boxes: the states' boxes of ``x`` (R, 8) (``output_box: kalman``) or ``det_boxes`` (R, 4)."""
    return state_boxes(x) if cfg.output_box == "kalman" else det_boxes


def smooth_rows(
    table: TrackTable, rows: np.ndarray, kpts: np.ndarray, seconds: float, cfg: TrackerConfig
) -> np.ndarray:
    """Causal One-Euro over ``rows`` at once (state taken from the table, then written back).

    Args:
        table: the tracker's rows; rows: (R,) rows of it.
        kpts: (R, K, 3) their keypoints in a frame at ``seconds`` (the tracker's clock).
        cfg: the smoothing settings and ``keypoint_min_score``.

    Returns:
        (R, K, 3) smoothed keypoints.
    """
    new, out = one_euro_step(
        OneEuroState(table.euro_x[rows], table.euro_dx[rows], table.euro_t[rows]),
        seconds,
        kpts,
        cfg.smoothing,
        cfg.keypoint_min_score,
    )
    table.euro_x[rows] = new.x
    table.euro_dx[rows] = new.dx
    table.euro_t[rows] = new.t
    return out


def matched_tracks(
    table: TrackTable,
    rows: np.ndarray,
    det_index: np.ndarray,
    x: np.ndarray,
    poses: Poses,
    boxes: np.ndarray,
    kpts: np.ndarray | None,
    cfg: TrackerConfig,
    seconds: float,
) -> Tracks:
    """The confirmed tracks matched in a frame (smoothing their keypoints when enabled).

    Args:
        table: the tracker's rows; rows: (R,) the output rows, in id order.
        det_index: (R,) the person of ``poses`` each matched; x: (R, 8) their corrected states.
        poses: the frame's people; boxes: (N, 4) and kpts: (N, K, 3) or None, as checked.
        cfg: ``output_box`` and the smoothing; seconds: the frame's time on the smoothing's clock.
    """
    if not rows.size:
        return Tracks.empty(None if kpts is None else kpts.shape[1])
    out_kpts = None
    if kpts is not None:
        out_kpts = kpts[det_index].astype(np.float32)
        if cfg.smoothing.enabled:
            out_kpts = smooth_rows(table, rows, out_kpts, seconds, cfg)
    return Tracks(
        ids=table.ids[rows],
        boxes=out_boxes(x, boxes[det_index], cfg).astype(np.float32),
        box_scores=box_scores_of(poses).astype(np.float32)[det_index],
        keypoints=out_kpts,
        scores=np.asarray(poses.scores, np.float32).reshape(-1)[det_index],
        det_index=det_index,
    )


def moved_keypoints(table: TrackTable, rows: np.ndarray, boxes: np.ndarray) -> np.ndarray | None:
    """(R, K, 3) last keypoints of ``rows`` moved with their boxes to ``boxes`` (R, 4) (0 for a track never
    matched with keypoints); None when tracking boxes only."""
    if table.num_keypoints is None:
        return None
    kp = table.moved_keypoints(rows, boxes)
    kp[~table.has_kpts[rows]] = 0.0
    return kp


def coasted_tracks(table: TrackTable, rows: np.ndarray, boxes: np.ndarray) -> Tracks:
    """``rows`` (R,) at their predicted ``boxes`` (R, 4) in a frame no detector ran on: ``det_index`` -1,
    the last match's box score as ``box_scores`` and ``scores``, the last keypoints moved with the box."""
    score = table.box_score[rows].astype(np.float32)
    kpts = moved_keypoints(table, rows, boxes)
    return Tracks(
        ids=table.ids[rows].copy(),
        boxes=boxes.astype(np.float32),
        box_scores=score,
        keypoints=None if kpts is None else kpts.astype(np.float32),
        scores=score.copy(),
        det_index=np.full(rows.size, -1, np.int64),
    )
