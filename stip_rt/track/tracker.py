"""Multi-person tracker: Kalman motion, IoU + OKS association, two-stage matching, lifecycle.

See docs/tracking.md for the algorithm and the meaning of every setting.
"""

from __future__ import annotations

import logging
from enum import IntEnum

import numpy as np

from ..errors import ConfigError, DataError
from ..geometry import box_areas, iou_matrix, oks
from ..schemas import KeypointSchema, schema_for_joints
from ..types import Poses, Tracks
from .assignment import assign
from .backfill import PendingRows, late_tracks
from .config import TrackerConfig
from .costs import BOX_SIMILARITIES, combined_similarity
from .kalman import initiate, predict, state_boxes, update
from .smoothing import OneEuroState, one_euro_step
from .table import TrackTable

log = logging.getLogger(__name__)


class TrackState(IntEnum):
    """Lifecycle of a track.

    TENTATIVE: born, not yet output (its rows are kept for back-filling); removed after more than
        ``tentative_max_misses`` frames without a match.
    CONFIRMED: matched ``min_hits`` times (or born on the first frame); output on every frame it is matched.
    LOST: confirmed but unmatched; keeps predicting (size frozen) and can be re-found for ``max_age_s``;
        removed early when its predicted box is degenerate or outside the frame.
    REMOVED: gone for good; its id is never reused.
    """

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2
    REMOVED = 3


# Plain ints for the per-frame array arithmetic (IntEnum attribute access is slow).
_TENTATIVE, _CONFIRMED, _LOST, _REMOVED = (int(s) for s in TrackState)
_MISSED = np.array([_REMOVED, _LOST, _LOST, _REMOVED], np.int64)  # state after a frame without a match
_NO_PAIRS = np.zeros((0, 2), np.int64)
_NO_ROWS = np.zeros(0, np.int64)


