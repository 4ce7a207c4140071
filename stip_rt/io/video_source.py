"""Video files and network streams (RTSP, RTMP, HTTP, HLS, ...) decoded with PyAV on a background thread."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av

from ..errors import SourceError
from ..types import Frame, SourceInfo
from .live_stream import PREROLL_AFTER_S, ReconnectBudget, StreamTimeline
from .source_config import SourceConfig, redact_credentials
from .source_paths import is_url
from .threaded_source import ThreadedSource
from .video_index import FrameNumbering
from .video_picture import Picture, picture_of
from .video_seek import Seek, seek_to_keyframe
from .video_streams import not_a_video, video_stream

log = logging.getLogger(__name__)

# Schemes of sources that are live by nature (frames may be dropped, broken connections are retried).
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "rtp", "srt", "udp", "tcp"})


def _reason(e: BaseException) -> str:
    """FFmpeg's short description of an error, without the errno and file name."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return text[0].lower() + text[1:] if text else text


class OpenTimeout(TimeoutError):
    """A network source did not open within ``source.open_timeout_s`` (FFmpeg's probing was cut short)."""


def _open_container(uri: str, network: bool, config: SourceConfig) -> Any:
    """Open ``uri`` for reading with PyAV; network inputs get timeouts (and RTSP its transport).

    When the open timeout interrupts FFmpeg, it may fail with any error (RTSP: "invalid data") or
    even return a container whose reads then fail at once; both are :class:`OpenTimeout`.
    """
    if not network:
        return av.open(uri)
    options: dict[str, str] = {"rtsp_transport": config.rtsp_transport} if uri.lower().startswith("rtsp") else {}
    limit = config.open_timeout_s
    timed_out = OpenTimeout(f"no answer within {limit:g} s (source.open_timeout_s; a slow stream needs more)")
    t0 = time.monotonic()
    try:
        container = av.open(uri, options=options, timeout=(limit, config.read_timeout_s))
    except av.FFmpegError as e:
        if time.monotonic() - t0 >= limit:
            raise timed_out from e
        raise
    if time.monotonic() - t0 >= limit:  # opened, but only because the timeout cut the probing short
        container.close()
        raise timed_out
    return container


def _decoded(container: Any, stream: Any, numbering: FrameNumbering) -> Iterator[tuple[int, Any]]:
    """Demux and decode ``stream``: (true frame number, PyAV frame) in display order."""
    for packet in container.demux(stream):
        if not numbering.packet(packet):
            continue
        for av_frame in packet.decode():
            yield numbering.number(av_frame), av_frame


def _failing(error: BaseException) -> Iterator[tuple[int, Any]]:
    """A decode that fails with ``error`` when read (the first frame of a file already failed at open)."""
    raise error
    yield  # a generator


def _open_error(uri: str, e: BaseException, network: bool) -> SourceError:
    if isinstance(e, FileNotFoundError):
        return SourceError(f"{uri}: file not found")
    if isinstance(e, PermissionError):
        return SourceError(f"{uri}: permission denied")
    if isinstance(e, ConnectionRefusedError):
        return SourceError(f"{uri}: connection refused (is the stream server running and the port right?)")
    if isinstance(e, OpenTimeout):
        return SourceError(f"{uri}: {e}")
    if isinstance(e, TimeoutError | av.error.ExitError):
        return SourceError(f"{uri}: no answer (timed out)")
    if isinstance(e, av.error.InvalidDataError) and not network:
        return SourceError(f"{uri}: not a video FFmpeg can read ({_reason(e)}); is the file damaged or not a video?")
    return SourceError(f"{uri}: cannot open ({_reason(e)})")


