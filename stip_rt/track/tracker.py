"""Multi-person tracker: Kalman motion, IoU + OKS association, two-stage matching, lifecycle.

See docs/tracking.md for the algorithm and the meaning of every setting.
"""

from __future__ import annotations

import logging
from enum import IntEnum

import numpy as np
from filterpy.kalman import KalmanFilter

from ..errors import ConfigError, DataError
from ..schemas import KeypointSchema, schema_for_joints
from ..types import Poses, Tracks
from .assignment import assign
from .config import TrackerConfig
from .costs import BOX_SIMILARITIES, combined_similarity, iou_matrix, oks_pairs
from .kalman import new_filter, predict_many, update_many, z_to_xyxy
from .smoothing import OneEuroState, one_euro_step

log = logging.getLogger(__name__)
_EMPTY_EURO: dict[int, np.ndarray] = {}


class TrackState(IntEnum):
    """Lifecycle of a track.

    TENTATIVE: born, not yet output; removed at its first miss.
    CONFIRMED: matched ``min_hits`` times; output on every frame it is matched.
    LOST: confirmed but unmatched; keeps predicting and can be re-found for ``max_age_s``.
    REMOVED: gone for good; its id is never reused.
    """

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2
    REMOVED = 3


class _Track:
    """Internal mutable state of one track."""

    __slots__ = ("box", "euro", "hits", "id", "kf", "kpts", "kpts_box", "last_frame", "state")

    def __init__(self, track_id: int, kf: KalmanFilter, frame: int, box: np.ndarray, kpts: np.ndarray | None):
        self.id = track_id
        self.kf = kf
        self.state = TrackState.TENTATIVE
        self.hits = 1
        self.last_frame = frame
        self.box = box  # last observed box (xyxy), the frame of reference of kpts
        self.kpts = kpts  # last observed keypoints (K, 3) or None
        self.kpts_box = box
        self.euro: np.ndarray | None = None  # One-Euro state (K, 5): x, y, dx, dy, t


