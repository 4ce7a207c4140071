"""What a live source does across its breaks: how long it is reconnected, and how its frames are numbered and timed.

**Reconnects** (:class:`ReconnectBudget`, one per live stream or camera):
``source.reconnect_retries`` reconnects are allowed, each after the back-off of its attempt
(:meth:`~stip_rt.io.source_config.SourceConfig.backoff`: ``reconnect_backoff_s`` doubling up to
``reconnect_backoff_max_s``). A reconnect that opens the stream again does not give the budget
back: only a stream that then runs for :data:`RECOVERED_AFTER_S` seconds without breaking counts as
recovered (its count and back-off start over). So a stream that reopens and breaks again at once,
over and over (a flapping camera, a server that accepts and then drops the connection), fails
after ``reconnect_retries`` reconnects instead of being retried forever; a stream that breaks
once an hour is reconnected every time.

**Frame numbers and times** (:class:`StreamTimeline`, video files and streams): a file's frames
keep the numbers and times of its container. A live stream starts at the first frame its
consumer takes (frame 0, time 0: the frames it sent while the run was still being set up are not
the run's, see :class:`~stip_rt.io.video_source.VideoSource`); after a reconnect its times are
those of the wall clock, so an outage stays in them, and its numbers skip the frames the outage
lasted (as frames dropped when the consumer is slower leave gaps): the tracker, which counts in
frames, and every export see the real gap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .source_config import SourceConfig

#: A live stream or camera not read within this many seconds of its open discards what it sends until it is read.
PREROLL_AFTER_S = 0.25

#: Seconds a reopened stream or camera must run without breaking before its reconnects are forgiven.
RECOVERED_AFTER_S = 60.0


class ReconnectBudget:
    """Counts the reconnects of one live source since it last ran steadily.

    Args:
        config: ``reconnect_retries`` and the back-off settings.
        clock: monotonic seconds (a test may pass its own).

    The source calls :meth:`broke` when its stream breaks (then gets the attempt numbers from
    :meth:`next_attempt` until one reopens it) and :meth:`reopened` when it is open again.
    """

    def __init__(self, config: SourceConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._clock = clock
        self._opened_at = clock()  # the source was opened just before its budget was made
        self._since: float | None = None  # when the current run of breaks began
        self.attempts = 0  # reconnect attempts since the source last ran steadily
        self.reopened = 0  # of those, the ones that opened the stream again (and it broke again)

    @property
    def retries(self) -> int:
        """Reconnect attempts allowed in one run of breaks (``source.reconnect_retries``)."""
        return self.config.reconnect_retries

    def broke(self) -> None:
        """The stream broke: a stream that ran :data:`RECOVERED_AFTER_S` since it was (re)opened starts afresh."""
        now = self._clock()
        if self._since is None or now - self._opened_at >= RECOVERED_AFTER_S:
            self._since, self.attempts, self.reopened = now, 0, 0

    def next_attempt(self) -> int | None:
        """The number (1-based) of the next reconnect attempt; None once ``reconnect_retries`` are used up."""
        if self.attempts >= self.retries:
            return None
        self.attempts += 1
        return self.attempts

    def wait(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt``."""
        return self.config.backoff(attempt)

    def reopened_now(self) -> None:
        """An attempt opened the stream again (its attempt stays counted until the stream runs steadily)."""
        self._opened_at = self._clock()
        self.reopened += 1

    def elapsed(self) -> float:
        """Seconds since the first break of the current run of breaks."""
        return 0.0 if self._since is None else self._clock() - self._since

    def summary(self) -> str:
        """The reconnects that did not bring the source back for good, for its error: ``5 reconnects in
        23 s, 4 of which reopened it but it broke again within 60 s each time``."""
        text = f"{self.attempts} reconnect{'s' if self.attempts != 1 else ''} in {self.elapsed():.0f} s"
        if self.reopened:
            each = " each time" if self.reopened > 1 else ""
            text += f", {self.reopened} of which reopened it but it broke again within {RECOVERED_AFTER_S:g} s{each}"
        return text

    def rule(self) -> str:
        """The rule, for that error."""
        return f"reconnects are counted until the source has run {RECOVERED_AFTER_S:g} s without breaking"


class StreamTimeline:
    """The number and time of each frame of a video file or stream, across reconnects.

    Args:
        fps: the stream's frame rate (numbers from times, times of frames without a pts).
        live: live stream (anchored to the wall clock, see the module docstring) or file.
        clock: monotonic seconds (a test may pass its own).

    Call :meth:`connect` for each (re)opened connection, then :meth:`frame` for each of its decoded
    frames that is handed on (or skipped by ``start``), in order.
    """

    def __init__(self, fps: float, live: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.fps = fps
        self.live = live
        self._clock = clock
        self._zero: float | None = None  # live: the clock at time 0
        self._start_pts: int | None = None
        self._anchor: tuple[int, int | None, int, float] | None = None  # (rank, pts, number, time) of the first frame
        self.last: tuple[int, float] | None = None  # (number, time) of the last frame

    def connect(self, start_pts: int | None = None) -> None:
        """A new connection (or the file): ``start_pts``, a file's stream start (None: its first frame's pts)."""
        self._start_pts = None if self.live else start_pts
        self._anchor = None

    def frame(self, rank: int, pts: int | None, time_base: Any) -> tuple[int, float]:
        """(number, seconds) of the frame of rank ``rank`` in this connection (a file: its true number).

        Args:
            rank: 0-based number of the frame in this connection (counted, or a file's true number).
            pts: its timestamp in ``time_base`` units, or None.
            time_base: the timestamp unit (a Fraction of a second), or None.
        """
        if self._anchor is None:
            self._anchor = self._anchor_at(rank, pts)
        a_rank, a_pts, a_number, a_time = self._anchor
        if pts is not None and time_base is not None and a_pts is not None:
            t = a_time + float((pts - a_pts) * time_base)
        else:
            t = a_time + (rank - a_rank) / self.fps
        n = a_number + rank - a_rank
        self.last = (n, t)
        return n, t

    def _anchor_at(self, rank: int, pts: int | None) -> tuple[int, int | None, int, float]:
        if not self.live:  # a file: its own numbers, times from its stream start
            return 0, self._start_pts if self._start_pts is not None else pts, 0, 0.0
        now = self._clock()
        if self._zero is None or self.last is None:  # the first frame handed over: frame 0 at time 0
            self._zero = now
            return rank, pts, 0, 0.0
        last_n, last_t = self.last
        t = max(now - self._zero, last_t + 1.0 / self.fps)  # the outage is kept (never backwards)
        return rank, pts, last_n + max(1, round((t - last_t) * self.fps)), t
