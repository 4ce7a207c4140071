"""Fake live sources for the source, pipeline and viewer tests (no network, no camera): PyAV-like
containers handed to :class:`~stip_rt.io.video_source.VideoSource` in place of FFmpeg's, and a
``cv2.VideoCapture`` stand-in for :class:`~stip_rt.io.camera.CameraSource`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Any, ClassVar

import av
import cv2
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


class FakeCapture:
    """Stands in for ``cv2.VideoCapture``: a 64×48 camera at :attr:`fps` whose k-th open gives
    ``frames_per_open[k]`` good reads (the last entry for later opens; None: endless), then failures.

    Opens past the first ``openable`` fail (None: every open works): a camera unplugged for good.
    Reads are paced at 2 ms like a (fast) camera, so an endless capture never runs dry.
    """

    instances: ClassVar[list[FakeCapture]] = []
    frames_per_open: ClassVar[list[int | None]] = [None]
    openable: ClassVar[int | None] = None
    fps: ClassVar[float] = 25.0

    def __init__(self, device: object) -> None:
        self.device = device
        self.props: dict[int, float] = {}
        k = len(FakeCapture.instances)
        n = FakeCapture.frames_per_open[min(k, len(FakeCapture.frames_per_open) - 1)]
        self.open = FakeCapture.openable is None or k < FakeCapture.openable
        self.left = float("inf") if n is None else n
        FakeCapture.instances.append(self)

    def isOpened(self) -> bool:
        return self.open

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return FakeCapture.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        time.sleep(0.002)
        if not self.open or self.left <= 0:
            return False, None
        self.left -= 1
        return True, np.zeros((48, 64, 3), np.uint8)

    def release(self) -> None:
        self.left = 0


def serve_cameras(
    monkeypatch: pytest.MonkeyPatch,
    frames_per_open: Sequence[int | None] = (None,),
    *,
    openable: int | None = None,
    fps: float = 25.0,
    capture: type[FakeCapture] = FakeCapture,
) -> type[FakeCapture]:
    """Let ``cv2.VideoCapture`` open ``capture`` cameras (:class:`FakeCapture`, fresh counts);
    returns the class, whose ``instances`` lists the opens so far."""
    state = {"instances": [], "frames_per_open": list(frames_per_open), "openable": openable, "fps": fps}
    for name, value in state.items():
        monkeypatch.setattr(FakeCapture, name, value)  # restored after the test
    monkeypatch.setattr(cv2, "VideoCapture", capture)
    return FakeCapture
