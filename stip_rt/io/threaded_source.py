"""Decode on a background thread and hand frames over through a small buffer.

Files never drop a frame: the decode thread blocks when the buffer is full (back-pressure).
Live sources keep only the newest frame: when the consumer is slower, the older buffered
frame is discarded and counted in ``dropped`` (latency first).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator

from ..types import Frame, SourceInfo

log = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 15.0


class FrameBuffer:
    """A bounded hand-over between one producer thread and one consumer.

    Args:
        capacity: frames held at most (≥ 1).
        drop_oldest: when full, discard the oldest frame (live) instead of blocking the producer (files).
    """

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        self._items: deque[Frame] = deque()
        self._capacity = max(1, int(capacity))
        self._drop_oldest = drop_oldest
        self._cond = threading.Condition()
        self._finished = False
        self._error: BaseException | None = None
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame) -> bool:
        """Add a frame; returns False once the consumer has closed the buffer (the producer should stop)."""
        with self._cond:
            while len(self._items) >= self._capacity and not self._closed:
                if self._drop_oldest:
                    self._items.popleft()
                    self.dropped += 1
                    break
                self._cond.wait()
            if self._closed:
                return False
            self._items.append(frame)
            self._cond.notify_all()
            return True

    def finish(self, error: BaseException | None = None) -> None:
        """Producer side: no more frames; ``error`` is raised to the consumer after the buffered frames."""
        with self._cond:
            self._finished = True
            self._error = error
            self._cond.notify_all()

    def get(self) -> Frame | None:
        """Consumer side: the next frame, or None at the end. Raises the producer's error after the last frame."""
        with self._cond:
            while not self._items and not self._finished and not self._closed:
                self._cond.wait()
            if self._items:
                frame = self._items.popleft()
                self._cond.notify_all()
                return frame
            if self._error is not None:
                err, self._error = self._error, None
                raise err
            return None

    def close(self) -> None:
        """Consumer side: stop; wakes a blocked producer, which then sees ``put`` return False."""
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()


class ThreadedSource:
    """Base of the sources: runs :meth:`_produce` on a daemon thread, feeding a :class:`FrameBuffer`.

    Subclasses set ``info`` and implement ``_produce`` (a generator of frames, run on the thread,
    that frees its file/stream/camera in ``finally``) and ``_release`` (frees what the constructor
    opened when the source is closed before iteration started). The thread starts on the first
    iteration; the source closes itself when the frames run out, on ``max_frames``, or on an error.

    Attributes:
        info: the source's metadata.
        live: True when frames may be dropped (cameras, network streams).
        max_frames: stop after this many frames (None: all).
        dropped: frames discarded because the consumer was slower (always 0 for files).
    """

    def __init__(self, info: SourceInfo, *, max_frames: int | None, buffer_size: int) -> None:
        self.info = info
        self.live = info.live
        self.max_frames = max_frames
        self._stop = threading.Event()
        self._buffer = FrameBuffer(1 if info.live else buffer_size, drop_oldest=info.live)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._yielded = 0

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    def _produce(self) -> Iterator[Frame]:
        raise NotImplementedError(f"{type(self).__name__} must implement _produce")

    def _release(self) -> None:
        """Free what the constructor opened (only called when the thread never ran)."""

    def _run(self) -> None:
        error: BaseException | None = None
        frames = self._produce()
        try:
            for n, frame in enumerate(frames, start=1):
                if self._stop.is_set() or not self._buffer.put(frame):
                    break
                if not self.live and self.max_frames is not None and n >= self.max_frames:
                    break
        except BaseException as e:  # handed over to the consumer thread, which raises it
            error = e
        finally:
            frames.close()  # runs the generator's finally: the container/camera is released on this thread
            self._buffer.finish(error)

    def __iter__(self) -> Iterator[Frame]:
        if self._closed:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"source:{self.info.uri}", daemon=True)
            self._thread.start()
        while self.max_frames is None or self._yielded < self.max_frames:
            try:
                frame = self._buffer.get()
            except BaseException:
                self.close()
                raise
            if frame is None:
                break
            self._yielded += 1
            yield frame
        # exhausted; a consumer that breaks out early keeps the source open until close()
        self.close()

    def close(self) -> None:
        """Stop decoding and free the file, stream or camera. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._buffer.close()
        if self._thread is None:
            self._release()
            return
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("source %s: decode thread did not stop within %.0f s", self.info.uri, _JOIN_TIMEOUT_S)

    def __enter__(self) -> ThreadedSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
