"""What the session has seen: per-track time on screen and people count over time (no Qt)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from stip_rt.types import FrameResult


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
    """Accumulates tracks and counts as results arrive; bounded memory for the plot series.

    Args:
        max_points: how many (time, value) points the plot series keep.
    """

    def __init__(self, max_points: int = 3000) -> None:
        self.spans: dict[int, TrackSpan] = {}
        self.times: deque[float] = deque(maxlen=max_points)
        self.people: deque[int] = deque(maxlen=max_points)
        self.frames = 0

    def clear(self) -> None:
        self.spans.clear()
        self.times.clear()
        self.people.clear()
        self.frames = 0

    def update(self, result: FrameResult) -> None:
        self.frames += 1
        self.times.append(result.time)
        self.people.append(len(result.tracks))
        for tid in result.tracks.ids.tolist():
            span = self.spans.get(tid)
            if span is None:
                self.spans[tid] = TrackSpan(tid, result.time, result.time, 1)
            else:
                span.last_time = result.time
                span.frames += 1
