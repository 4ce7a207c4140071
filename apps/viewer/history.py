"""What the session has seen (no Qt): every frame's tracks, per-track time on screen, people over time.

Frames are kept by frame index; a frame seen again after a seek replaces the earlier pass (the
tracker gives it new ids, so old and new tracks never merge). :meth:`SessionHistory.track_file`
turns what was seen into a :class:`~stip_rt.io.read.TrackFile` for :func:`stip_rt.analysis.movement`
and for exporting the whole run.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stip_rt.io.read import Skeleton, TrackFile, TrackFrame
from stip_rt.types import FrameResult, RunInfo, Tracks


@dataclass
class TrackSpan:
    """One track id's presence.

    Attributes:
        track_id: the id.
        first_time / last_time: seconds (source time) of the first and last frame it was seen.
        frames: number of frames it was on screen.
    """

    track_id: int
    first_time: float
    last_time: float
    frames: int

    def seconds_on_screen(self, fps: float) -> float:
        return self.frames / fps if fps > 0 else self.last_time - self.first_time


class SessionHistory:
    """Accumulates results as they arrive.

    Args:
        max_points: how many (time, value) points the people-count series keeps.
    """

    def __init__(self, max_points: int = 3000) -> None:
        self.spans: dict[int, TrackSpan] = {}
        self.times: deque[float] = deque(maxlen=max_points)
        self.people: deque[float] = deque(maxlen=max_points)
        self.frames = 0
        self.run: RunInfo | None = None
        self._seen: dict[int, tuple[float, Tracks]] = {}

    def clear(self) -> None:
        self.spans.clear()
        self.times.clear()
        self.people.clear()
        self._seen.clear()
        self.frames = 0
        self.run = None

    def update(self, result: FrameResult, run: RunInfo | None = None) -> None:
        """Add one frame's result (``run``: the run's header, kept for :meth:`track_file`)."""
        if run is not None:
            self.run = run
        self.frames += 1
        self.times.append(result.time)
        self.people.append(len(result.tracks))
        self._seen[result.index] = (result.time, result.tracks)
        for tid in result.tracks.ids.tolist():
            span = self.spans.get(tid)
            if span is None:
                self.spans[tid] = TrackSpan(tid, result.time, result.time, 1)
            else:
                span.last_time = result.time
                span.frames += 1

    def mark_break(self) -> None:
        """A seek: the people-count line is broken here instead of joining the two times."""
        if self.times and math.isfinite(self.times[-1]):
            self.times.append(math.nan)
            self.people.append(math.nan)

    @property
    def max_id(self) -> int:
        """The largest track id seen (0 when none)."""
        return max(self.spans, default=0)

    @property
    def frame_indices(self) -> list[int]:
        return sorted(self._seen)

    def tracks_at(self, index: int) -> Tracks | None:
        item = self._seen.get(index)
        return None if item is None else item[1]

    def results(self) -> list[FrameResult]:
        """Every frame seen, in frame order, as results without pictures (for writing with a sink)."""
        return [FrameResult(i, t, tracks, {}, None) for i, (t, tracks) in sorted(self._seen.items())]

    def track_file(self, track_ids: set[int] | None = None) -> TrackFile:
        """What was seen as a tracks file (in memory), optionally only some tracks.

        Raises:
            ValueError: nothing has been seen yet.
        """
        if self.run is None:
            raise ValueError("nothing seen yet")
        frames = []
        for i, (t, tracks) in sorted(self._seen.items()):
            if track_ids is not None:
                keep = np.isin(tracks.ids, list(track_ids))
                if not keep.any():
                    continue
                tracks = _rows(tracks, keep)
            frames.append(TrackFrame(i, t, tracks))
        schema = self.run.schema
        skeleton = None if schema is None else Skeleton(schema.name, schema.keypoints, schema.links)
        model = {"pose": self.run.pose_model, "detector": self.run.detector, "backend": self.run.backend}
        return TrackFile(Path("<stip-viewer>"), self.run.source, skeleton, model, tuple(frames))


def _rows(t: Tracks, keep: np.ndarray) -> Tracks:
    return Tracks(
        ids=t.ids[keep], boxes=t.boxes[keep], box_scores=t.box_scores[keep],
        keypoints=None if t.keypoints is None else t.keypoints[keep], scores=t.scores[keep],
        det_index=t.det_index[keep],
    )  # fmt: skip
