"""The source's one reader thread and one buffer: read(timeout), frame_feed, live drops at the source only."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stip_rt.io.sources import open_source
from stip_rt.io.threaded_source import FrameBuffer, IterableSource, ThreadedSource, frame_feed
from stip_rt.types import Frame, SourceInfo


class _Paced:
    """A plain (non-threaded) source yielding ``n`` frames every ``delay`` seconds."""

    def __init__(self, n: int, delay: float, live: bool) -> None:
        self.info = SourceInfo("paced", 8, 6, 100.0, None if live else n, live)
        self.n, self.delay, self.dropped, self.closed = n, delay, 0, 0

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.n):
            time.sleep(self.delay)
            yield Frame(i, i / 100, np.zeros((6, 8, 3), np.uint8))

    def close(self) -> None:
        self.closed += 1


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_live_source_is_its_own_feed_with_one_thread_and_newest_frames(data_dir: Path) -> None:
    before = set(threading.enumerate())
    src = open_source(data_dir / "mot15" / "TUD-Campus" / "TUD-Campus.mp4", live=True)
    assert frame_feed(src) is src
    seen: list[int] = []
    threads: list[int] = []
    t_prev = 0.0
    try:
        while (got := src.read(timeout=10)) is not None:
            new = _new_threads(before)  # the reader thread (while it runs), nothing else
            assert all(t.name.startswith("source:") for t in new)
            threads.append(len(new))
            assert got.t_capture > t_prev and got.decode_s >= 0
            t_prev = got.t_capture
            seen.append(got.frame.index)
            time.sleep(0.01)  # slower than decoding: the buffer of one keeps only the newest
    finally:
        src.close()
    assert np.all(np.diff(seen) > 0) and src.dropped > 0
    assert len(seen) + src.dropped == 71  # every decoded frame was delivered or counted, once
    assert max(threads) <= 1
    assert _new_threads(before) == []


def test_plain_live_source_gets_one_reader_thread_and_a_buffer_of_one() -> None:
    inner = _Paced(40, 0.001, live=True)
    before = set(threading.enumerate())
    feed = frame_feed(inner)
    assert isinstance(feed, IterableSource) and feed.live
    seen, threads = [], []
    while (got := feed.read(timeout=10)) is not None:
        threads.append(len(_new_threads(before)))
        seen.append(got.frame.index)
        time.sleep(0.01)
    feed.close()
    assert np.all(np.diff(seen) > 0) and len(seen) + feed.dropped == 40 and feed.dropped > 0
    assert threads[0] == 1 and max(threads) == 1
    assert inner.closed >= 1 and _new_threads(before) == []


def test_plain_file_source_never_drops() -> None:
    feed = frame_feed(_Paced(6, 0.0, live=False), buffer_size=2)
    seen = []
    while (got := feed.read(timeout=10)) is not None:
        time.sleep(0.01)
        seen.append(got.frame.index)
    feed.close()
    assert seen == list(range(6)) and feed.dropped == 0


def test_read_times_out_then_delivers_and_stops_at_max_frames(data_dir: Path) -> None:
    slow = frame_feed(_Paced(3, 0.3, live=False))
    with pytest.raises(queue.Empty):
        slow.read(timeout=0.01)
    assert slow.read(timeout=10).frame.index == 0
    slow.close()
    assert slow.read(timeout=10) is None  # closed: the end
    src = open_source(data_dir / "opencv_samples" / "vtest.avi", max_frames=3)
    assert isinstance(src, ThreadedSource)
    got = [src.read(timeout=10) for _ in range(4)]
    src.close()
    assert [g.frame.index for g in got[:3]] == [0, 1, 2] and got[3] is None


def test_buffer_get_timeout() -> None:
    buf: FrameBuffer[int] = FrameBuffer(2, drop_oldest=False)
    with pytest.raises(queue.Empty):
        buf.get(timeout=0.01)
    buf.put(5)
    assert buf.get(timeout=0.01) == 5
    buf.finish()
    assert buf.get(timeout=0.01) is None


def test_closing_a_plain_source_before_reading_closes_it() -> None:
    inner = _Paced(3, 0.0, live=False)
    feed = frame_feed(inner)
    feed.close()
    assert inner.closed == 1 and feed.read() is None


class _Blocking:
    """A plain live source whose second frame never comes until it is closed (a stalled camera)."""

    def __init__(self) -> None:
        self.info = SourceInfo("stalled", 8, 6, 25.0, None, True)
        self.dropped = 0
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, np.zeros((6, 8, 3), np.uint8))
        self._closed.wait()

    def close(self) -> None:
        self._closed.set()


def test_close_wakes_a_reader_blocked_in_a_plain_source() -> None:
    feed = frame_feed(_Blocking())
    assert feed.read(timeout=10).frame.index == 0
    feed.close()  # without waking the reader, the join would give up after 15 s with the thread alive
    assert feed._thread is not None and not feed._thread.is_alive()