class Tracker:
    """Gives each person a stable id across frames.

    ``update`` must be called for every frame in order, also with empty :class:`Poses`; frame
    indices must increase (a jump, e.g. after a live source dropped frames, is a longer step).

    Attributes:
        config: the settings.
        fps: frames per second of the source (converts ``max_age_s`` and smoothing times).
        schema: keypoint schema (OKS sigmas); taken from the first keypoints seen when None.
        max_age: ``config.max_age_s`` in frames.

    Example:
        >>> tracker = Tracker(fps=25.0)
        >>> tracks = tracker.update(poses, frame_index=0)  # doctest: +SKIP
        >>> tracks.ids, tracks.det_index  # doctest: +SKIP
    """

    def __init__(
        self, config: TrackerConfig | None = None, fps: float = 30.0, schema: KeypointSchema | None = None
    ) -> None:
        if not fps > 0:
            raise ConfigError(f"tracker: fps must be > 0, got {fps!r}")
        self.config = config or TrackerConfig()
        self.fps = float(fps)
        self.schema = schema
        self.max_age = self.config.max_age_frames(self.fps)
        self._box_sim = BOX_SIMILARITIES[self.config.box_similarity]
        self._sigmas = None if schema is None else schema.sigmas_array()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_frame: int | None = None
        self._prev_frame: int | None = None

    # ------------------------------------------------------------------ public
    def update(self, poses: Poses, frame_index: int) -> Tracks:
        """Track one frame.

        Args:
            poses: the people of this frame (boxes xyxy px, scores, optional (N, K, 3) keypoints).
                Rows with a non-finite box or score, or a box of zero/negative width or height, are
                skipped (logged) and never appear in the output.
            frame_index: 0-based frame number, strictly greater than the previous call's.

        Returns:
            The confirmed tracks matched in this frame, sorted by id, each with ``det_index`` into
            ``poses``. ``keypoints`` is None when ``poses.keypoints`` is None.

        Raises:
            DataError: a frame index that does not increase, arrays of the wrong shape, or
                keypoints whose joint count does not match the schema.
        """
        cfg = self.config
        dt = self._check_frame(frame_index)
        boxes, scores, kpts = self._check_poses(poses, frame_index)
        valid = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
        valid &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if not valid.all():
            log.warning("frame %d: skipped %d people with a non-finite or empty box", frame_index, int((~valid).sum()))
        # 1. Predict every live track to this frame.
        states = predict_many([t.kf for t in self._tracks], cfg.kalman, dt)
        pred_boxes = z_to_xyxy(states) if len(states) else np.zeros((0, 4))
        # 2. Split people by score: high ones match first, low ones only continue tracks.
        high = np.flatnonzero(valid & (scores >= cfg.high_score))
        low = np.flatnonzero(valid & (scores >= cfg.low_score) & (scores < cfg.high_score))
        confirmed = [i for i, t in enumerate(self._tracks) if t.state == TrackState.CONFIRMED]
        lost = [i for i, t in enumerate(self._tracks) if t.state == TrackState.LOST]
        tentative = [i for i, t in enumerate(self._tracks) if t.state == TrackState.TENTATIVE]
        matches: list[tuple[int, int]] = []
        # 3. Stage 1: confirmed and lost tracks vs high-score people.
        pool = np.array(confirmed + lost, np.int64)
        m, free_t, free_d = self._match(pool, high, pred_boxes, boxes, kpts, cfg.min_similarity_high)
        matches += m
        high_left = high[free_d]
        # 4. Stage 2: confirmed tracks still unmatched vs low-score people (ByteTrack).
        confirmed_set = set(confirmed)
        pool2 = np.array([i for i in pool[free_t].tolist() if i in confirmed_set], np.int64)
        m, _, _ = self._match(pool2, low, pred_boxes, boxes, kpts, cfg.min_similarity_low)
        matches += m
        # 5. Stage 3: tentative tracks vs the high-score people left.
        m, _, free_d = self._match(
            np.array(tentative, np.int64), high_left, pred_boxes, boxes, kpts, cfg.min_similarity_tentative
        )
        matches += m
        births = high_left[free_d]
        # 6. Correct matched tracks and advance their lifecycle.
        out_tracks, out_dets = self._apply_matches(matches, boxes, kpts, frame_index)
        # 7. Unmatched tracks: confirmed → lost, tentative → removed, lost too long → removed.
        matched = {ti for ti, _ in matches}
        for i, t in enumerate(self._tracks):
            if i in matched:
                continue
            if t.state == TrackState.TENTATIVE:
                t.state = TrackState.REMOVED
            elif t.state == TrackState.CONFIRMED:
                t.state = TrackState.LOST
            if t.state == TrackState.LOST and frame_index - t.last_frame > self.max_age:
                t.state = TrackState.REMOVED
        self._tracks = [t for t in self._tracks if t.state != TrackState.REMOVED]
        # 8. Births: high-score people left with a score good enough to start a track.
        for d in births[scores[births] >= cfg.new_track_score]:
            t = _Track(
                self._next_id,
                new_filter(boxes[d], cfg.kalman),
                frame_index,
                boxes[d],
                None if kpts is None else kpts[d],
            )
            self._next_id += 1
            if cfg.min_hits <= 1:
                t.state = TrackState.CONFIRMED
                out_tracks.append(t)
                out_dets.append(int(d))
            self._tracks.append(t)
        # 9. Output the confirmed tracks matched in this frame.
        return self._output(out_tracks, out_dets, poses, boxes, kpts, frame_index)

    def track_states(self) -> dict[int, TrackState]:
        """Id → state of every track still held (tentative, confirmed or lost)."""
        return {t.id: t.state for t in self._tracks}

    # ------------------------------------------------------------------ steps
    def _check_frame(self, frame_index: int) -> int:
        if self._last_frame is not None and frame_index <= self._last_frame:
            raise DataError(
                f"tracker: frame index {frame_index} after {self._last_frame}; frames must be given in increasing order"
            )
        dt = 1 if self._last_frame is None else frame_index - self._last_frame
        self._prev_frame, self._last_frame = self._last_frame, frame_index
        return dt

    def _check_poses(self, poses: Poses, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        raw = np.asarray(poses.boxes)
        if raw.size and (raw.ndim != 2 or raw.shape[1] != 4):
            raise DataError(f"frame {frame}: boxes must be (N, 4), got {raw.shape}")
        boxes = np.array(raw, np.float64).reshape(-1, 4)  # a copy: tracks keep rows of it
        scores = np.asarray(poses.scores, np.float64).reshape(-1)
        n = boxes.shape[0]
        if scores.shape[0] != n:
            raise DataError(f"frame {frame}: {n} boxes but {scores.shape[0]} scores")
        if poses.keypoints is None:
            return boxes, scores, None
        kpts = np.array(poses.keypoints, np.float64)  # a copy: tracks keep rows of it
        if kpts.ndim != 3 or kpts.shape[0] != n or kpts.shape[2] != 3:
            raise DataError(f"frame {frame}: keypoints must be (N={n}, K, 3), got {kpts.shape}")
        if self.schema is None:
            try:
                self.schema = schema_for_joints(kpts.shape[1])
            except ConfigError:
                raise DataError(
                    f"frame {frame}: no keypoint schema has {kpts.shape[1]} joints; pass schema= to Tracker"
                ) from None
            self._sigmas = self.schema.sigmas_array()
        if kpts.shape[1] != self.schema.num_keypoints:
            raise DataError(
                f"frame {frame}: keypoints have {kpts.shape[1]} joints, schema "
                f"'{self.schema.name}' has {self.schema.num_keypoints}"
            )
        bad = ~np.isfinite(kpts).all(axis=2)
        if bad.any():  # a joint without a position counts as not seen
            kpts = kpts.copy()
            kpts[bad] = 0.0
        return boxes, scores, kpts

    def _similarity(
        self, rows: np.ndarray, cols: np.ndarray, pred_boxes: np.ndarray, boxes: np.ndarray, kpts: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(R, C) similarity and box similarity of tracks ``rows`` (predicted) and people ``cols``."""
        cfg = self.config
        box_sim = self._box_sim(pred_boxes[rows], boxes[cols])
        if kpts is None or cfg.oks_weight == 0.0:
            return box_sim, box_sim
        # OKS only where the boxes overlap (elsewhere it is ~0 and the box term alone decides) and only
        # with keypoints from the previous frame: a lost track's pose is stale, the box re-finds it.
        pb = pred_boxes[rows]
        overlap = box_sim > 0 if cfg.box_similarity == "iou" else iou_matrix(pb, boxes[cols]) > 0
        tracks = [self._tracks[i] for i in rows.tolist()]
        fresh = np.array([t.kpts is not None and t.last_frame == self._prev_frame for t in tracks])
        r, c = np.nonzero(overlap & fresh[:, None])
        if r.size == 0:
            return box_sim, box_sim
        used = np.flatnonzero(fresh)
        pos = (np.cumsum(fresh) - 1)[r]  # row of r within used
        sel = [tracks[j] for j in used.tolist()]
        tk = np.array([t.kpts for t in sel])
        ref = np.array([t.kpts_box for t in sel])
        # Move the last keypoints with the box: same relative position in the predicted box.
        pu = pb[used]
        scale = (pu[:, 2:] - pu[:, :2]) / np.maximum(ref[:, 2:] - ref[:, :2], 1e-6)
        tk[..., :2] = (tk[..., :2] - ref[:, None, :2]) * scale[:, None, :] + pu[:, None, :2]
        b = boxes[cols[c]]
        areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        oks = np.full(box_sim.shape, np.nan)
        oks[r, c] = oks_pairs(tk[pos], kpts[cols[c]], areas, self._sigmas, cfg.keypoint_min_score)
        return combined_similarity(box_sim, oks, cfg.oks_weight), box_sim

    def _match(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        pred_boxes: np.ndarray,
        boxes: np.ndarray,
        kpts: np.ndarray | None,
        gate: float,
    ) -> tuple[list[tuple[int, int]], np.ndarray, np.ndarray]:
        """Assign tracks ``rows`` to people ``cols``; returns (track, person) pairs and free positions."""
        if len(rows) == 0 or len(cols) == 0:
            return [], np.arange(len(rows)), np.arange(len(cols))
        sim, box_sim = self._similarity(rows, cols, pred_boxes, boxes, kpts)
        gate_on = box_sim if self.config.gate == "box" else None
        pairs, free_r, free_c = assign(sim, gate, gate_on)
        return list(zip(rows[pairs[:, 0]].tolist(), cols[pairs[:, 1]].tolist())), free_r, free_c

    def _apply_matches(
        self, matches: list[tuple[int, int]], boxes: np.ndarray, kpts: np.ndarray | None, frame: int
    ) -> tuple[list[_Track], list[int]]:
        if not matches:
            return [], []
        tracks = [self._tracks[ti] for ti, _ in matches]
        dets = [d for _, d in matches]
        matched_boxes = boxes[dets]
        update_many([t.kf for t in tracks], matched_boxes, self.config.kalman)
        matched_kpts = [None] * len(dets) if kpts is None else list(kpts[dets])
        min_hits = self.config.min_hits
        out_t, out_d = [], []
        for t, d, b, k in zip(tracks, dets, matched_boxes, matched_kpts):
            t.hits += 1
            t.last_frame = frame
            t.box = b
            if k is not None:
                t.kpts = k
                t.kpts_box = b
            if t.state == TrackState.LOST or (t.state == TrackState.TENTATIVE and t.hits >= min_hits):
                t.state = TrackState.CONFIRMED
            if t.state == TrackState.CONFIRMED:
                out_t.append(t)
                out_d.append(d)
        return out_t, out_d

    def _output(
        self,
        tracks: list[_Track],
        dets: list[int],
        poses: Poses,
        boxes: np.ndarray,
        kpts: np.ndarray | None,
        frame: int,
    ) -> Tracks:
        k = None if kpts is None else kpts.shape[1]
        if not tracks:
            return Tracks.empty(k)
        order = np.argsort([t.id for t in tracks], kind="stable")
        tracks = [tracks[i] for i in order]
        det_index = np.asarray(dets, np.int64)[order]
        if self.config.output_box == "kalman":
            out_boxes = z_to_xyxy(np.stack([t.kf.x[:4, 0] for t in tracks]))
        else:
            out_boxes = boxes[det_index]
        out_kpts = None
        if kpts is not None:
            out_kpts = kpts[det_index].astype(np.float32)
            if self.config.smoothing.enabled:
                out_kpts = self._smooth(tracks, out_kpts, frame)
        return Tracks(
            ids=np.array([t.id for t in tracks], np.int64),
            boxes=out_boxes.astype(np.float32),
            box_scores=np.asarray(poses.box_scores, np.float32).reshape(-1)[det_index],
            keypoints=out_kpts,
            scores=np.asarray(poses.scores, np.float32).reshape(-1)[det_index],
            det_index=det_index,
        )

    def _smooth(self, tracks: list[_Track], kpts: np.ndarray, frame: int) -> np.ndarray:
        """Causal One-Euro over the output tracks at once (state stacked, then written back)."""
        k = kpts.shape[1]
        empty = _EMPTY_EURO.get(k)
        if empty is None:
            empty = _EMPTY_EURO[k] = np.concatenate([np.full((k, 4), np.nan), np.full((k, 1), np.nan)], 1)
            empty[:, 2:4] = 0.0
        # Per track one (K, 5) array: x, y, dx, dy, t.
        st = np.array([empty if t.euro is None else t.euro for t in tracks])
        new, out = one_euro_step(
            OneEuroState(st[..., :2], st[..., 2:4], st[..., 4]),
            frame / self.fps,
            kpts,
            self.config.smoothing,
            self.config.keypoint_min_score,
        )
        packed = np.concatenate([new.x, new.dx, new.t[..., None]], axis=-1)
        for i, t in enumerate(tracks):
            t.euro = packed[i]
        return out
