"""The guide boxes of detect-every-N: the tracks of the last tracked frame, predicted to the frame a pose
estimate is about to run on.

The track stage publishes a :class:`GuideSnapshot` after every frame (``Tracker.guide_snapshot``): an
immutable copy of the rows matched by the last update (Kalman state, covariance, ids, keypoints, box
scores) with the last frame's number and time. The pose stage, on its own thread, asks it for the frame
it actually processes, :meth:`GuideSnapshot.guide` ``(frame_index, time)``, which may be several frames
on (a live source dropped some) or a longer time on (variable-frame-rate video): the prediction steps by
the same rule as :meth:`Tracker.update <stip_rt.track.tracker.Tracker.update>` and ``coast``
(:func:`~stip_rt.track.inputs.frame_step`). Nothing the track thread changes later is read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import Tracks
from .config import KalmanConfig
from .inputs import frame_step
from .kalman import DIM_X, predict, state_boxes
from .table import TrackTable


@dataclass(frozen=True)
class GuideSnapshot:
    """The tracks matched in the last update, as they were after the last tracked frame (read-only arrays).

    Attributes:
        ids: (R,) int64 track ids, increasing.
        x: (R, 8) float64 Kalman states at ``last_frame`` ``[cx, cy, w, h, vcx, vcy, vw, vh]`` px, px/frame.
        p: (R, 8, 8) float64 their covariances.
        box_scores: (R,) float32 box score of each track's last match.
        keypoints: (R, K, 3) float32 last matched keypoints (all 0 for a track never matched with
            keypoints), or None when tracking boxes only.
        num_keypoints: K, or None while unknown (empty output then has no keypoints).
        last_frame: number of the last frame tracked (updated or coasted), or None before any.
        last_time: its time in seconds, or None.
        fps: the tracker's frames per second (turns times into frames).
        kalman: the motion model's noise settings.
    """

    ids: np.ndarray
    x: np.ndarray
    p: np.ndarray
    box_scores: np.ndarray
    keypoints: np.ndarray | None
    num_keypoints: int | None
    last_frame: int | None
    last_time: float | None
    fps: float
    kalman: KalmanConfig

    def __len__(self) -> int:
        return len(self.ids)

    def step(self, frame_index: int, time: float | None = None) -> float:
        """Frames of motion from ``last_frame`` to ``frame_index`` (at ``time`` s, or None): the step
        ``update``/``coast`` would take (:func:`~stip_rt.track.inputs.frame_step`); 1 for a frame not
        after ``last_frame``."""
        if self.last_frame is None or frame_index <= self.last_frame:
            return 1
        return frame_step(frame_index, self.last_frame, time, self.last_time, self.fps)

    def guide(self, frame_index: int, time: float | None = None) -> Tracks:
        """Where the people of the snapshot are in frame ``frame_index``: the boxes its pose estimate
        starts from when no detector runs on it (detect every N).

        Args:
            frame_index: the frame the boxes are for (after ``last_frame``; frames dropped in between
                are a longer step).
            time: that frame's time in seconds (``Frame.time``), or None; with ``last_time`` known, a
                variable frame rate is predicted by real time (see :meth:`step`).

        Returns:
            Tracks sorted by id at their Kalman boxes predicted to that frame; ``keypoints`` the last
            matched ones; ``box_scores`` and ``scores`` the last match's box score; ``det_index`` -1
            (no detection of that frame). New arrays: the caller may change them.
        """
        if not len(self):
            return Tracks.empty(self.num_keypoints)
        x_pred, _ = predict(self.x, self.p, self.kalman, self.step(frame_index, time))
        return Tracks(
            ids=self.ids.copy(),
            boxes=state_boxes(x_pred).astype(np.float32),
            box_scores=self.box_scores.copy(),
            keypoints=None if self.keypoints is None else self.keypoints.copy(),
            scores=self.box_scores.copy(),
            det_index=np.full(len(self), -1, np.int64),
        )


def take_snapshot(
    table: TrackTable,
    last_update: int | None,
    last_frame: int | None,
    last_time: float | None,
    fps: float,
    kalman: KalmanConfig,
) -> GuideSnapshot:
    """A :class:`GuideSnapshot` of the rows of ``table`` matched in frame ``last_update`` (copies).

    Args:
        table: the tracker's rows (states at ``last_frame``).
        last_update: the last frame given to ``update`` (rows matched there are guided), or None.
        last_frame: the last frame tracked (updated or coasted), or None; last_time: its time (s), or None.
        fps: frames per second; kalman: the motion model's settings.
    """
    k = table.num_keypoints
    rows = (table.last == last_update).nonzero()[0] if last_update is not None and len(table) else None
    if rows is None or not rows.size:
        return GuideSnapshot(
            np.zeros(0, np.int64), np.zeros((0, DIM_X)), np.zeros((0, DIM_X, DIM_X)), np.zeros(0, np.float32),
            None if k is None else np.zeros((0, k, 3), np.float32), k, last_frame, last_time, fps, kalman,
        )  # fmt: skip
    kpts = None
    if k is not None:
        kpts = table.kpts[rows].astype(np.float32)
        kpts[~table.has_kpts[rows]] = 0.0
    arrays = [table.ids[rows], table.x[rows], table.p[rows], table.box_score[rows].astype(np.float32), kpts]
    for a in arrays:  # fancy indexing copied them: nothing the tracker does later reaches these
        if a is not None:
            a.setflags(write=False)
    ids, x, p, scores, _ = arrays
    return GuideSnapshot(ids, x, p, scores, kpts, k, last_frame, last_time, fps, kalman)
