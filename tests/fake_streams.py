"""A fake live network stream for the source and pipeline tests (no network): PyAV-like
containers handed to :class:`~stip_rt.io.video_source.VideoSource` in place of FFmpeg's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Any

import av
import numpy as np
import pytest

from stip_rt.io import video_source


class FakeStream:
    """A PyAV-like container of a 32×24 stream at ``fps``: ``n`` frames, then ``error`` is raised
    (the connection broke) or the stream ends.

    Frame ``k`` has every pixel ``(first + k) % 256`` and pts ``1000 + k`` (a live stream's pts do
    not start at 0). ``paced``: frame ``k`` is sent ``k / fps`` seconds after the open, as a camera
    does; frames not read in time pile up (as in a socket's buffer) and come at once when read.
    """

    def __init__(
        self, n: int, error: BaseException | None = None, *, fps: int = 10, paced: bool = False, first: int = 0
    ) -> None:
        self.n, self.error, self.fps, self.paced, self.first = n, error, fps, paced, first
        self.opened_at = time.monotonic()
        stream = type("S", (), {})()
        stream.average_rate, stream.guessed_rate, stream.base_rate = fps, fps, fps
        stream.codec_context = type("C", (), {"width": 32, "height": 24})()
        stream.frames, stream.start_time, stream.thread_type = 0, None, None
        stream.disposition = av.stream.Disposition(0)
        self.streams = type("Streams", (), {"video": [stream]})()
        self.duration = None
        self.format = type("F", (), {"name": "rtsp"})()
        self.closed = False

    def demux(self, stream: Any) -> Iterator[Any]:
        for k in range(self.n):
            if self.paced:
                time.sleep(max(0.0, self.opened_at + k / self.fps - time.monotonic()))
            image = np.full((24, 32, 3), (self.first + k) % 256, np.uint8)
            f = av.VideoFrame.from_ndarray(image, format="bgr24")
            f.pts, f.time_base = 1000 + k, Fraction(1, self.fps)
            yield type("P", (), {"size": 100, "pos": -1, "decode": lambda self, f=f: [f]})()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True


def serve_streams(
    monkeypatch: pytest.MonkeyPatch, streams: Sequence[FakeStream] | Callable[[int], FakeStream]
) -> list[FakeStream]:
    """Let ``VideoSource`` open ``streams`` in turn (or ``streams(i)`` for the i-th open, 0-based);
    returns the list of those opened so far."""
    opened: list[FakeStream] = []

    def fake_open(uri: str, network: bool, config: object) -> FakeStream:
        i = len(opened)
        opened.append(streams(i) if callable(streams) else streams[i])
        return opened[-1]

    monkeypatch.setattr(video_source, "_open_container", fake_open)
    return opened


def reset(error_text: str = "Connection reset by peer") -> ConnectionResetError:
    """The error of a connection the server dropped."""
    return ConnectionResetError(104, error_text)