class Tracker:
    """Gives each person a stable id across frames.

    ``update`` must be called for every frame in order, also with empty :class:`Poses`; frame
    indices must increase (a jump, e.g. after a live source dropped frames, is a longer step).

    Attributes:
        config: the settings.
        fps: frames per second of the source (converts ``max_age_s`` and smoothing times).
        schema: keypoint schema (OKS sigmas); taken from the first keypoints seen when None.
        frame_size: (width, height) px of the frames, or None; when given, a lost track whose predicted
            box lies wholly outside the frame is removed.
        max_age: ``config.max_age_s`` in frames.
        backfill_frames: the most frames between a tentative match and the track's confirmation: how
            long :class:`~stip_rt.track.backfill.DelayedOutput` holds a frame.

    Example:
        >>> tracker = Tracker(fps=25.0)
        >>> tracks = tracker.update(poses, frame_index=0)  # doctest: +SKIP
        >>> tracks.ids, tracks.det_index  # doctest: +SKIP
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        fps: float = 30.0,
        schema: KeypointSchema | None = None,
        frame_size: tuple[int, int] | None = None,
    ) -> None:
        if not fps > 0:
            raise ConfigError(f"tracker: fps must be > 0, got {fps!r}")
        self.config = config or TrackerConfig()
        self.fps = float(fps)
        self.schema = schema
        self.frame_size = frame_size
        self.max_age = self.config.max_age_frames(self.fps)
        self.backfill_frames = (self.config.min_hits - 1) * (self.config.tentative_max_misses + 1)
        self._box_sim = BOX_SIMILARITIES[self.config.box_similarity]
        self._sigmas = None if schema is None else schema.sigmas_array()
        self._table = TrackTable(None if schema is None else schema.num_keypoints)
        self._next_id = 1
        self._last_frame: int | None = None
        self._prev_frame: int | None = None
        self._pending = PendingRows()
        self._late: dict[int, Tracks] = {}

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
            ``poses``. ``keypoints`` is None when ``poses.keypoints`` is None. Tracks confirmed in this
            frame also have rows for their earlier, tentative frames: see :meth:`backfill`.

        Raises:
            DataError: a frame index that does not increase, arrays of the wrong shape, or
                keypoints whose joint count does not match the schema.
        """
        cfg = self.config
        first_frame = self._last_frame is None
        dt = self._check_frame(frame_index)
        self._late = {}
        boxes, scores, kpts = self._check_poses(poses, frame_index)
        valid = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
        valid &= (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        if not valid.all():
            log.warning("frame %d: skipped %d people with a non-finite or empty box", frame_index, int((~valid).sum()))
        # People who can match: score >= low_score ("high" ones also >= high_score).
        cand = (valid & (scores >= cfg.low_score)).nonzero()[0]
        is_high = scores[cand] >= cfg.high_score
        tab = self._table
        confirmed_ids = _NO_ROWS
        if len(tab):
            # 1. Predict every live track to this frame (all rows at once); tracks not matched in the
            # previous frame keep their size (no size velocity while lost, as OC-SORT / BoT-SORT).
            unseen = tab.last != self._prev_frame
            if unseen.any():
                tab.x[unseen, 6:] = 0.0
            x_pred, p_pred = predict(tab.x, tab.p, cfg.kalman, dt)
            # 2.-5. Three matching stages.
            matches, births = self._associate(x_pred, boxes, kpts, cand, is_high)
            # 6. Correct the matched tracks, store the states, advance every track's lifecycle.
            out_rows, out_dets, out_x, tent, confirmed = self._apply_matches(
                matches, x_pred, p_pred, boxes, kpts, frame_index
            )
            if tent.size:  # still tentative: keep the rows for back-filling
                self._pending.add(
                    tab.ids[tent[:, 0]],
                    frame_index,
                    tent[:, 1],
                    self._out_box(x_pred[tent[:, 0]], boxes[tent[:, 1]]),
                    poses,
                    kpts,
                )
            confirmed_ids = tab.ids[confirmed]
            # 7. Drop the removed tracks (output rows are never removed).
            removed = tab.state == _REMOVED
            if removed.any():
                keep = ~removed
                out_rows = (keep.cumsum() - 1)[out_rows]
                tab.keep(keep)
                self._pending.keep_only(tab.ids)
        else:
            births = cand[is_high]
            out_rows, out_dets, out_x = _NO_ROWS, _NO_ROWS, None
        # 8. Births: high-score people left with a score good enough to start a track.
        births = births[scores[births] >= cfg.new_track_score]
        if births.size:
            out_rows, out_dets, out_x = self._births(
                births, boxes, kpts, poses, frame_index, first_frame, out_rows, out_dets, out_x
            )
        # 9. Late rows of the tracks confirmed now, then this frame's confirmed tracks (in id order).
        if confirmed_ids.size:
            self._late = self._back_rows(confirmed_ids)
        return self._output(out_rows, out_dets, out_x, poses, boxes, kpts, frame_index)

    def backfill(self) -> dict[int, Tracks]:
        """Rows for earlier frames of the tracks confirmed by the last :meth:`update`.

        A track is output from the frame it is confirmed on; the frames it was matched in while
        tentative (at most :attr:`backfill_frames` earlier) come from here, frame index → tracks
        (``det_index`` refers to that frame's poses). :class:`~stip_rt.track.backfill.DelayedOutput`
        merges them into the frames it holds. Empty when nothing was confirmed.
        """
        return self._late

    def reset(self, *, next_id: int | None = None) -> None:
        """Forget every track and the last frame index (e.g. before a seek); new ids never repeat old ones.

        Args:
            next_id: the first id given from now on; None keeps counting from the last id given.
                Must not be below the current counter (ids would collide).
        """
        if next_id is not None and next_id < self._next_id:
            raise ConfigError(f"tracker: next_id {next_id} would repeat ids (ids up to {self._next_id - 1} given)")
        self._table = TrackTable(None if self.schema is None else self.schema.num_keypoints)
        self._last_frame = self._prev_frame = None
        self._pending = PendingRows()
        self._late = {}
        if next_id is not None:
            self._next_id = int(next_id)

    def track_states(self) -> dict[int, TrackState]:
        """Id → state of every track still held (tentative, confirmed or lost)."""
        tab = self._table
        return {i: TrackState(s) for i, s in zip(tab.ids.tolist(), tab.state.tolist())}

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
            self._table.set_num_keypoints(self.schema.num_keypoints)
        if kpts.shape[1] != self.schema.num_keypoints:
            raise DataError(
                f"frame {frame}: keypoints have {kpts.shape[1]} joints, schema "
                f"'{self.schema.name}' has {self.schema.num_keypoints}"
            )
        if not np.isfinite(kpts).all():  # a joint without a position counts as not seen
            kpts[~np.isfinite(kpts).all(axis=2)] = 0.0
        return boxes, scores, kpts

    def _associate(
        self, x_pred: np.ndarray, boxes: np.ndarray, kpts: np.ndarray | None, cand: np.ndarray, is_high: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stages 1-3 of the matching.

        The similarity of every track with every candidate person is computed once; each stage
        solves its own sub-block.

        Args:
            x_pred: (T, 8) predicted states of the table rows.
            boxes: (N, 4) xyxy boxes of all people; kpts: (N, K, 3) or None.
            cand: (C,) indices of the people with score >= low_score; is_high: (C,) score >= high_score.

        Returns:
            ``(matches, births)``: (M, 2) int64 (table row, person) pairs, and the high-score people
            left unmatched.
        """
        cfg = self.config
        if not cand.size:
            return _NO_PAIRS, cand
        sim, gate_on = self._similarity(state_boxes(x_pred), boxes[cand], None if kpts is None else kpts[cand])
        state = self._table.state
        high = is_high.nonzero()[0]  # positions in cand
        confirmed = (state == _CONFIRMED).nonzero()[0]
        # 3. Stage 1: confirmed and lost tracks vs high-score people.
        lost = (state == _LOST).nonzero()[0]
        pool = np.concatenate([confirmed, lost])
        gate1 = np.repeat([cfg.min_similarity_high, cfg.min_similarity_lost], [confirmed.size, lost.size])[:, None]
        m1, free_t, free_d = _match(sim, gate_on, pool, high, gate1)
        high_left = high[free_d]
        # 4. Stage 2: confirmed tracks still unmatched vs low-score people (ByteTrack).
        pool2 = pool[free_t[: free_t.searchsorted(confirmed.size)]]  # the pool starts with the confirmed
        m2, _, _ = _match(sim, gate_on, pool2, (~is_high).nonzero()[0], cfg.min_similarity_low)
        # 5. Stage 3: tentative tracks vs the high-score people left.
        tentative = (state == _TENTATIVE).nonzero()[0]
        m3, _, free_d = _match(sim, gate_on, tentative, high_left, cfg.min_similarity_tentative)
        matches = np.concatenate([m1, m2, m3])
        matches[:, 1] = cand[matches[:, 1]]
        return matches, cand[high_left[free_d]]

    def _similarity(
        self, pred_boxes: np.ndarray, boxes: np.ndarray, kpts: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(T, C) similarity of every track (predicted box) with every candidate, and the gate values.

        Args:
            pred_boxes: (T, 4) predicted xyxy boxes of the tracks (table rows).
            boxes: (C, 4) xyxy boxes of the candidate people.
            kpts: (C, K, 3) their keypoints, or None.

        Returns:
            ``(similarity, gate_on)``: gate_on is the box similarity with ``gate: box``, else None
            (the gates apply to the similarity itself).
        """
        cfg = self.config
        box_sim = self._box_sim(pred_boxes, boxes)
        gate_on = box_sim if cfg.gate == "box" else None
        tab = self._table
        if kpts is None or cfg.oks_weight == 0.0 or tab.kpts is None or self._prev_frame is None:
            return box_sim, gate_on
        # OKS only where the boxes overlap (elsewhere it is ~0 and the box term alone decides) and only
        # with keypoints from the previous frame: a lost track's pose is stale, the box re-finds it.
        overlap = box_sim > 0 if cfg.box_similarity == "iou" else iou_matrix(pred_boxes, boxes) > 0
        overlap &= (tab.has_kpts & (tab.last == self._prev_frame))[:, None]
        r, c = overlap.nonzero()
        if r.size == 0:
            return box_sim, gate_on
        # Move the track's last keypoints with the box: same relative position in the predicted box.
        pb = pred_boxes[r]
        ref = tab.kbox[r]
        scale = (pb[:, 2:] - pb[:, :2]) / np.maximum(ref[:, 2:] - ref[:, :2], 1e-6)
        tk = tab.kpts[r]
        tk[..., :2] = (tk[..., :2] - ref[:, None, :2]) * scale[:, None, :] + pb[:, None, :2]
        # OKS at the new person's box area, over the joints seen on both sides (docs/tracking.md).
        areas = np.maximum(box_areas(boxes[c]), 1e-9)
        sim = np.full(box_sim.shape, np.nan)
        sim[r, c] = oks(tk, kpts[c], areas, self._sigmas, cfg.keypoint_min_score)
        return combined_similarity(box_sim, sim, cfg.oks_weight), gate_on

    def _apply_matches(
        self,
        matches: np.ndarray,
        x_pred: np.ndarray,
        p_pred: np.ndarray,
        boxes: np.ndarray,
        kpts: np.ndarray | None,
        frame: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Kalman-correct the matched tracks, store every row's state and advance every lifecycle.

        Args:
            matches: (M, 2) (table row, person) pairs.
            x_pred: (T, 8) predicted states of all rows; p_pred: (T, 8, 8) their covariances.
            boxes: (N, 4) xyxy boxes of the people; kpts: (N, K, 3) or None.
            frame: this frame's index.

        Returns:
            ``(rows, dets, x, tentative, confirmed)``: the matched confirmed rows in id order, their
            people and (R, 8) states; (M', 2) (row, person) pairs of tracks still tentative; rows
            confirmed in this frame (they were tentative).
        """
        cfg = self.config
        tab = self._table
        matches = matches[matches[:, 0].argsort()]  # row (= id) order
        rows, dets = matches[:, 0], matches[:, 1]
        x_post, p_post = update(x_pred[rows], p_pred[rows], boxes[dets], cfg.kalman)
        x_pred[rows] = x_post  # x_pred, p_pred are new arrays: they become the table's state
        p_pred[rows] = p_post
        tab.x, tab.p = x_pred, p_pred
        if kpts is not None:
            tab.kpts[rows] = kpts[dets]
            tab.kbox[rows] = boxes[dets]
            tab.has_kpts[rows] = True
        # Matched: confirmed, unless tentative with fewer than min_hits hits. Unmatched: tentative →
        # removed after tentative_max_misses frames, confirmed → lost, lost too long or unreachable → removed.
        matched = np.zeros(len(tab), bool)
        matched[rows] = True
        tab.hits += matched
        tab.last[rows] = frame
        old = tab.state
        young = (old == _TENTATIVE) & (tab.hits < cfg.min_hits)
        missed = _MISSED[old]
        missed[(old == _TENTATIVE) & (frame - tab.last <= cfg.tentative_max_misses)] = _TENTATIVE
        state = np.where(matched, np.where(young, _TENTATIVE, _CONFIRMED), missed)
        lost = state == _LOST
        lost &= (frame - tab.last > self.max_age) | self._unreachable(x_pred)
        state[lost] = _REMOVED
        tab.state = state
        out = state[rows] == _CONFIRMED
        tent = matches[~out]
        confirmed = rows[out & (old[rows] == _TENTATIVE)]
        return rows[out], dets[out], x_post[out], tent, confirmed

    def _unreachable(self, x: np.ndarray) -> np.ndarray:
        """(T,) True where the predicted state can never match again: a non-finite or sub-pixel
        size, or (with ``frame_size``) a box wholly outside the frame."""
        wh = x[:, 2:4]
        bad = ~(np.isfinite(x[:, :4]).all(axis=1) & (wh >= 1.0).all(axis=1))
        if self.frame_size is not None:
            b = state_boxes(x)
            w, h = self.frame_size
            bad |= (b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= w) | (b[:, 1] >= h)
        return bad

    def _births(
        self,
        births: np.ndarray,
        boxes: np.ndarray,
        kpts: np.ndarray | None,
        poses: Poses,
        frame: int,
        first_frame: bool,
        out_rows: np.ndarray,
        out_dets: np.ndarray,
        out_x: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Start a track for each person in ``births``; output at once with ``min_hits`` 1 or on the
        tracker's first frame (``activate_first_frame``), else kept pending."""
        cfg = self.config
        tab = self._table
        b = boxes[births]
        ids = np.arange(self._next_id, self._next_id + births.size, dtype=np.int64)
        self._next_id += births.size
        confirmed = cfg.min_hits <= 1 or (first_frame and cfg.activate_first_frame)
        first = len(tab)
        x_new, p_new = initiate(b, cfg.kalman)
        state = _CONFIRMED if confirmed else _TENTATIVE
        tab.append(x_new, p_new, ids, state, frame, b, None if kpts is None else kpts[births])
        if not confirmed:
            self._pending.add(ids, frame, births, self._out_box(x_new, b), poses, kpts)
            return out_rows, out_dets, out_x
        return (
            np.concatenate([out_rows, np.arange(first, len(tab))]),
            np.concatenate([out_dets, births]),
            x_new if out_x is None else np.concatenate([out_x, x_new]),
        )

    def _out_box(self, x: np.ndarray, det_boxes: np.ndarray) -> np.ndarray:
        """(R, 4) output boxes: the states' boxes (``output_box: kalman``) or the detections."""
        return state_boxes(x) if self.config.output_box == "kalman" else det_boxes

    def _back_rows(self, ids: np.ndarray) -> dict[int, Tracks]:
        """Late rows of the just-confirmed tracks ``ids``, smoothed in frame order (before this frame)."""
        rows = self._pending.pop(ids)
        if not rows:
            return {}
        tab = self._table
        k = None if self.schema is None else self.schema.num_keypoints
        smoothed: dict[tuple[int, int], np.ndarray] = {}
        if k is not None and self.config.smoothing.enabled:
            frames = sorted({r.frame for rs in rows.values() for r in rs if r.kpts is not None})
            for f in frames:
                pairs = [(i, r.kpts) for i, rs in rows.items() for r in rs if r.frame == f and r.kpts is not None]
                t_rows = tab.ids.searchsorted([i for i, _ in pairs])
                out = self._smooth(t_rows, np.stack([kp for _, kp in pairs]).astype(np.float32), f)
                smoothed.update({(i, f): o for (i, _), o in zip(pairs, out)})
        return late_tracks(rows, smoothed, k)

    def _output(
        self,
        rows: np.ndarray,
        det_index: np.ndarray,
        x: np.ndarray | None,
        poses: Poses,
        boxes: np.ndarray,
        kpts: np.ndarray | None,
        frame: int,
    ) -> Tracks:
        if not rows.size:
            return Tracks.empty(None if kpts is None else kpts.shape[1])
        out_boxes = state_boxes(x) if self.config.output_box == "kalman" else boxes[det_index]
        out_kpts = None
        if kpts is not None:
            out_kpts = kpts[det_index].astype(np.float32)
            if self.config.smoothing.enabled:
                out_kpts = self._smooth(rows, out_kpts, frame)
        return Tracks(
            ids=self._table.ids[rows],
            boxes=out_boxes.astype(np.float32),
            box_scores=np.asarray(poses.box_scores, np.float32).reshape(-1)[det_index],
            keypoints=out_kpts,
            scores=np.asarray(poses.scores, np.float32).reshape(-1)[det_index],
            det_index=det_index,
        )

    def _smooth(self, rows: np.ndarray, kpts: np.ndarray, frame: int) -> np.ndarray:
        """Causal One-Euro over the output rows at once (state taken from the table, then written back)."""
        tab = self._table
        new, out = one_euro_step(
            OneEuroState(tab.euro_x[rows], tab.euro_dx[rows], tab.euro_t[rows]),
            frame / self.fps,
            kpts,
            self.config.smoothing,
            self.config.keypoint_min_score,
        )
        tab.euro_x[rows] = new.x
        tab.euro_dx[rows] = new.dx
        tab.euro_t[rows] = new.t
        return out


def _match(
    sim: np.ndarray, gate_on: np.ndarray | None, rows: np.ndarray, cols: np.ndarray, gate: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assign tracks ``rows`` to candidates ``cols`` on the sub-block of ``sim`` (``gate``: a float or (R, 1) per row).

    Returns:
        ``(pairs, free_rows, free_cols)``: (P, 2) int64 (row, col) values taken from ``rows``/``cols``,
        and the positions in ``rows``/``cols`` left unmatched.
    """
    if rows.size == 0 or cols.size == 0:
        return _NO_PAIRS, np.arange(rows.size), np.arange(cols.size)
    r = rows[:, None]
    pairs, free_r, free_c = assign(sim[r, cols], gate, None if gate_on is None else gate_on[r, cols])
    pairs[:, 0] = rows[pairs[:, 0]]
    pairs[:, 1] = cols[pairs[:, 1]]
    return pairs, free_r, free_c
