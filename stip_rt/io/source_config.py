"""Settings of the sources (files, streams, cameras, image folders), with their defaults."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

#: Files an image-folder source reads.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
#: Video files looked for when a folder is given as a list of inputs (``stip-rt batch DIR``); any
#: file FFmpeg can read is a valid single source. Not the containers the video sink writes
#: (:data:`stip_rt.io.formats.OUTPUT_VIDEO_EXTENSIONS`).
INPUT_VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")


@dataclass(frozen=True)
class SourceConfig:
    """How sources decode, buffer and recover.

    Attributes:
        uri: what to read: video file, stream URL (rtsp/http/hls), camera index or device, image
            folder or glob (required for a run).
        start: first frame (0-based) to process.
        max_frames: stop after this many frames (None = to the end).
        live: treat the source as live (drop frames when behind); None = decided by the source.
        buffer_size: frames a file source decodes ahead of the consumer (live sources hold 1).
        image_fps: frame rate given to a folder of images (their times are ``index / image_fps``).
        open_timeout_s: seconds to wait for a network stream to open.
        read_timeout_s: seconds without data after which a network stream counts as broken.
        reconnect_retries: reconnects of a broken live stream or camera before failing (counted until it
            runs 60 s unbroken: :mod:`stip_rt.io.live_stream`).
        reconnect_backoff_s: wait before the first attempt; doubles with each further attempt.
        reconnect_backoff_max_s: upper bound of that wait.
        rtsp_transport: RTSP over ``tcp`` (reliable, the default) or ``udp`` (lower latency, may lose packets).
        camera_width, camera_height, camera_fps: capture mode to request from a local camera (None: its default).
    """

    uri: str | None = None
    start: int = 0
    max_frames: int | None = None
    live: bool | None = None
    buffer_size: int = 8
    image_fps: float = 30.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0
    reconnect_retries: int = 5
    reconnect_backoff_s: float = 0.5
    reconnect_backoff_max_s: float = 8.0
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    camera_width: int | None = None
    camera_height: int | None = None
    camera_fps: float | None = None

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (1-based)."""
        return min(self.reconnect_backoff_s * 2 ** (attempt - 1), self.reconnect_backoff_max_s)


def source_stem(uri: str) -> str:
    """A folder name for a source: ``vtest`` for ``clips/vtest.avi``, ``camera0`` for ``0`` or
    ``/dev/video0``, ``imgs`` for an image folder or ``imgs/*.jpg``, the last part of a stream URL
    (``cam1`` for ``rtsp://host/live/cam1``, the host when the path is empty)."""
    text = uri.strip()
    if text.isdigit():
        name = f"camera{int(text)}"
    elif re.fullmatch(r"/dev/video\d+", text):
        name = "camera" + text.removeprefix("/dev/video")
    elif re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
        parts = urlsplit(text)
        last = [p for p in parts.path.split("/") if p]
        name = Path(last[-1]).stem if last else (parts.hostname or parts.scheme)
    else:
        path = Path(text)
        while any(c in path.name for c in "*?[") and path.name:
            path = path.parent
        name = path.stem if path.suffix and not path.is_dir() else path.name
        name = name or Path(os.path.abspath(text)).name
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "source"
    return name


def redact_credentials(uri: str) -> str:
    """``uri`` without the secret of a URL's user info, for messages, logs and file headers.

    ``rtsp://admin:pw@cam/stream`` → ``rtsp://admin:***@cam/stream``; a user info without ``:`` (often
    a token) → ``***``. Paths and URLs without user info are returned unchanged.
    """
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#@]*)@", uri)
    if m is None:
        return uri
    user, colon, _ = m.group(2).partition(":")
    return f"{m.group(1)}{user + ':***' if colon else '***'}@{uri[m.end():]}"
