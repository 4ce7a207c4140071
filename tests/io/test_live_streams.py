"""Live streams and cameras across their lives: a stream that keeps breaking fails (bounded
reconnects), a stream read late starts fresh at its first read, an outage stays in the frame
times and numbers."""

from __future__ import annotations

import logging
import re
import time

import numpy as np
import pytest
from fake_streams import FakeStream, reset, serve_cameras, serve_streams

from stip_rt.errors import SourceError
from stip_rt.io import live_stream
from stip_rt.io.live_stream import ReconnectBudget, StreamTimeline
from stip_rt.io.source_config import SourceConfig
from stip_rt.io.sources import open_source

FAST_RETRY = SourceConfig(reconnect_retries=2, reconnect_backoff_s=0.01, reconnect_backoff_max_s=0.02)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- reconnects


def test_reconnects_are_counted_until_the_source_runs_a_minute_without_breaking() -> None:
    clock = Clock()
    budget = ReconnectBudget(SourceConfig(reconnect_retries=3, reconnect_backoff_s=0.5), clock)
    waits = []
    for _ in range(3):  # breaks again 2 s after each reopen: the back-off keeps growing
        clock.now += 2.0
        budget.broke()
        attempt = budget.next_attempt()
        assert attempt is not None
        waits.append(budget.wait(attempt))
        budget.reopened_now()
    clock.now += 2.0
    budget.broke()
    assert waits == [0.5, 1.0, 2.0] and budget.next_attempt() is None  # the 4th break: used up
    assert budget.summary() == "3 reconnects in 6 s, 3 of which reopened it but it broke again within 60 s each time"

    steady = ReconnectBudget(SourceConfig(reconnect_retries=1), clock)
    for _ in range(5):  # breaks once every 2 minutes: each reconnect is forgiven, always the first wait
        clock.now += live_stream.RECOVERED_AFTER_S + 60.0
        steady.broke()
        assert steady.next_attempt() == 1
        steady.reopened_now()