class VideoSource(ThreadedSource):
    """Frames of a video file or network stream.

    The container is opened (and probed) here, so a missing or unreadable input fails at once; a
    file's decode also begins here, up to its first frame (whose side data holds the display matrix,
    which sets the frame size), and goes on from there: the file is opened once and no frame is
    decoded twice. Decoding runs on a background thread with ``thread_type="AUTO"`` for files (FFmpeg frame
    threading) and ``"SLICE"`` for live streams (frame threading adds frames of delay).

    Frames are ``bgr24`` in the colours the video is tagged with, in square pixels (anamorphic video
    is resampled) and turned upright where a file's display matrix says so (phone videos; see
    :mod:`stip_rt.io.video_picture` and :mod:`stip_rt.io.video_orientation`), from FFmpeg's best
    video stream that is not cover art; ``Frame.time`` is the stream's pts in seconds relative to
    the stream's start (variable frame rates keep their real times). A file that ends before the
    frame count its container declares (a truncated file) raises :class:`SourceError` after the last
    good frame. A file damaged in the middle keeps the true frame numbers where its container has an
    index (AVI; see :mod:`stip_rt.io.video_index`): the missing frames are skipped with a warning
    naming the file and the range.

    Live streams: a live stream starts at the first frame its consumer takes. When it is not read
    within :data:`PREROLL_AFTER_S` of its open (a pipeline building its models and opening its
    outputs), a reader thread keeps the connection drained until the first read, decoding and
    discarding what the stream sends; the first frame taken is then frame 0 at time 0, as fresh as
    the stream, instead of a backlog that piled up meanwhile being decoded in a burst and dropped
    once the run starts. A stream that breaks is reopened with exponential back-off,
    ``source.reconnect_retries`` times until it has run for a minute without breaking, then fails
    with :class:`SourceError`; after a reconnect its times follow the wall clock (an outage stays
    in them) and its numbers skip the frames the outage lasted (:mod:`stip_rt.io.live_stream`).

    Args:
        uri: file path or URL.
        start: first frame index to yield. A file is sought to the last keyframe at or before it and decoded
            from there (see :mod:`stip_rt.io.video_seek`); streams, and files whose frames cannot be found
            by timestamp or index, are decoded from the start. Either way the frames before ``start`` are
            dropped and indices and times are those of a decode from frame 0.
        max_frames: stop after this many frames (None: all).
        live: force live (drop frames when the consumer is slower; reconnect) or not; None: live for
            stream protocols (``rtsp://`` ...) and for URLs without a known duration.
        config: buffering, timeouts and reconnection.
        keyframe_seek: False: decode from the start to reach ``start`` even where a seek would do
            (for comparisons).

    Raises:
        SourceError: the input is missing, empty, not a video, has no video stream, or refuses connections.
    """

    def __init__(
        self,
        uri: str,
        *,
        start: int = 0,
        max_frames: int | None = None,
        live: bool | None = None,
        config: SourceConfig | None = None,
        keyframe_seek: bool = True,
    ) -> None:
        self.uri = redact_credentials(uri)  # for messages and file headers: no password
        self._url = uri  # what is opened
        self.config = config or SourceConfig()
        self.start = start
        self.keyframe_seek = keyframe_seek
        self._network = is_url(uri)
        if not self._network:
            path = Path(uri)
            if path.is_file() and path.stat().st_size == 0:
                raise SourceError(f"{uri}: empty file (0 bytes)")
        self._container = self._open()
        stream = video_stream(self._container)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if fps <= 0:
            log.warning("%s: the stream does not state its frame rate; assuming 30 fps", self.uri)
            fps = 30.0
        if live is None:
            scheme = uri.split("://", 1)[0].lower() if self._network else ""
            live = scheme in LIVE_SCHEMES or (self._network and self._container.duration is None)
        frame_count = int(stream.frames) if stream.frames and not live else None
        self._frames: Iterator[tuple[int, Any]] | None = None  # the decode :meth:`_begin` started
        if frame_count is not None and start >= frame_count:  # known now: refused before any output opens
            self._release()
            raise SourceError(
                f"{self.uri}: the start frame {start} is past the end of the video ({frame_count} frames, "
                f"the last is {frame_count - 1})"
            )
        # a file's decode starts here: its first frame carries the display matrix (phones store portrait
        # video sideways), which sets the size of the frames; they are turned upright as players show them
        first = self._begin(bool(live)) if not self._network else None
        stream = video_stream(self._container)  # the container is another one when a seek failed
        self.picture: Picture = picture_of(self.uri, stream, first)
        width, height = self.picture.size(int(stream.codec_context.width), int(stream.codec_context.height))
        info = SourceInfo(uri=self.uri, width=width, height=height, fps=fps, frame_count=frame_count, live=bool(live))
        super().__init__(info, max_frames=max_frames, buffer_size=self.config.buffer_size)
        self._budget = ReconnectBudget(self.config)
        self._preroll = self.live and self._network
        if self._preroll:
            self.start_reader()  # keep the connection drained until the first read (see above)

    def _open(self) -> Any:
        try:
            container = _open_container(self._url, self._network, self.config)
        except (av.FFmpegError, OSError) as e:
            raise _open_error(self.uri, e, self._network) from e
        problem = not_a_video(container)
        if problem:
            container.close()
            raise SourceError(f"{self.uri}: not a video or image ({problem})")
        return container

    def _begin(self, live: bool) -> Any | None:
        """Start decoding a file (sought towards ``start``) up to its first frame; :meth:`_produce` decodes on.

        The first frame is decoded here, not twice: it tells how frames are shown (:func:`picture_of`).

        Returns:
            The first decoded PyAV frame; None when the file has none or it fails to decode (reported when read).
        """
        container, numbering = self._container, None
        if self.start > 0 and self.keyframe_seek and not live:
            container, numbering = self._seek(container)
            self._container = container
        stream = video_stream(container)
        if numbering is None:
            stream.thread_type = "SLICE" if live else "AUTO"
            numbering = FrameNumbering(self.uri, container, stream)
        frames = _decoded(container, stream, numbering)
        try:
            first = next(frames, None)
        except (av.FFmpegError, OSError) as e:
            self._frames = _failing(e)
            return None
        self._frames = frames if first is None else itertools.chain([first], frames)
        return None if first is None else first[1]

    def _release(self) -> None:
        self._frames = None
        if self._container is not None:
            self._container.close()
            self._container = None

    def _produce(self) -> Iterator[Frame]:
        container, self._container = self._container, None
        frames, self._frames = self._frames, None  # a file's decode, begun at open
        index = 0  # number of the next frame (counts skipped frames too)
        timeline = StreamTimeline(self.info.fps, self.live)
        if self._preroll and not self._reading.wait(PREROLL_AFTER_S):
            log.debug("%s: not read yet: the frames it sends are discarded until the first read", self.uri)
        try:
            while True:
                stream = video_stream(container)
                if frames is None:  # a stream, or one reconnected
                    stream.thread_type = "SLICE" if self.live else "AUTO"
                    frames = _decoded(container, stream, FrameNumbering(self.uri, container, stream))
                timeline.connect(stream.start_time)
                try:
                    for rank, av_frame in frames:
                        if self._preroll and not self._reading.is_set():  # nobody has asked for a frame yet
                            if self._stop.is_set():
                                return
                            continue
                        n, t = timeline.frame(rank, av_frame.pts, av_frame.time_base)
                        if n >= self.start:
                            yield Frame(n, t, self.picture.image(av_frame))
                        index = n + 1
                    break  # end of the file / stream
                except (av.FFmpegError, OSError) as e:
                    if not self.live:
                        raise self._read_error(index, e) from e
                    container.close()
                    frames = None
                    container = self._reconnect(index, e)
                    if container is None:  # closed while waiting
                        return
            count = self.info.frame_count
            if count is not None and index < count:
                if self._network:
                    raise SourceError(
                        f"{self.uri}: the stream ended after frame {index - 1} of {count} (the connection "
                        f"dropped?); {self._reconnect_hint()}"
                    )
                raise SourceError(
                    f"{self.uri}: the video ends after frame {index - 1} but its container declares {count} "
                    f"frames; the file is truncated or damaged"
                )
            if self.start > 0 and index <= self.start:
                raise SourceError(
                    f"{self.uri}: the start frame {self.start} is past the end of the video ({index} frames, "
                    f"the last is {index - 1})"
                )
        finally:
            container.close()

    def _seek(self, container: Any) -> tuple[Any, FrameNumbering | None]:
        """Seek a file to the keyframe before ``start``; else (reopened if it moved) it is decoded from the start."""
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        numbering = FrameNumbering(self.uri, container, stream)
        outcome = seek_to_keyframe(self.uri, container, stream, numbering, self.start)
        if outcome is Seek.DONE:
            return container, numbering
        if outcome is Seek.UNTOUCHED:
            return container, FrameNumbering(self.uri, container, stream)
        container.close()
        return self._open(), None

    def _read_error(self, index: int, e: BaseException) -> SourceError:
        """The error of a non-live input that fails while reading (a damaged file, a dropped or stalled stream)."""
        if not self._network:
            return SourceError(f"{self.uri}: cannot decode frame {index} ({_reason(e)}); the file is damaged")
        if isinstance(e, av.error.ExitError | TimeoutError):
            what = f"stalled after frame {index - 1} (no data for {self.config.read_timeout_s:g} s)"
        else:
            what = f"dropped after frame {index - 1} ({_reason(e)})"
        return SourceError(f"{self.uri}: the stream {what}; {self._reconnect_hint()}")

    def _reconnect_hint(self) -> str:
        c = self.config
        if self.live:
            return f"source.reconnect_retries={c.reconnect_retries}, source.read_timeout_s={c.read_timeout_s:g}"
        return (
            "it is read as a file (not live), which is not reconnected: use --live to reconnect "
            f"(source.reconnect_retries={c.reconnect_retries}, source.reconnect_backoff_s={c.reconnect_backoff_s:g}, "
            f"source.read_timeout_s={c.read_timeout_s:g})"
        )

    def _reconnect(self, index: int, error: BaseException) -> Any:
        """Reopen a broken live stream with back-off (:class:`~stip_rt.io.live_stream.ReconnectBudget`);
        None if the source was closed meanwhile."""
        last = error
        budget = self._budget
        budget.broke()
        while (attempt := budget.next_attempt()) is not None:
            if self._stop.is_set():  # closed (Ctrl-C) while the last attempt was opening
                return None
            wait = budget.wait(attempt)
            log.warning(
                "%s: the stream broke after frame %d (%s); reconnecting in %.1f s (attempt %d of %d)",
                self.uri, index - 1, self._stream_reason(last), wait, attempt, budget.retries,
            )  # fmt: skip
            if self._stop.wait(wait):
                return None
            try:
                container = _open_container(self._url, self._network, self.config)
            except (av.FFmpegError, OSError) as e:
                last = e
                continue
            if container.streams.video:
                log.info("%s: reconnected", self.uri)
                budget.reopened_now()
                return container
            container.close()
            last = SourceError("no video stream")
        settings = f"source.reconnect_retries={budget.retries}, source.read_timeout_s={self.config.read_timeout_s:g}"
        if budget.reopened:  # it came back, but never for long
            raise SourceError(
                f"{self.uri}: the stream keeps breaking: {budget.summary()}; the last break came after frame "
                f"{index - 1} ({self._stream_reason(last)}); {budget.rule()} ({settings})"
            ) from last
        raise SourceError(
            f"{self.uri}: the stream broke after frame {index - 1} and {budget.attempts} reconnect attempts failed "
            f"(last error: {self._stream_reason(last)}; {settings})"
        ) from last

    def _stream_reason(self, e: BaseException) -> str:
        if isinstance(e, OpenTimeout):  # a reconnect attempt that did not open in time
            return str(e)
        if isinstance(e, av.error.ExitError | TimeoutError):
            return f"stalled: no data for {self.config.read_timeout_s:g} s"
        return _reason(e)
