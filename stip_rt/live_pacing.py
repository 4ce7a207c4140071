"""Live input: when the detect thread takes the next frame from the source (latency first).

Live sources drop frames in one place only, the source's buffer of one (it keeps the newest
frame, :mod:`stip_rt.io.threaded_source`). Everything taken from it is detected, estimated,
tracked and written. So the age of a result is decided by *when* the detect thread takes a frame:

* taken too early, a detected frame waits in the detect → pose queue while the (slow) pose stage
  finishes the frame before it: up to one pose time of extra latency (two, if the detect thread
  also blocks holding the next one);
* taken only once the pose stage is idle, detection no longer overlaps with pose: lower frames/s.

:class:`LivePacer` takes it *just in time*: while the pose stage is busy with one batch, the next
frame is taken when ``pose time − detect time`` has passed since that batch started (both
smoothed over recent frames), so its detection ends about when the pose stage becomes free; at
most one frame is taken per pose batch; when the pose stage is idle the next frame is taken at
once. Frames/s stays that of the slowest stage; latency ≈ frame interval + detect + pose.

Files are not paced (every frame is processed; back-pressure alone bounds the queues).
"""

from __future__ import annotations

import threading
import time

_POLL = 0.05  # seconds between checks of the cancel flag
_SMOOTHING = 0.3  # weight of the newest measurement in the running averages


class LivePacer:
    """Tells the detect thread when to take the next live frame (see the module docstring).

    Args:
        live: pace (live source); False: :meth:`wait_turn` never waits (files).

    The pose thread calls :meth:`pose_ready` before it looks for its next input and
    :meth:`pose_busy` when it has taken a batch; the detect thread calls :meth:`wait_turn` before
    reading, :meth:`took_frame` once it got a frame, and :meth:`detected` with the time it spent on it.
    """

    def __init__(self, live: bool) -> None:
        self.live = live
        self._cond = threading.Condition()
        self._cycle = 0  # pose batches started so far
        self._fed = -1  # value of _cycle when the detect thread last took a frame
        self._idle = True  # the pose stage is waiting for input
        self._busy_since = 0.0
        self._pose_s = 0.0  # smoothed seconds per pose batch (take → ready for the next)
        self._detect_s = 0.0  # smoothed seconds of the detect thread per frame

    # ---------------------------------------------------------------- pose thread

    def pose_ready(self, input_waiting: bool) -> None:
        """The pose stage finished its batch (or starts); ``input_waiting``: a frame is already queued."""
        with self._cond:
            if self._cycle > 0 and not self._idle:
                self._pose_s = _smooth(self._pose_s, time.perf_counter() - self._busy_since)
            self._idle = not input_waiting
            self._cond.notify_all()

    def pose_busy(self) -> None:
        """The pose stage took a batch."""
        with self._cond:
            self._cycle += 1
            self._idle = False
            self._busy_since = time.perf_counter()
            self._cond.notify_all()

    # ---------------------------------------------------------------- detect thread

    def wait_turn(self, cancel: threading.Event) -> bool:
        """Block until the next frame should be taken; False when ``cancel`` was set first."""
        if not self.live:
            return not cancel.is_set()
        with self._cond:
            while not cancel.is_set():
                if self._fed < self._cycle:  # nothing taken yet for the pose stage's next batch
                    if self._idle:
                        return True
                    left = self._busy_since + self._pose_s - self._detect_s - time.perf_counter()
                    if left <= 0:
                        return True
                    self._cond.wait(min(left, _POLL))
                else:
                    self._cond.wait(_POLL)
            return False

    def took_frame(self) -> None:
        """The detect thread got a frame from the source (it will start the pose stage's next batch)."""
        with self._cond:
            self._fed = self._cycle

    def detected(self, seconds: float) -> None:
        """Seconds the detect thread spent on the frame it took (detection included)."""
        with self._cond:
            self._detect_s = _smooth(self._detect_s, seconds)


def _smooth(average: float, value: float) -> float:
    return value if average == 0.0 else (1 - _SMOOTHING) * average + _SMOOTHING * value
