"""Cross-frame batching for the pose stage: which waiting frames share one network batch.

A pure policy (no threads, no models), used by the pose stage of :mod:`stip_rt.stages`:

* the pose stage takes **up to** ``limit`` consecutive frames that are **already waiting**; it
  never waits for more (an empty queue means: run what there is). Files use
  ``RunConfig.pose.batch_frames``; live sources always 1 (latency first), see :func:`batch_limit`;
* **detect-every-N**: a frame whose boxes come from the previous frame's tracks (not a detection
  frame, ``every`` > 1) cannot join a batch that holds that previous frame — its tracks exist
  only after the previous frame has been estimated *and* tracked. So such a frame can only
  **start** a batch (the pose stage first waits for the tracks of the frame before it); every
  later frame of a batch is a detection frame, whose boxes are known before any tracking;
* the results are released to the tracker one by one, in frame order, after the batch.

With ``every`` = 1 every frame is a detection frame and batches fill up to ``limit``. With
``every`` = N > 1 the frames ``D n n … n D n …`` form the batches ``[D] [n] … [n D] [n] …``:
only the frame before a detection frame shares its batch, so cross-frame batching gains little
there (detect-every-N already saves the detector's time instead).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


def batch_limit(batch_frames: int, live: bool) -> int:
    """Frames per pose batch at most: ``batch_frames`` for files, 1 for live sources."""
    return 1 if live else max(1, int(batch_frames))


def batch_length(needs_tracks: Sequence[bool], limit: int) -> int:
    """How many of the waiting frames form the next batch.

    Args:
        needs_tracks: for each waiting frame, in frame order, True when its boxes come from the
            previous frame's tracks (must not be empty).
        limit: frames per batch at most (≥ 1).

    Returns:
        n ≥ 1: the first frame always; then frames while fewer than ``limit`` and not needing tracks.
    """
    if not needs_tracks:
        raise ValueError("batch_length: no frame is waiting")
    n = 1
    while n < min(limit, len(needs_tracks)) and not needs_tracks[n]:
        n += 1
    return n


class FrameBatcher(Generic[T]):
    """Holds the frames taken from the pose stage's input queue and cuts them into batches.

    Usage on the pose thread (``get`` blocks, ``get_waiting`` returns None when nothing waits)::

        batcher = FrameBatcher(batch_limit(cfg.pose.batch_frames, live), lambda item: item.dets is None)
        while ...:
            if not batcher.pending:
                batcher.add(get())          # block for the first frame only
            batcher.fill(get_waiting)       # then take what is already there, never wait
            batch = batcher.take()

    Args:
        limit: frames per batch at most (:func:`batch_limit`).
        needs_tracks: True for a frame whose boxes come from the previous frame's tracks.
    """

    def __init__(self, limit: int, needs_tracks: Callable[[T], bool]) -> None:
        self.limit = max(1, int(limit))
        self._needs_tracks = needs_tracks
        self.pending: deque[T] = deque()

    def add(self, item: T) -> None:
        """Append the next frame (frame order)."""
        self.pending.append(item)

    def wants_more(self) -> bool:
        """True while another waiting frame could still join the next batch."""
        if len(self.pending) >= self.limit:
            return False
        return not any(self._needs_tracks(x) for x in list(self.pending)[1:])

    def fill(self, get_waiting: Callable[[], T | None]) -> None:
        """Take frames that are already waiting (``get_waiting`` returns None when none is) while useful."""
        while self.wants_more():
            item = get_waiting()
            if item is None:
                return
            self.pending.append(item)

    def take(self) -> list[T]:
        """The next batch (removed from :attr:`pending`); frames that cannot join stay for the next one."""
        n = batch_length([self._needs_tracks(x) for x in self.pending], self.limit)
        return [self.pending.popleft() for _ in range(n)]
