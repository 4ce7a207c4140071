"""``open_source``: one call for every kind of input (file, stream URL, camera, image folder)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError, SourceError
from .base import Source
from .camera import CameraSource
from .image_source import ImageFolderSource
from .source_config import IMAGE_EXTENSIONS, SourceConfig
from .source_paths import CAMERA_PATH, check_source, is_url
from .video_source import VideoSource

__all__ = ["check_source", "open_source"]


def open_source(
    spec: str | int | os.PathLike[str],
    *,
    start: int = 0,
    max_frames: int | None = None,
    live: bool | None = None,
    fps: float | None = None,
    config: SourceConfig | None = None,
) -> Source:
    """Open a video file, network stream, camera or image folder.

    What ``spec`` is, checked in this order: an int or a string of digits → camera index (OpenCV);
    ``/dev/videoN`` → camera; ``scheme://...`` → network stream (RTSP/RTMP/HTTP/HLS...) with PyAV;
    a string with ``* ? [`` → glob of images; a folder → its images; an image file → one frame;
    anything else → a video file (PyAV).

    Args:
        spec: the input as the user wrote it.
        start: index of the first frame to yield (frame indices stay those of the source).
        max_frames: stop after this many frames (None: all).
        live: force live behaviour (keep only the newest frame, count drops, reconnect) on or off;
            None: cameras and stream protocols are live, files and image folders are not. Only
            video files and streams can change it.
        fps: frame rate of an image folder (default ``config.image_fps`` = 30); ignored otherwise.
        config: buffering, timeouts, reconnection and camera settings.

    Returns:
        A started-on-iteration :class:`~stip_rt.io.base.Source`: ``info`` is filled, iterate it for
        :class:`~stip_rt.types.Frame` objects, ``close()`` it (or use ``with``) when done.

    Raises:
        SourceError: the input is missing, empty, not readable, or refuses to open; the message names it.
        ConfigError: ``start`` or ``max_frames`` is negative.
    """
    if start < 0:
        raise ConfigError(f"start must be ≥ 0, got {start}")
    if max_frames is not None and max_frames < 0:
        raise ConfigError(f"max_frames must be ≥ 0, got {max_frames}")
    config = config or SourceConfig()
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return CameraSource(int(spec), start=start, max_frames=max_frames, config=config)
    text = os.fspath(spec)
    if CAMERA_PATH.match(text):
        return CameraSource(text, start=start, max_frames=max_frames, config=config)
    if is_url(text):
        return VideoSource(text, start=start, max_frames=max_frames, live=live, config=config)
    path = Path(text)
    if any(c in text for c in "*?[") and not path.exists():
        return ImageFolderSource(text, start=start, max_frames=max_frames, fps=fps, config=config)
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS:
        if not path.exists():
            raise SourceError(f"{text}: file not found")
        return ImageFolderSource(path, start=start, max_frames=max_frames, fps=fps, config=config)
    if not path.exists():
        raise SourceError(f"{text}: file not found")
    return VideoSource(text, start=start, max_frames=max_frames, live=live, config=config)
