"""The tracker's per-track bookkeeping as parallel arrays (one row per live track, in id order).

Each track still owns a filterpy ``KalmanFilter`` (``TrackTable.filters``, the motion state); the
rest of what the tracker remembers about a track (id, lifecycle state, hit count, last matched
frame, last keypoints and the One-Euro smoother state) is kept in numpy arrays, so that a frame is
a few whole-array operations instead of a Python loop over track objects. Rows are only ever
appended (births, with increasing ids) or dropped (removals), so row order is id order.
"""

from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter


class TrackTable:
    """Rows of live tracks.

    Attributes:
        filters: one filterpy ``KalmanFilter`` per row (the box state ``[cx, cy, w, h, v...]``).
        ids: (N,) int64 track ids, increasing down the rows.
        state: (N,) int64 ``TrackState`` values.
        hits: (N,) int64 matched frames so far (including the first).
        last: (N,) int64 frame index of the last match.
        has_kpts: (N,) bool, True once the track was matched with keypoints.
        kpts: (N, K, 3) float64 last matched keypoints (x, y, score px), or None while K is unknown.
        kbox: (N, 4) float64 xyxy box the keypoints were observed in.
        euro_x: (N, K, 2) One-Euro filtered positions px (NaN before a joint's first good sample).
        euro_dx: (N, K, 2) One-Euro filtered speeds px/s.
        euro_t: (N, K) time s of each joint's last good sample (NaN before the first).
    """

    __slots__ = ("euro_dx", "euro_t", "euro_x", "filters", "has_kpts", "hits", "ids", "kbox", "kpts", "last", "state")

    def __init__(self, num_keypoints: int | None = None) -> None:
        self.filters: list[KalmanFilter] = []
        self.ids = np.zeros(0, np.int64)
        self.state = np.zeros(0, np.int64)
        self.hits = np.zeros(0, np.int64)
        self.last = np.zeros(0, np.int64)
        self.has_kpts = np.zeros(0, bool)
        self.kbox = np.zeros((0, 4))
        self.kpts: np.ndarray | None = None
        self.euro_x: np.ndarray | None = None
        self.euro_dx: np.ndarray | None = None
        self.euro_t: np.ndarray | None = None
        if num_keypoints is not None:
            self.set_num_keypoints(num_keypoints)

    def __len__(self) -> int:
        return len(self.filters)

    def set_num_keypoints(self, k: int) -> None:
        """Allocate the keypoint columns for K joints (rows so far have no keypoints)."""
        if self.kpts is not None:
            return
        n = len(self)
        self.kpts = np.zeros((n, k, 3))
        self.euro_x = np.full((n, k, 2), np.nan)
        self.euro_dx = np.zeros((n, k, 2))
        self.euro_t = np.full((n, k), np.nan)

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` (N,) bool is False."""
        self.filters = [f for f, k in zip(self.filters, mask.tolist()) if k]
        self.ids = self.ids[mask]
        self.state = self.state[mask]
        self.hits = self.hits[mask]
        self.last = self.last[mask]
        self.has_kpts = self.has_kpts[mask]
        self.kbox = self.kbox[mask]
        if self.kpts is not None:
            self.kpts = self.kpts[mask]
            self.euro_x = self.euro_x[mask]
            self.euro_dx = self.euro_dx[mask]
            self.euro_t = self.euro_t[mask]

    def append(
        self,
        filters: list[KalmanFilter],
        ids: np.ndarray,
        state: int,
        frame: int,
        boxes: np.ndarray,
        kpts: np.ndarray | None,
    ) -> None:
        """Add new tracks (births), one row each.

        Args:
            filters: their Kalman filters.
            ids: (B,) int64 new ids, all larger than the existing ones.
            state: the ``TrackState`` value of every new row.
            frame: frame index of their first match.
            boxes: (B, 4) float64 xyxy boxes they started from.
            kpts: (B, K, 3) float64 keypoints they started from, or None.
        """
        b = len(filters)
        self.filters += filters
        self.ids = np.concatenate([self.ids, ids])
        self.state = np.concatenate([self.state, np.full(b, state, np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(b, np.int64)])
        self.last = np.concatenate([self.last, np.full(b, frame, np.int64)])
        self.has_kpts = np.concatenate([self.has_kpts, np.full(b, kpts is not None)])
        self.kbox = np.concatenate([self.kbox, boxes])
        if self.kpts is not None:
            k = self.kpts.shape[1]
            self.kpts = np.concatenate([self.kpts, np.zeros((b, k, 3)) if kpts is None else kpts])
            self.euro_x = np.concatenate([self.euro_x, np.full((b, k, 2), np.nan)])
            self.euro_dx = np.concatenate([self.euro_dx, np.zeros((b, k, 2))])
            self.euro_t = np.concatenate([self.euro_t, np.full((b, k), np.nan)])
