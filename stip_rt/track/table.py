"""The tracker's per-track bookkeeping as parallel arrays (one row per live track, in id order).

Everything the tracker remembers about a track is a row of numpy arrays: the Kalman motion state
(``x``, ``P``: held only here, advanced by :mod:`stip_rt.track.kalman` on the whole arrays), id,
lifecycle state, hit count, last matched frame, last keypoints and the One-Euro smoother state, so
that a frame is a few whole-array operations instead of a Python loop over track objects. Rows are only ever
appended (births, with increasing ids) or dropped (removals), so row order is id order.
"""

from __future__ import annotations

import numpy as np

from .kalman import DIM_X


class TrackTable:
    """Rows of live tracks.

    Attributes:
        x: (N, 8) float64 Kalman states ``[cx, cy, w, h, vcx, vcy, vw, vh]`` px, px/frame.
        p: (N, 8, 8) float64 their covariances.
        ids: (N,) int64 track ids, increasing down the rows.
        state: (N,) int64 ``TrackState`` values.
        hits: (N,) int64 matched frames so far (including the first).
        last: (N,) int64 frame index of the last match.
        box_score: (N,) float64 box score of the last match.
        has_kpts: (N,) bool, True once the track was matched with keypoints.
        num_keypoints: K, or None while unknown (the keypoint columns then have K = 0).
        kpts: (N, K, 3) float64 last matched keypoints (x, y, score px).
        kbox: (N, 4) float64 xyxy box the keypoints were observed in.
        euro_x: (N, K, 2) One-Euro filtered positions px (NaN before a joint's first good sample).
        euro_dx: (N, K, 2) One-Euro filtered speeds px/s.
        euro_t: (N, K) time s of each joint's last good sample (NaN before the first).
    """

    __slots__ = (
        "box_score", "euro_dx", "euro_t", "euro_x", "has_kpts", "hits", "ids", "kbox", "kpts", "last", "num_keypoints",
        "p", "state", "x",
    )  # fmt: skip

    def __init__(self, num_keypoints: int | None = None) -> None:
        self.x = np.zeros((0, DIM_X))
        self.p = np.zeros((0, DIM_X, DIM_X))
        self.ids = np.zeros(0, np.int64)
        self.state = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)
        self.last = np.zeros(0, np.int64)
        self.box_score = np.zeros(0)
        self.has_kpts = np.zeros(0, bool)
        self.kbox = np.zeros((0, 4))
        self.num_keypoints: int | None = None
        self._allocate_keypoints(0)
        if num_keypoints is not None:
            self.set_num_keypoints(num_keypoints)

    def __len__(self) -> int:
        return len(self.ids)

    def set_num_keypoints(self, k: int) -> None:
        """Allocate the keypoint columns for K joints (rows so far have no keypoints); once only."""
        if self.num_keypoints is not None:
            return
        self.num_keypoints = k
        self._allocate_keypoints(k)

    def _allocate_keypoints(self, k: int) -> None:
        n = len(self)
        self.kpts = np.zeros((n, k, 3))
        self.euro_x = np.full((n, k, 2), np.nan)
        self.euro_dx = np.zeros((n, k, 2))
        self.euro_t = np.full((n, k), np.nan)

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` (N,) bool is False."""
        self.x = self.x[mask]
        self.p = self.p[mask]
        self.ids = self.ids[mask]
        self.state = self.state[mask]
        self.hits = self.hits[mask]
        self.last = self.last[mask]
        self.box_score = self.box_score[mask]
        self.has_kpts = self.has_kpts[mask]
        self.kbox = self.kbox[mask]
        self.kpts = self.kpts[mask]
        self.euro_x = self.euro_x[mask]
        self.euro_dx = self.euro_dx[mask]
        self.euro_t = self.euro_t[mask]

    def append(
        self,
        x: np.ndarray,
        p: np.ndarray,
        ids: np.ndarray,
        state: int,
        frame: int,
        boxes: np.ndarray,
        kpts: np.ndarray | None,
        box_scores: np.ndarray,
    ) -> None:
        """Add new tracks (births), one row each.

        Args:
            x: (B, 8) their Kalman states; p: (B, 8, 8) their covariances.
            ids: (B,) int64 new ids, all larger than the existing ones.
            state: the ``TrackState`` value of every new row.
            frame: frame index of their first match.
            boxes: (B, 4) float64 xyxy boxes they started from.
            kpts: (B, K, 3) float64 keypoints they started from, or None.
            box_scores: (B,) their detections' box scores.
        """
        b = len(ids)
        self.x = np.concatenate([self.x, x])
        self.p = np.concatenate([self.p, p])
        self.ids = np.concatenate([self.ids, ids])
        self.state = np.concatenate([self.state, np.full(b, state, np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(b, np.int64)])
        self.last = np.concatenate([self.last, np.full(b, frame, np.int64)])
        self.box_score = np.concatenate([self.box_score, np.asarray(box_scores, np.float64).reshape(b)])
        self.has_kpts = np.concatenate([self.has_kpts, np.full(b, kpts is not None)])
        self.kbox = np.concatenate([self.kbox, boxes])
        k = self.kpts.shape[1]
        self.kpts = np.concatenate([self.kpts, np.zeros((b, k, 3)) if kpts is None else kpts])
        self.euro_x = np.concatenate([self.euro_x, np.full((b, k, 2), np.nan)])
        self.euro_dx = np.concatenate([self.euro_dx, np.zeros((b, k, 2))])
        self.euro_t = np.concatenate([self.euro_t, np.full((b, k), np.nan)])

    def record_matches(
        self,
        x: np.ndarray,
        p: np.ndarray,
        rows: np.ndarray,
        dets: np.ndarray,
        boxes: np.ndarray,
        kpts: np.ndarray | None,
        box_scores: np.ndarray,
        frame: int,
    ) -> np.ndarray:
        """Take ``x`` (N, 8) and ``p`` (N, 8, 8) as every row's state and record the matches of a frame.

        Args:
            x, p: the states of all rows after this frame (kept, not copied).
            rows: (M,) the matched rows; dets: (M,) the person each matched.
            boxes: (D, 4) xyxy boxes of the people; kpts: (D, K, 3) their keypoints, or None.
            box_scores: (D,) their box scores.
            frame: the frame's index (each matched row's ``last``).

        Returns:
            (N,) bool, True for the matched rows (their ``hits`` went up by one).
        """
        self.x, self.p = x, p
        if kpts is not None:
            self.kpts[rows] = kpts[dets]
            self.kbox[rows] = boxes[dets]
            self.has_kpts[rows] = True
        matched = np.zeros(len(self), bool)
        matched[rows] = True
        self.hits += matched
        self.last[rows] = frame
        self.box_score[rows] = box_scores[dets]
        return matched

    def freeze_unseen_sizes(self, last_update: int | None) -> None:
        """No size velocity for the rows not matched in frame ``last_update`` (lost ones, as OC-SORT / BoT-SORT)."""
        unseen = self.last != last_update
        if unseen.any():
            self.x[unseen, 6:] = 0.0

    def moved_keypoints(self, rows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(R, K, 3) last keypoints of ``rows`` moved with their boxes: the same place relative to ``boxes``
        (R, 4) xyxy px as to the box they were seen in (``kbox``), scores kept (a new array)."""
        ref = self.kbox[rows]
        scale = (boxes[:, 2:] - boxes[:, :2]) / np.maximum(ref[:, 2:] - ref[:, :2], 1e-6)
        kp = self.kpts[rows]
        kp[..., :2] = (kp[..., :2] - ref[:, None, :2]) * scale[:, None, :] + boxes[:, None, :2]
        return kp
