"""Multi-person tracker: Kalman motion, IoU + OKS association, two-stage matching, lifecycle.

See docs/tracking.md for the algorithm and the meaning of every setting.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import ConfigError
from ..geometry import valid_boxes
from ..schemas import KeypointSchema
from ..types import Poses, Tracks
from .association import associate
from .backfill import PendingRows, smoothed_late_tracks
from .clock import TrackClock, gap_extra, gap_survivors
from .config import TrackerConfig
from .guide import GuideSnapshot, take_snapshot
from .inputs import box_scores_of, check_fps, check_frame_size, check_poses, log_skipped
from .kalman import DIM_X, initiate, predict, state_boxes, update
from .lifecycle import (
    CONFIRMED,
    REMOVED,
    TENTATIVE,
    TrackState,
    advance_states,
    born_confirmed,
    coast_states,
    unreachable,
)
from .output import coasted_tracks, matched_tracks, moved_keypoints, out_boxes, smooth_rows
from .table import TrackTable

__all__ = ["TrackState", "Tracker"]

log = logging.getLogger(__name__)

_NO_ROWS = np.zeros(0, np.int64)
_NO_STATES = np.zeros((0, DIM_X))  # no Kalman states


class Tracker:
    """Gives each person a stable id across frames.

    ``update`` (or, on a frame no detector ran on, ``coast``) must be called for every frame in
    order, also with empty :class:`Poses`; frame indices must increase (a jump, e.g. after a live
    source dropped frames, is a longer step).

    Attributes:
        config: the settings.
        fps: frames per second of the source (converts ``max_age_s`` and smoothing times).
        schema: keypoint schema (OKS sigmas); taken from the first keypoints seen when None.
        frame_size: (width, height) px of the frames, or None; when given, a lost track whose predicted
            box lies wholly outside the frame is removed.
        max_age: ``config.max_age_s`` in frames.
        backfill_frames: the most frames between a tentative match and the track's confirmation: how
            long :class:`~stip_rt.track.backfill.DelayedOutput` holds a frame.
        skipped: people skipped so far for a non-finite or empty box (warned about once, then logged
            at debug level).

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
        self.config = config or TrackerConfig()
        self.fps = check_fps(fps)
        self.schema = schema
        self.frame_size = check_frame_size(frame_size)
        self.max_age = self.config.max_age_frames(self.fps)
        self.backfill_frames = (self.config.min_hits - 1) * (self.config.tentative_max_misses + 1)
        self._sigmas = None if schema is None else schema.sigmas_array()
        self._table = TrackTable(None if schema is None else schema.num_keypoints)
        self._next_id = 1
        self._clock = self._new_clock()
        self._pending = PendingRows()
        self._late: dict[int, Tracks] = {}
        self.skipped = 0  # people skipped so far for a non-finite or empty box

    # ------------------------------------------------------------------ public
    def update(self, poses: Poses, frame_index: int, time: float | None = None) -> Tracks:
        """Track one frame.

        Args:
            poses: the people of this frame (boxes xyxy px, scores, optional (N, K, 3) keypoints).
                Rows with a non-finite box or score, or a box of zero/negative width or height, are
                skipped (logged) and never appear in the output.
            frame_index: 0-based frame number, strictly greater than the previous call's.
            time: the frame's presentation time in seconds (``Frame.time``), or None. Given for this
                frame and the one before, the motion model and the keypoint smoothing step by the time
                elapsed, in frames of ``fps``: variable-frame-rate video (phones) is predicted by real
                time. A step within 10 % of the frame-number difference (timestamp rounding) counts as that
                difference; without times, frames are ``1 / fps`` apart.

        Returns:
            The confirmed tracks matched in this frame, sorted by id, each with ``det_index`` into
            ``poses``. ``keypoints`` is None when ``poses.keypoints`` is None. Tracks confirmed in this
            frame also have rows for their earlier, tentative frames: see :meth:`backfill`.

        Raises:
            DataError: a frame index that does not increase, arrays of the wrong shape, or
                keypoints whose joint count does not match the schema.
        """
        cfg = self.config
        first_frame = self._clock.last_update is None
        dt = self._clock.step(frame_index, time)
        boxes, scores, kpts = self._check_poses(poses, frame_index)  # a rejected frame changes nothing
        prev, prev_update = self._advance(frame_index, dt, time)
        self._clock.last_update = int(frame_index)
        valid = valid_boxes(boxes) & np.isfinite(scores)
        if not valid.all():
            self.skipped = log_skipped(log, frame_index, int((~valid).sum()), self.skipped)
        # People who can match: score >= low_score ("high" ones also >= high_score).
        cand = (valid & (scores >= cfg.low_score)).nonzero()[0]
        is_high = scores[cand] >= cfg.high_score
        # 0. a gap (a live source's drops or outage in the frame numbers; in the times, the same outage in
        # a video recorded of that run, or a stall) ages the tracks too
        self._expire_across_gap(int(frame_index), prev, dt)
        tab = self._table
        confirmed_ids = _NO_ROWS
        if len(tab):
            # 1. Predict every live track to this frame (all rows at once); tracks not matched in the
            # previous update keep their size (no size velocity while lost, as OC-SORT / BoT-SORT).
            self._table.freeze_unseen_sizes(prev_update)
            x_pred, p_pred = predict(tab.x, tab.p, cfg.kalman, dt)
            # 2.-5. Three matching stages (recency and OKS count from the previous update: coasted frames
            # in between matched nobody).
            # tracks coasted since their last match are less sure of where they are: buffered matching, grown
            # per coasted second (coasted frames at ``fps``)
            buffer = None
            if self._clock.coasted and cfg.coast_buffer_per_s:
                buffer = (cfg.coast_buffer_per_s / self.fps) * self._clock.coasts_since(tab.last)
            matches, births = associate(
                tab, x_pred, boxes, kpts, cand, is_high, cfg, self._sigmas, prev_update, self.max_age, buffer
            )
            # 6. Correct the matched tracks, store the states, advance every track's lifecycle.
            out_rows, out_dets, out_x, tent, confirmed = self._apply_matches(
                matches, x_pred, p_pred, boxes, kpts, box_scores_of(poses), frame_index
            )
            if tent.size:  # still tentative: keep the rows for back-filling
                tent_boxes = out_boxes(x_pred[tent[:, 0]], boxes[tent[:, 1]], cfg)
                self._pending.add(tab.ids[tent[:, 0]], frame_index, tent[:, 1], tent_boxes, poses, kpts)
            confirmed_ids = tab.ids[confirmed]
            # 7. Drop the removed tracks (output rows are never removed).
            removed = tab.state == REMOVED
            if removed.any():
                keep = ~removed
                out_rows = (keep.cumsum() - 1)[out_rows]
                tab.keep(keep)
                self._pending.keep_only(tab.ids)
            self._clock.forget_coasts(tab.last)
        else:
            births = cand[is_high]
            out_rows, out_dets, out_x = _NO_ROWS, _NO_ROWS, _NO_STATES
        # 8. Births: high-score people left with a score good enough to start a track.
        births = births[scores[births] >= cfg.new_track_score]
        if births.size:
            out_rows, out_dets, out_x = self._births(
                births, boxes, kpts, poses, frame_index, first_frame, out_rows, out_dets, out_x
            )
        # 9. Late rows of the tracks confirmed now, then this frame's confirmed tracks (in id order).
        if confirmed_ids.size:
            self._late = self._back_rows(confirmed_ids)
        seconds = self._clock.seconds(frame_index)
        return matched_tracks(tab, out_rows, out_dets, out_x, poses, boxes, kpts, cfg, seconds)

    def backfill(self) -> dict[int, Tracks]:
        """Rows for earlier frames of the tracks confirmed by the last :meth:`update`.

        A track is output from the frame it is confirmed on; the frames it was matched in while
        tentative (at most :attr:`backfill_frames` earlier) come from here, frame index → tracks
        (``det_index`` refers to that frame's poses). :class:`~stip_rt.track.backfill.DelayedOutput`
        merges them into the frames it holds. Empty when nothing was confirmed.
        """
        return self._late

    def coast(self, frame_index: int, time: float | None = None) -> Tracks:
        """Carry every track through a frame no detector ran on (box-only tracking, detect every N).

        Nothing is measured in such a frame, so nothing is corrected: every track's Kalman state is
        predicted to this frame (its covariance grows) and the confirmed tracks are output at their
        predicted boxes. The frame is not a miss (no detector looked): a tentative track is not aged by
        it, a confirmed one stays confirmed; a lost track still ages by time (``max_age_s``), and a confirmed
        or lost track whose prediction left the frame (``frame_size``) is removed. Tentative tracks keep a predicted
        row for this frame, output late (:meth:`backfill`) if they are confirmed.

        Args:
            frame_index: 0-based frame number, strictly greater than the previous call's.
            time: the frame's presentation time in seconds, or None (see :meth:`update`).

        Returns:
            The confirmed tracks, sorted by id, at their predicted boxes; ``det_index`` is -1 (no
            detection), ``box_scores`` and ``scores`` are the last match's box score, ``keypoints``
            (None when tracking boxes only) the last matched ones moved with the box, not smoothed.
            Before the first :meth:`update` nothing is tracked: empty.

        Raises:
            DataError: a frame index that does not increase.
        """
        dt = self._clock.step(frame_index, time)
        prev, prev_update = self._advance(frame_index, dt, time)
        tab = self._table
        if not len(tab):
            return Tracks.empty(tab.num_keypoints)
        frame = int(frame_index)
        self._clock.coasted.append(frame)
        self._expire_across_gap(frame, prev, dt)  # as in ``update``
        # 1. Predict every track (tracks not matched in the last update keep their size) and keep the prediction.
        self._table.freeze_unseen_sizes(prev_update)
        tab.x, tab.p = predict(tab.x, tab.p, self.config.kalman, dt)
        # 2. Age: nothing was missed, only time passed; a prediction out of reach ends the track.
        missed = self._clock.missed(frame, tab.last, tab.state)
        tab.state = coast_states(tab.state, missed, self.max_age, unreachable(tab.x, self.frame_size))
        removed = tab.state == REMOVED
        if removed.any():
            tab.keep(~removed)
            self._pending.keep_only(tab.ids)
            if not len(tab):
                return Tracks.empty(tab.num_keypoints)
        boxes = state_boxes(tab.x)
        tent = (tab.state == TENTATIVE).nonzero()[0]
        if tent.size:  # rows of this frame for back-filling, should they be confirmed
            kp = moved_keypoints(tab, tent, boxes[tent])
            self._pending.add_predicted(tab.ids[tent], frame, boxes[tent], tab.box_score[tent], kp)
        # 3. The confirmed tracks at their predicted boxes.
        rows = (tab.state == CONFIRMED).nonzero()[0]
        return coasted_tracks(tab, rows, boxes[rows])

    def reset(self, *, next_id: int | None = None) -> None:
        """Forget every track and the last frame index (e.g. before a seek); new ids never repeat old ones.

        Args:
            next_id: the first id given from now on; None keeps counting from the last id given.
                Must not be below the current counter (ids would collide).
        """
        if next_id is not None and next_id < self._next_id:
            raise ConfigError(f"tracker: next_id {next_id} would repeat ids (ids up to {self._next_id - 1} given)")
        self._table = TrackTable(None if self.schema is None else self.schema.num_keypoints)
        self._clock = self._new_clock()
        self._pending = PendingRows()
        self._late = {}
        if next_id is not None:
            self._next_id = int(next_id)

    def guide_snapshot(self) -> GuideSnapshot:
        """The tracks matched by the last :meth:`update` as they are now (after any frames :meth:`coast`
        carried them through), copied: the pose stage predicts them to the frame it processes
        (:meth:`GuideSnapshot.guide <stip_rt.track.guide.GuideSnapshot.guide>`) on its own thread while
        this tracker goes on.

        Every track matched in the last update is there, tentative ones too, so that a person found on
        a detection frame gets boxes on the frames after it and can be confirmed; its keypoints are the
        last matched ones (None when tracking boxes only; all joint scores 0 for a track never matched
        with keypoints).
        """
        c = self._clock
        return take_snapshot(self._table, c.last_update, c.last_frame, c.last_time, self.fps, self.config.kalman)

    def guide(self, frame_index: int, time: float | None = None) -> Tracks:
        """Where the people matched by the last :meth:`update` will be in frame ``frame_index`` (at ``time``
        s, or None): ``guide_snapshot().guide(frame_index, time)``, the Kalman prediction to that frame
        stepped as :meth:`update` would step (:meth:`~stip_rt.track.guide.GuideSnapshot.guide`)."""
        return self.guide_snapshot().guide(frame_index, time)

    def track_states(self) -> dict[int, TrackState]:
        """Id → state of every track still held (tentative, confirmed or lost)."""
        tab = self._table
        return {i: TrackState(s) for i, s in zip(tab.ids.tolist(), tab.state.tolist())}

    # ------------------------------------------------------------------ steps
    def _new_clock(self) -> TrackClock:
        return TrackClock(self.fps, keep=self.backfill_frames + 2)

    def _expire_across_gap(self, frame: int, prev: int | None, dt: float) -> None:
        """Remove the tracks a gap before ``frame`` aged past their limit (:mod:`~stip_rt.track.clock`)."""
        extra = gap_extra(frame, prev, dt)
        if extra is None:
            return
        tab = self._table
        missed = self._clock.missed(frame, tab.last, tab.state)
        keep = gap_survivors(missed, extra, tab.state == TENTATIVE, self.config.tentative_max_misses, self.max_age)
        if not keep.all():
            tab.keep(keep)
            self._pending.keep_only(tab.ids)

    def _advance(self, frame_index: int, dt: float, time: float | None) -> tuple[int | None, int | None]:
        """Make ``frame_index`` the last frame (an accepted one); returns the previous frame and previous update."""
        self._late = {}
        return self._clock.advance(frame_index, dt, time)

    def _check_poses(self, poses: Poses, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:func:`~stip_rt.track.inputs.check_poses`; the first keypoints name the schema when none was given."""
        boxes, scores, kpts, schema = check_poses(poses, frame, self.schema)
        if schema is not None and schema is not self.schema:
            self.schema = schema
            self._sigmas = schema.sigmas_array()
            self._table.set_num_keypoints(schema.num_keypoints)
        return boxes, scores, kpts

    def _apply_matches(
        self,
        matches: np.ndarray,
        x_pred: np.ndarray,
        p_pred: np.ndarray,
        boxes: np.ndarray,
        kpts: np.ndarray | None,
        box_scores: np.ndarray,
        frame: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Kalman-correct the matched tracks, store every row's state and advance every lifecycle.

        Args:
            matches: (M, 2) (table row, person) pairs.
            x_pred: (T, 8) predicted states of all rows; p_pred: (T, 8, 8) their covariances.
            boxes: (N, 4) xyxy boxes of the people; kpts: (N, K, 3) or None.
            box_scores: (N,) their box scores.
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
        matched = tab.record_matches(x_pred, p_pred, rows, dets, boxes, kpts, box_scores, frame)
        old = tab.state
        gone = unreachable(x_pred, self.frame_size)  # lost tracks that can never match again end early
        missed = self._clock.missed(frame, tab.last, old)
        state = advance_states(old, tab.hits, missed, matched, cfg, self.max_age, gone)
        tab.state = state
        out = state[rows] == CONFIRMED
        tent = matches[~out]
        confirmed = rows[out & (old[rows] == TENTATIVE)]
        return rows[out], dets[out], x_post[out], tent, confirmed

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
        out_x: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start a track for each person in ``births``; output at once with ``min_hits`` 1 or on the
        tracker's first frame (``activate_first_frame``), else kept pending."""
        cfg = self.config
        tab = self._table
        b = boxes[births]
        ids = np.arange(self._next_id, self._next_id + births.size, dtype=np.int64)
        self._next_id += births.size
        confirmed = born_confirmed(cfg, first_frame)
        first = len(tab)
        x_new, p_new = initiate(b, cfg.kalman)
        state = CONFIRMED if confirmed else TENTATIVE
        kb = None if kpts is None else kpts[births]
        tab.append(x_new, p_new, ids, state, frame, b, kb, box_scores_of(poses)[births])
        if not confirmed:
            self._pending.add(ids, frame, births, out_boxes(x_new, b, cfg), poses, kpts)
            return out_rows, out_dets, out_x
        return (
            np.concatenate([out_rows, np.arange(first, len(tab))]),
            np.concatenate([out_dets, births]),
            np.concatenate([out_x, x_new]),
        )

    def _back_rows(self, ids: np.ndarray) -> dict[int, Tracks]:
        """Late rows of the just-confirmed tracks ``ids``, smoothed in frame order (before this frame)."""
        rows = self._pending.pop(ids)
        if not rows:
            return {}
        k = None if self.schema is None else self.schema.num_keypoints
        smooth = self._smooth if self.config.smoothing.enabled else None
        return smoothed_late_tracks(rows, self._table.ids, k, smooth)

    def _smooth(self, rows: np.ndarray, kpts: np.ndarray, frame: int) -> np.ndarray:
        """One-Euro over ``rows`` in ``frame`` (:func:`~stip_rt.track.output.smooth_rows`)."""
        return smooth_rows(self._table, rows, kpts, self._clock.seconds(frame), self.config)
