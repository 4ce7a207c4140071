"""Back-filling the frames a track spent tentative: the tracker's pending rows and a delayed output.

A new track is output only once it is confirmed (``min_hits`` matches), so without help its first
``min_hits - 1`` matched frames never reach a file. The tracker keeps each tentative track's output
rows in :class:`PendingRows`; when the track is confirmed it hands them out as "late" rows for
those earlier frames (:meth:`Tracker.backfill <stip_rt.track.tracker.Tracker.backfill>`).
:class:`DelayedOutput` holds every frame's tracks for ``Tracker.backfill_frames`` frames, adds the
late rows to the frames they belong to, and then releases the frames in order. For a file source
that delay costs nothing; a live source uses ``delay=0`` (rows are output from confirmation on).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np

from ..types import Poses, Tracks

if TYPE_CHECKING:
    from .tracker import Tracker

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PendingRow:
    """One output row of a tentative track.

    Attributes:
        frame: frame index of the match.
        det: index of the matched person in that frame's poses; -1 for a coasted frame (no detection).
        box: (4,) float64 output box xyxy px (Kalman posterior or detection, as ``output_box``).
        box_score: the person's box score; score: its person score.
        kpts: (K, 3) float64 raw keypoints, or None.
    """

    frame: int
    det: int
    box: np.ndarray
    box_score: float
    score: float
    kpts: np.ndarray | None


class PendingRows:
    """Output rows of tentative tracks, by track id, until the track is confirmed or removed."""

    def __init__(self) -> None:
        self._rows: dict[int, list[PendingRow]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self,
        ids: np.ndarray,
        frame: int,
        dets: np.ndarray,
        boxes: np.ndarray,
        poses: Poses,
        kpts: np.ndarray | None,
    ) -> None:
        """Remember the rows of tentative tracks ``ids`` matched in ``frame``.

        Args:
            ids: (R,) track ids; dets: (R,) their people in ``poses``; boxes: (R, 4) output boxes.
            frame: the frame index.
            poses: the frame's input (scores are taken from it).
            kpts: (N, K, 3) the frame's checked keypoints, or None.
        """
        box_scores = np.asarray(poses.box_scores, np.float64).reshape(-1)
        scores = np.asarray(poses.scores, np.float64).reshape(-1)
        for i, d, b in zip(ids.tolist(), dets.tolist(), boxes):
            k = None if kpts is None else kpts[d].copy()
            self._rows.setdefault(i, []).append(PendingRow(frame, d, b.copy(), box_scores[d], scores[d], k))

    def add_predicted(
        self, ids: np.ndarray, frame: int, boxes: np.ndarray, box_scores: np.ndarray, kpts: np.ndarray | None
    ) -> None:
        """Remember the rows of tentative tracks ``ids`` carried through ``frame`` without a detection
        (:meth:`Tracker.coast <stip_rt.track.tracker.Tracker.coast>`): ``det`` -1, score = box score.

        Args:
            ids: (R,) track ids; boxes: (R, 4) their predicted boxes; box_scores: (R,) their last box scores.
            frame: the frame index.
            kpts: (R, K, 3) their keypoints, or None.
        """
        for j, (i, b) in enumerate(zip(ids.tolist(), boxes)):
            k = None if kpts is None else kpts[j].copy()
            s = float(box_scores[j])
            self._rows.setdefault(i, []).append(PendingRow(frame, -1, b.copy(), s, s, k))

    def pop(self, ids: np.ndarray) -> dict[int, list[PendingRow]]:
        """The rows of tracks ``ids`` (just confirmed), forgotten here."""
        return {i: rows for i in ids.tolist() if (rows := self._rows.pop(i, None))}

    def keep_only(self, live_ids: np.ndarray) -> None:
        """Forget the rows of tracks that are no longer held (removed tentative tracks)."""
        if self._rows:
            live = set(live_ids.tolist())
            self._rows = {i: r for i, r in self._rows.items() if i in live}


def smoothed_late_tracks(
    rows: dict[int, list[PendingRow]],
    table_ids: np.ndarray,
    num_keypoints: int | None,
    smooth: Callable[[np.ndarray, np.ndarray, int], np.ndarray] | None,
) -> dict[int, Tracks]:
    """Late rows of just-confirmed tracks, their keypoints smoothed in frame order (:func:`late_tracks`).

    Args:
        rows: track id → its pending rows (:meth:`PendingRows.pop`).
        table_ids: (T,) ids of the tracker's table rows, increasing (the tracks of ``rows`` among them).
        num_keypoints: K, or None for box-only tracking.
        smooth: ``smooth(table_rows, (R, K, 3) keypoints, frame) -> (R, K, 3)``, the tracker's
            causal smoother (advances its state), or None when smoothing is off.
    """
    smoothed: dict[tuple[int, int], np.ndarray] = {}
    if num_keypoints is not None and smooth is not None:
        frames = sorted({r.frame for rs in rows.values() for r in rs if r.kpts is not None})
        for f in frames:
            pairs = [(i, r.kpts) for i, rs in rows.items() for r in rs if r.frame == f and r.kpts is not None]
            t_rows = table_ids.searchsorted([i for i, _ in pairs])
            out = smooth(t_rows, np.stack([kp for _, kp in pairs]).astype(np.float32), f)
            smoothed.update({(i, f): o for (i, _), o in zip(pairs, out)})
    return late_tracks(rows, smoothed, num_keypoints)


def late_tracks(
    rows: dict[int, list[PendingRow]], smoothed: dict[tuple[int, int], np.ndarray], num_keypoints: int | None
) -> dict[int, Tracks]:
    """Group late rows into one :class:`Tracks` per frame (rows sorted by id).

    Args:
        rows: track id → its pending rows.
        smoothed: (id, frame) → (K, 3) output keypoints (smoothed), for rows with keypoints.
        num_keypoints: K, or None for box-only tracking.
    """
    by_frame: dict[int, list[tuple[int, PendingRow]]] = {}
    for tid, rs in rows.items():
        for r in rs:
            by_frame.setdefault(r.frame, []).append((tid, r))
    out = {}
    for f, items in sorted(by_frame.items()):
        items.sort(key=lambda t: t[0])
        kp = None
        rows_kp = [r.kpts for _, r in items if r.kpts is not None]
        if num_keypoints is not None and len(rows_kp) == len(items):  # every row has keypoints
            kp = np.stack([smoothed.get((tid, f), k) for (tid, _), k in zip(items, rows_kp)]).astype(np.float32)
        out[f] = Tracks(
            ids=np.array([tid for tid, _ in items], np.int64),
            boxes=np.stack([r.box for _, r in items]).astype(np.float32),
            box_scores=np.array([r.box_score for _, r in items], np.float32),
            keypoints=kp,
            scores=np.array([r.score for _, r in items], np.float32),
            det_index=np.array([r.det for _, r in items], np.int64),
        )
    return out


def merge_tracks(a: Tracks, b: Tracks) -> Tracks:
    """Rows of ``a`` and ``b`` (disjoint ids) in one :class:`Tracks`, sorted by id."""
    if not len(b):
        return a
    if not len(a):
        return b
    order = np.argsort(np.concatenate([a.ids, b.ids]), kind="stable")
    kp = None
    if a.keypoints is not None and b.keypoints is not None:
        kp = np.concatenate([a.keypoints, b.keypoints])[order]
    return Tracks(
        ids=np.concatenate([a.ids, b.ids])[order],
        boxes=np.concatenate([a.boxes, b.boxes])[order],
        box_scores=np.concatenate([a.box_scores, b.box_scores])[order],
        keypoints=kp,
        scores=np.concatenate([a.scores, b.scores])[order],
        det_index=np.concatenate([a.det_index, b.det_index])[order],
    )


class DelayedOutput(Generic[T]):
    """A tracker whose output is held back so that every track is output from its first frame.

    Each frame's tracks (with any caller payload, e.g. the pipeline's frame item) are held until
    no track that was tentative in that frame can still be confirmed, i.e. for
    ``tracker.backfill_frames`` frames (2 with the defaults); the rows of tracks confirmed
    meanwhile are added to it. Frames come out in order, each exactly once; :meth:`flush` releases
    the rest at the end of the stream.

    Trade-off: ``delay`` frames of latency. Use it for files (the latency does not matter); for a
    live source pass ``delay=0``: frames then pass straight through and a track is output from the
    frame it is confirmed on (its tentative frames are not written).

    Args:
        tracker: the tracker (``update`` is called through this object only).
        delay: frames to hold; None = ``tracker.backfill_frames``; 0 = pass-through (live).

    Example:
        >>> out = DelayedOutput(Tracker(fps=25.0))  # doctest: +SKIP
        >>> for i, poses in enumerate(all_poses):  # doctest: +SKIP
        ...     for frame, tracks in out.update(poses, i, payload=i):
        ...         write(frame, tracks)
        >>> for frame, tracks in out.flush():  # doctest: +SKIP
        ...     write(frame, tracks)
    """

    def __init__(self, tracker: Tracker, delay: int | None = None) -> None:
        self.tracker = tracker
        self.delay = tracker.backfill_frames if delay is None else int(delay)
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {delay}")
        self.latest: Tracks | None = None  # the undelayed tracks of the last frame (e.g. for feedback)
        self._held: deque[list] = deque()  # [frame_index, payload, tracks]

    def update(
        self, poses: Poses, frame_index: int, payload: T = None, time: float | None = None  # type: ignore[assignment]
    ) -> list[tuple[T, Tracks]]:
        """Track one frame (``time``: its time in seconds, see :meth:`Tracker.update`); return the
        ``(payload, tracks)`` of the frames now complete, oldest first."""
        return self._hold(self.tracker.update(poses, frame_index, time), frame_index, payload)

    def coast(
        self, frame_index: int, payload: T = None, time: float | None = None  # type: ignore[assignment]
    ) -> list[tuple[T, Tracks]]:
        """Carry the tracks through a frame without detections (:meth:`Tracker.coast`); return the
        ``(payload, tracks)`` of the frames now complete, oldest first."""
        return self._hold(self.tracker.coast(frame_index, time), frame_index, payload)

    def _hold(self, tracks: Tracks, frame_index: int, payload: T) -> list[tuple[T, Tracks]]:
        """Hold this frame's tracks, add the tracker's late rows to the frames held, release the complete ones."""
        self.latest = tracks
        late = self.tracker.backfill()
        if late:
            held = {e[0]: e for e in self._held}
            for f, rows in late.items():
                entry = held.get(f)
                if entry is None:  # only with a delay shorter than backfill_frames (e.g. live)
                    log.debug("frame %d: %d late track rows dropped (already released)", f, len(rows))
                    continue
                entry[2] = merge_tracks(entry[2], rows)
        self._held.append([frame_index, payload, tracks])
        out = []
        while self._held and frame_index - self._held[0][0] >= self.delay:
            _, p, t = self._held.popleft()
            out.append((p, t))
        return out

    def flush(self) -> list[tuple[T, Tracks]]:
        """Release every frame still held (end of stream), oldest first."""
        out = [(p, t) for _, p, t in self._held]
        self._held.clear()
        return out
