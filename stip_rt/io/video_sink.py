"""Annotated video: the source's frames with skeletons, boxes and track ids, encoded with PyAV."""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from ..errors import SinkError
from ..schemas import KeypointSchema
from ..types import FrameResult, RunInfo
from .draw import Trails, draw_tracks, draw_trails
from .sink_files import OutputLock, check_writable, lock_output, make_parent

log = logging.getLogger(__name__)

_H264 = {"crf": "23", "preset": "veryfast"}


def default_codec(path: Path) -> str:
    """``libx264`` for .mp4/.mkv/.mov (``mpeg4`` when the FFmpeg build lacks it), ``mpeg4`` for .avi."""
    if path.suffix.lower() == ".avi":
        return "mpeg4"
    try:
        av.codec.Codec("libx264", "w")
    except av.FFmpegError:  # e.g. UnknownCodecError in builds without x264
        return "mpeg4"
    except ValueError:
        return "mpeg4"
    return "libx264"


class VideoSink:
    """Draw every frame (:func:`~stip_rt.io.draw.draw_tracks`) and encode it at the source's fps and size.

    Frames are stamped with their source time (relative to the first frame written), so a live run
    with dropped frames still plays in real time. Sizes are rounded down to even numbers (yuv420p
    needs them). ``close()`` flushes the encoder and finishes the container, also after a failure,
    so the video is playable up to the last frame written. The video is written to a hidden
    ``.<stem>.partial<suffix>`` beside ``path`` and renamed to ``path`` when finished, so ``path``
    only ever holds a complete, playable video (a run killed outright leaves only the partial file).

    Args:
        path: output ``.mp4``, ``.mkv``, ``.mov`` or ``.avi`` (folder created if missing).
        codec: FFmpeg encoder name; None: :func:`default_codec`.
        bit_rate: bits per second for encoders without a quality setting (mpeg4); None: about
            0.2 bit per pixel per frame.
        draw_options: keyword options of :func:`~stip_rt.io.draw.draw_people`.

    Raises:
        SinkError: the folder is not writable; the encoder or container cannot be opened; a frame
            comes without its image.
    """

    needs_image = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        codec: str | None = None,
        bit_rate: int | None = None,
        draw_options: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        check_writable(self.path)
        self.codec = codec or default_codec(self.path)
        self.bit_rate = bit_rate
        self.draw_options = dict(draw_options or {})
        self._container: Any = None
        self._stream: Any = None
        self._schema: KeypointSchema | None = None
        self._last_pts = -1
        self._t0: float | None = None
        self._warned_size = False
        self._lock: OutputLock | None = None
        #: trajectory trails drawn under the skeletons (None: no trails)
        self.trails: Trails | None = None
        self.partial_path = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")

    def claim(self, run: RunInfo) -> None:
        """Take the video's lock; nothing is written (the video goes to its partial file at ``open``)."""
        if self._lock is None:
            self._lock = lock_output(self.path)

    def open(self, run: RunInfo) -> None:
        src = run.source
        self._schema = run.schema
        self._rate = Fraction(src.fps if src.fps and src.fps > 0 else 30.0).limit_denominator(1001)
        self._size = (max(2, src.width // 2 * 2), max(2, src.height // 2 * 2))
        make_parent(self.path)
        self.claim(run)
        try:
            self._container = av.open(str(self.partial_path), "w")
            stream = self._container.add_stream(self.codec, rate=self._rate)
            stream.width, stream.height = self._size
            stream.pix_fmt = "yuv420p"
            if self.codec == "libx264":
                stream.options = dict(_H264)
            else:
                stream.bit_rate = self.bit_rate or int(0.2 * self._size[0] * self._size[1] * float(self._rate))
            self._stream = stream
        except (av.FFmpegError, OSError, ValueError) as e:
            self._abort(keep=False)
            raise SinkError(f"{self.path}: cannot open the video for writing ({getattr(e, 'strerror', e)})") from e

    def write(self, result: FrameResult) -> None:
        if self._stream is None:
            raise SinkError(f"{self.path}: write() before open()")
        if result.image is None:
            raise SinkError(f"{self.path}: frame {result.index} came without its image")
        image = result.image.copy()
        if self.trails is not None:
            self.trails.update(result.index, result.tracks)
            image = draw_trails(image, self.trails)
        image = draw_tracks(image, result.tracks, self._schema, **self.draw_options)
        image = self._fit(image, result.index)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        if self._t0 is None:
            self._t0 = result.time  # the video starts at its first frame, also for --start N
        pts = max(self._last_pts + 1, round((result.time - self._t0) * self._rate))
        frame.pts, frame.time_base = pts, 1 / self._rate
        self._last_pts = pts
        try:
            self._container.mux(self._stream.encode(frame))
        except (av.FFmpegError, OSError) as e:
            raise SinkError(f"{self.path}: cannot encode frame {result.index} ({getattr(e, 'strerror', e)})") from e

    def _fit(self, image: np.ndarray, index: int) -> np.ndarray:
        """Crop an odd row/column, or resize a frame whose size differs from the stream's."""
        w, h = self._size
        ih, iw = image.shape[:2]
        if (iw, ih) == (w, h):
            return image
        if iw - w in (0, 1) and ih - h in (0, 1):
            return image[:h, :w]
        if not self._warned_size:
            log.warning("%s: frame %d is %dx%d, the video %dx%d; resizing", self.path, index, iw, ih, w, h)
            self._warned_size = True
        return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)

    def close(self) -> None:
        if self._container is None:
            self._release()
            return
        try:
            if self._stream is not None:
                self._container.mux(self._stream.encode(None))
        except (av.FFmpegError, OSError) as e:
            raise SinkError(f"{self.path}: cannot finish the video ({getattr(e, 'strerror', e)})") from e
        finally:
            self._abort(keep=True)

    def _abort(self, keep: bool) -> None:
        """Close the container; ``keep``: rename the finished video into place (else remove it); drop the lock."""
        container, self._container, self._stream = self._container, None, None
        try:
            if container is not None:
                try:
                    container.close()
                except (av.FFmpegError, OSError) as e:
                    keep = False
                    log.warning("%s: closing the video failed (%s)", self.path, getattr(e, "strerror", e))
            if keep and self.partial_path.exists():
                try:
                    os.replace(self.partial_path, self.path)
                except OSError as e:
                    raise SinkError(f"{self.path}: cannot move the finished video into place ({e.strerror})") from e
            else:
                self.partial_path.unlink(missing_ok=True)
        finally:
            self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()
