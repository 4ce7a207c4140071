"""The tracker's clock: which frames it saw, how far apart they are, and how a frame ages the tracks.

:class:`TrackClock` holds the frame bookkeeping of one :class:`~stip_rt.track.tracker.Tracker`: the last
frame (updated or coasted), the last update, the last frame's time, the recent frames' times in frames
of ``fps`` (the keypoint smoothing's clock) and the coasted frames that are not misses of tentative
tracks. The step between two frames comes from their numbers or times
(:func:`~stip_rt.track.inputs.frame_step`); :func:`gap_extra` and :func:`gap_survivors` say which tracks
a gap in them ages out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .inputs import frame_step
from .lifecycle import TENTATIVE


@dataclass(slots=True)
class TrackClock:
    """Frame numbers and times seen by a tracker (mutable; one per tracker, new on ``reset``).

    Attributes:
        fps: frames per second of the source.
        keep: the most recent frames whose smoothing clock is kept (late rows need them).
        last_frame: the last frame given to ``update`` or ``coast``, or None.
        last_update: the last frame given to ``update`` (not coasted), or None.
        last_time: the last frame's time (s), or None.
        clocks: frame → its time in frames of ``fps`` (the frame number while frames are evenly spaced).
        coasted: coasted frames after the oldest track's last match (not misses of tentative tracks).
    """

    fps: float
    keep: int
    last_frame: int | None = None
    last_update: int | None = None
    last_time: float | None = None
    clocks: dict[int, float] = field(default_factory=dict)
    coasted: list[int] = field(default_factory=list)

    def step(self, frame_index: int, time: float | None) -> float:
        """Frames from the last frame to ``frame_index`` (:func:`~stip_rt.track.inputs.frame_step`); no change.

        Raises:
            DataError: a frame index that is not an integer or does not increase.
        """
        return frame_step(frame_index, self.last_frame, time, self.last_time, self.fps)

    def advance(self, frame_index: int, dt: float, time: float | None) -> tuple[int | None, int | None]:
        """Make ``frame_index`` (``dt`` frames on, at ``time``) the last frame; returns the previous frame
        and the previous update."""
        prev, prev_update = self.last_frame, self.last_update
        self.last_frame = int(frame_index)
        self.last_time = time
        self.clocks[int(frame_index)] = frame_index if prev is None else self.clocks[prev] + dt
        if len(self.clocks) > self.keep:
            del self.clocks[min(self.clocks)]
        return prev, prev_update

    def seconds(self, frame: int) -> float:
        """The smoothing's time of ``frame`` in seconds (its clock, or its number when too old)."""
        return self.clocks.get(frame, frame) / self.fps

    def coasts_since(self, last: np.ndarray) -> np.ndarray:
        """(T,) coasted frames after each track's last match ``last`` (T,)."""
        coasted = np.asarray(self.coasted, np.int64)
        return coasted.size - coasted.searchsorted(last, side="right")

    def missed(self, frame: int, last: np.ndarray, state: np.ndarray) -> np.ndarray:
        """(T,) frames from each track's last match ``last`` to ``frame`` that age it: coasted frames (no
        detector ran) are not misses of a tentative track (``state``); a lost or confirmed track ages by
        time, every frame."""
        missed = frame - last
        if self.coasted:  # (measured on vtest.avi: ageing lost tracks by coasted frames too is better at 10)
            missed = missed - np.where(state == TENTATIVE, self.coasts_since(last), 0)
        return missed

    def forget_coasts(self, last: np.ndarray) -> None:
        """Drop the coasted frames no track's age needs (before every track's last match ``last``)."""
        if self.coasted:
            oldest = int(last.min()) if last.size else self.coasted[-1]
            self.coasted = [f for f in self.coasted if f > oldest]


def gap_extra(frame: int, prev: int | None, dt: float) -> float | None:
    """Frames of time beyond the frame numbers in a gap before ``frame``; None when there is no gap.

    A gap is ``frame`` more than one after ``prev`` (the frame before; None: none), or a step ``dt``
    (frames of time, :meth:`TrackClock.step`) longer than the frame numbers say.
    """
    frames = 1 if prev is None else frame - prev
    if frames <= 1 and dt <= frames:
        return None
    return max(0.0, dt - frames)


def gap_survivors(
    missed: np.ndarray, extra: float, tentative: np.ndarray, tentative_max_misses: int, max_age: int
) -> np.ndarray:
    """(T,) True for the tracks a gap leaves alive: had every frame come, a track lost for more than
    ``max_age`` frames or tentative for more than ``tentative_max_misses`` would be gone.

    The time beyond the frame numbers (``extra``, :func:`gap_extra`) counts towards ``max_age``
    (``max_age_s`` is a time: a video recorded of a live run keeps an outage in its times only), not
    towards the misses of tentative tracks (a stall of a variable-frame-rate video misses no frame).

    Args:
        missed: (T,) each track's frames that age it (:meth:`TrackClock.missed`).
        extra: frames of time beyond the frame numbers.
        tentative: (T,) True for tentative tracks.
        tentative_max_misses, max_age: the limits, in frames.
    """
    limit = np.where(tentative, tentative_max_misses, max_age) + 1
    return missed + np.where(tentative, 0.0, extra) <= limit
