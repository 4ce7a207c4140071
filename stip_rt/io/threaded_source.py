"""Decode on one background thread and hand frames over through one small buffer.

This is the single home of the source's buffering policy:

* files never drop a frame: the reader thread blocks when the buffer is full (back-pressure);
* live sources keep only the newest frame (a buffer of one): when the consumer is slower, the
  waiting frame is replaced by the newer one and counted in ``dropped`` (latency first).

A live source therefore runs exactly one reader thread and one buffer. Its consumer (the
pipeline's first stage) takes frames with :meth:`ThreadedSource.read` straight from that buffer
and needs neither a thread nor a queue of its own; :func:`frame_feed` gives any other
:class:`~stip_rt.io.base.Source` (test fakes, replayed captures) the same reader thread and buffer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..types import Frame, SourceInfo
from .base import Source

log = logging.getLogger(__name__)

_JOIN_TIMEOUT_S = 15.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Captured:
    """A frame as the reader thread produced it.

    Attributes:
        frame: the decoded frame.
        t_capture: ``time.perf_counter()`` when it was decoded (start of its latency).
        decode_s: seconds the reader thread spent producing it (decode, or the camera's wait).
    """

    frame: Frame
    t_capture: float
    decode_s: float


class FrameBuffer(Generic[T]):
    """A bounded hand-over between one producer thread and one consumer.

    Args:
        capacity: items held at most (≥ 1).
        drop_oldest: when full, discard the oldest item (live) instead of blocking the producer (files).
    """

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        self._items: deque[T] = deque()
        self._capacity = max(1, int(capacity))
        self._drop_oldest = drop_oldest
        self._cond = threading.Condition()
        self._finished = False
        self._error: BaseException | None = None
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> bool:
        """Add an item; returns False once the consumer has closed the buffer (the producer should stop)."""
        with self._cond:
            while len(self._items) >= self._capacity and not self._closed:
                if self._drop_oldest:
                    self._items.popleft()
                    self.dropped += 1
                    break
                self._cond.wait()
            if self._closed:
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def finish(self, error: BaseException | None = None) -> None:
        """Producer side: no more items; ``error`` is raised to the consumer after the buffered items."""
        with self._cond:
            self._finished = True
            self._error = error
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """Consumer side: the next item, or None at the end.

        Args:
            timeout: seconds to wait at most (None: until an item or the end comes).

        Raises:
            queue.Empty: nothing came within ``timeout`` (the producer is still running).
            BaseException: the producer's error, after the last buffered item.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items and not self._finished and not self._closed:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise queue.Empty
                self._cond.wait(left)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
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
    """Base of the sources: runs :meth:`_produce` on one daemon thread, feeding one :class:`FrameBuffer`.

    Subclasses set ``info`` and implement ``_produce`` (a generator of frames, run on the thread,
    that frees its file/stream/camera in ``finally``) and ``_release`` (frees what the constructor
    opened when the source is closed before reading started). The thread starts on the first
    :meth:`read` or iteration (a live stream may start it earlier, to keep its connection drained,
    and skip the frames it decodes before ``_reading`` is set: see
    :class:`~stip_rt.io.video_source.VideoSource`); iteration closes the source when the frames run
    out, on ``max_frames``, or on an error (:meth:`read` leaves closing to its caller).

    Attributes:
        info: the source's metadata.
        live: True when frames may be dropped (cameras, network streams): the buffer holds one frame.
        max_frames: stop after this many frames (None: all).
        dropped: frames discarded because the consumer was slower (always 0 for files).
    """

    def __init__(self, info: SourceInfo, *, max_frames: int | None, buffer_size: int) -> None:
        self.info = info
        self.live = info.live
        self.max_frames = max_frames
        self._stop = threading.Event()
        self._buffer: FrameBuffer[Captured] = FrameBuffer(1 if info.live else buffer_size, drop_oldest=info.live)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._yielded = 0
        self._reading = threading.Event()  # the consumer has asked for a frame (the end of a live stream's pre-roll)
        self._reading_since = 0.0  # time.perf_counter() when it first did

    @property
    def dropped(self) -> int:
        return self._buffer.dropped

    def _produce(self) -> Iterator[Frame]:
        raise NotImplementedError(f"{type(self).__name__} must implement _produce")

    def _release(self) -> None:
        """Free what the constructor opened (only called when the thread never ran)."""

    def _interrupt(self) -> None:
        """Wake a reader thread blocked inside :meth:`_produce` (called by :meth:`close` before joining it)."""

    def _run(self) -> None:
        error: BaseException | None = None
        frames = self._produce()
        n = 0
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                t1 = time.perf_counter()
                t0 = max(t0, self._reading_since)  # not the pre-roll's time (frames nobody asked for)
                n += 1
                if self._stop.is_set() or not self._buffer.put(Captured(frame, t1, t1 - t0)):
                    break
                if not self.live and self.max_frames is not None and n >= self.max_frames:
                    break
        except BaseException as e:  # handed over to the consumer thread, which raises it
            error = e
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # runs the generator's finally: the container/camera is released on this thread
            self._buffer.finish(error)

    def start_reader(self) -> None:
        """Start the reader thread (idempotent; :meth:`read` and iteration call it)."""
        with self._start_lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name=f"source:{self.info.uri}", daemon=True)
                self._thread.start()

    def read(self, timeout: float | None = None) -> Captured | None:
        """The next frame from the buffer, with its capture time; None at the end (or after ``max_frames``).

        The pipeline's first stage calls this directly: the source's buffer is the pipeline's
        source queue (files: back-pressure; live: only the newest frame waits).

        Args:
            timeout: seconds to wait at most (None: until a frame or the end comes).

        Raises:
            queue.Empty: no frame within ``timeout`` (poll again, e.g. after checking a stop flag).
            StipError: the reader thread's error, after every frame decoded before it.
        """
        if self._closed or (self.max_frames is not None and self._yielded >= self.max_frames):
            return None
        if not self._reading.is_set():
            self._reading_since = time.perf_counter()
            self._reading.set()
        self.start_reader()
        got = self._buffer.get(timeout)
        if got is not None:
            self._yielded += 1
        return got

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                got = self.read()
            except BaseException:
                self.close()
                raise
            if got is None:
                break
            yield got.frame
        # exhausted; a consumer that breaks out early keeps the source open until close()
        self.close()

    def close(self) -> None:
        """Stop decoding and free the file, stream or camera. Safe to call more than once."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._buffer.close()
        if self._thread is None:
            self._release()
            return
        self._interrupt()
        if self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("source %s: decode thread did not stop within %.0f s", self.info.uri, _JOIN_TIMEOUT_S)

    def __enter__(self) -> ThreadedSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class IterableSource(ThreadedSource):
    """Any :class:`~stip_rt.io.base.Source` behind the one reader thread and buffer of :class:`ThreadedSource`.

    Args:
        source: iterated on the reader thread; closed with this object.
        buffer_size: frames read ahead for a file (a live source holds one).
    """

    def __init__(self, source: Source, buffer_size: int = 8) -> None:
        super().__init__(source.info, max_frames=None, buffer_size=buffer_size)
        self.source = source

    @property
    def dropped(self) -> int:
        return self._buffer.dropped + int(getattr(self.source, "dropped", 0))

    def _produce(self) -> Iterator[Frame]:
        yield from self.source  # closing this generator closes the source's iterator too

    def _release(self) -> None:
        self.source.close()

    def _interrupt(self) -> None:
        self.source.close()  # a source blocked waiting for its next frame ends its iteration


def frame_feed(source: Source, buffer_size: int = 8) -> ThreadedSource:
    """``source`` as something to :meth:`~ThreadedSource.read` from: itself when it already runs its own
    reader thread, else wrapped in an :class:`IterableSource` (one reader thread, one buffer either way).

    Args:
        source: an opened source.
        buffer_size: frames read ahead when ``source`` is wrapped and not live.
    """
    return source if isinstance(source, ThreadedSource) else IterableSource(source, buffer_size)