def test_a_stream_that_keeps_breaking_fails_after_the_retries(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Each reconnect opens the stream, which breaks again after one frame. Reopening it was once
    counted as a success (the count started over), so it was retried forever: here the 6th open
    would have ended the stream quietly."""
    opened = serve_streams(monkeypatch, lambda i: FakeStream(1, reset()) if i < 6 else FakeStream(0))
    got = []
    with (
        caplog.at_level(logging.WARNING),
        open_source("rtsp://admin:S3cret@cam.local/live", config=FAST_RETRY) as src,
        pytest.raises(SourceError) as err,
    ):
        for f in src:
            got.append(f.index)
    msg = str(err.value)
    assert re.match(r"rtsp://admin:\*\*\*@cam.local/live: the stream keeps breaking: 2 reconnects in \d+ s, 2 of", msg)
    assert "reopened it but it broke again within 60 s each time; the last break came after frame" in msg
    assert "connection reset by peer" in msg and "source.reconnect_retries=2" in msg and "S3cret" not in msg
    assert len(opened) == 3 and len(got) + src.dropped == 3  # the first open and 2 reconnects, a frame each
    assert caplog.text.count("reconnecting in") == 2 and "S3cret" not in caplog.text  # each reconnect is logged


def test_a_stream_that_runs_a_while_between_breaks_is_reconnected_each_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_stream, "RECOVERED_AFTER_S", 0.05)  # "a minute", shortened
    opened = serve_streams(monkeypatch, lambda i: FakeStream(2, reset(), paced=True) if i < 5 else FakeStream(2))
    with open_source("rtsp://cam.local/live", config=FAST_RETRY) as src:
        got = [f.index for f in src]
    assert len(opened) == 6 and len(got) + src.dropped == 12  # 5 breaks, each after 0.1 s of frames


def test_a_camera_that_keeps_stopping_fails_after_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    cameras = serve_cameras(monkeypatch, [2] * 9 + [None], fps=30.0)  # 2 frames per open; from the 10th on it works
    with open_source(3, max_frames=40, config=FAST_RETRY) as src, pytest.raises(SourceError) as err:
        for _ in src:
            pass
    assert re.match(r"camera 3: keeps stopping: 2 reconnects in \d+ s, 2 of which reopened it", str(err.value))
    assert "source.reconnect_retries=2" in str(err.value) and len(cameras.instances) == 3


# ---------------------------------------------------------------- the start


def test_a_stream_read_late_starts_fresh_at_its_first_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run reads a stream a while after opening it (models are being built). The frames it
    sent meanwhile piled up and were then decoded in a burst: stale, and dropped by a consumer
    that only keeps up with the stream's own rate. Now the first frame taken is the stream's
    newest one, numbered 0 at time 0."""
    stream = FakeStream(200, fps=20, paced=True)
    serve_streams(monkeypatch, [stream])
    with open_source("rtsp://cam.local/live") as src:
        time.sleep(1.0)  # 20 frames sent before the first read
        frames = []
        for f in src:
            frames.append(f)
            if len(frames) == 5:
                break
    sent = [int(f.image[0, 0, 0]) for f in frames]  # the frame's number in the stream as sent
    assert sent[0] >= 10, sent  # not one of the frames sent long before the read
    assert [f.index for f in frames] == [s - sent[0] for s in sent] and frames[0].index == 0
    assert frames[0].time == 0.0 and np.allclose([f.time for f in frames], [f.index / 20 for f in frames])
    assert stream.closed


def test_a_stream_read_at_once_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    serve_streams(monkeypatch, [FakeStream(6)])  # all frames at once, read at once: nothing discarded
    with open_source("rtsp://cam.local/live") as src:
        frames = list(src)
    assert len(frames) + src.dropped == 6 and frames[-1].index == 5 and int(frames[-1].image[0, 0, 0]) == 5


def test_a_stream_closed_before_it_is_read_frees_its_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = FakeStream(10**6, fps=50, paced=True)
    serve_streams(monkeypatch, [stream])
    src = open_source("rtsp://cam.local/live")
    time.sleep(0.4)  # draining
    src.close()
    assert stream.closed and src._thread is not None and not src._thread.is_alive()


# ---------------------------------------------------------------- outages


def test_an_outage_stays_in_the_frame_times_and_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stream is away for at least the 0.5 s back-off: the times after the reconnect continue
    from the wall clock and the numbers skip the frames it lasted (at 10 fps: 5 or more), where
    they once went on as if no time had passed (frame 3 at 0.3 s)."""
    serve_streams(monkeypatch, [FakeStream(3, reset(), paced=True), FakeStream(2, paced=True)])
    config = SourceConfig(reconnect_retries=1, reconnect_backoff_s=0.5)
    with open_source("rtsp://cam.local/live", config=config) as src:
        frames = list(src)
    assert [f.index for f in frames[:3]] == [0, 1, 2] and [f.time for f in frames[:3]] == pytest.approx([0, 0.1, 0.2])
    gap_s = frames[3].time - frames[2].time
    assert gap_s > 0.45 and frames[3].index - frames[2].index == round(gap_s * 10) >= 5
    assert frames[4].index == frames[3].index + 1 and frames[4].time == pytest.approx(frames[3].time + 0.1)


def test_timeline_numbers_files_as_their_container_and_live_streams_by_the_clock() -> None:
    from fractions import Fraction

    tb = Fraction(1, 10)
    file = StreamTimeline(10.0, live=False)
    file.connect(start_pts=100)
    assert [file.frame(k, 100 + k, tb) for k in (0, 1, 5)] == [(0, 0.0), (1, 0.1), (5, 0.5)]
    clock = Clock()
    live = StreamTimeline(10.0, live=True, clock=clock)
    clock.now = 50.0
    live.connect()
    assert [live.frame(k, 7000 + k, tb) for k in (3, 4)] == [(0, 0.0), (1, 0.1)]  # starts where it is read
    clock.now = 53.1  # reconnected 3.1 s after the first frame
    live.connect()
    assert [live.frame(k, 20 + k, tb) for k in (0, 1)] == [(31, pytest.approx(3.1)), (32, pytest.approx(3.2))]
    clock.now = 53.1  # a reconnect at once: never backwards, never the same number
    live.connect()
    assert live.frame(0, None, None) == (33, pytest.approx(3.3))
