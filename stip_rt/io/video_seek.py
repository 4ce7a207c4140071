"""Keyframe seek for ``VideoSource(start=N)`` on video files: decode from the last keyframe at or before N.

Opening a file at frame N seeks the container to the last keyframe at or before N and decodes on
from there (the source drops the frames before N), instead of decoding every frame from the
start. Frames keep the numbers and times a decode from frame 0 gives them:

* **AVI** with an index (no timestamps; FFmpeg numbers packets): the keyframe comes from the index
  and :class:`~stip_rt.io.video_index.FrameNumbering` numbers the packets by their index entries, so
  damaged data after the keyframe is still reported and skipped, never renumbered.
* **Timestamped containers** (MP4/MOV, Matroska/WebM, MPEG-TS): the frame a seek lands on is
  numbered ``round((pts - stream start) × fps)``, as FFmpeg-based tools number constant-rate
  video, and the frames after it are counted. That number is its rank (what a decode from frame 0
  counts) only when no frame before it is missing or extra, so it is checked first: MP4/MOV index
  every frame, and their timestamps must be evenly spaced over the whole file; Matroska and MPEG-TS
  index only some keyframes, so their packets are demuxed (read, not decoded: far cheaper) up to
  the target and their timestamps must give their ranks.

Matroska and MPEG-TS do not count their frames: :func:`estimated_frame_count` estimates it from
the stated duration and frame rate (for a seek bar; a seek past the real end finds no frame).

Every seek is checked: the first frame decoded after it must be a keyframe with a pts, at or
before N (B-frame reordering can put a keyframe's pts after the seek time; then the seek goes one
keyframe back). Anything else (no index, a variable or unknown rate, no start time, a seek that
fails or misses) decodes from the start, with a debug log: slower, never wrong numbers.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from .video_index import FrameNumbering, _index_entries
from .video_streams import not_a_video, video_stream

log = logging.getLogger(__name__)

# containers without a full index whose packets all carry timestamps (checked by demuxing up to the target)
_TIMESTAMPED = frozenset({"matroska,webm", "mpegts"})
_REORDER = 32  # frames a packet's pts may lie ahead of its place in decoding order (B-frames; generous)
_TRIES = 6  # seeks (each one keyframe further back) before decoding from the start


class Seek(enum.Enum):
    """What :func:`seek_to_keyframe` did to the container."""

    DONE = "done"  # at the keyframe: decode on from here with the same numbering
    UNTOUCHED = "untouched"  # not sought: decode from the start
    MOVED = "moved"  # a seek failed or missed: the container must be reopened to decode from the start


def _no_seek_reason(container: Any, stream: Any, numbering: FrameNumbering) -> str | None:
    """Why frames of this file cannot be found by a keyframe seek, as far as its headers tell (None: they can)."""
    if stream.start_time is None:
        return "the stream has no start time"
    if numbering.indexed:
        return None
    name = container.format.name
    if name == "avi":
        return "the AVI file has no complete index"
    rate = stream.average_rate
    if not rate or rate <= 0:
        return "the stream does not state its frame rate"
    entries = _index_entries(stream)
    if _fully_indexed(stream, entries):  # MP4/MOV
        ts = np.array([int(e.timestamp) for e in entries], dtype=np.int64)
        if not _is_rank(np.sort(ts) - ts.min(), float(stream.time_base * rate), len(ts)):
            return "the frame rate is not constant"
        return None
    if name not in _TIMESTAMPED:
        return f"the {name} container has no index to find frames by"
    return None


def _fully_indexed(stream: Any, entries: list[Any]) -> bool:
    """True when the container's index lists every frame of ``stream`` (MP4/MOV)."""
    return bool(entries) and len(entries) == int(stream.frames or 0)


def _is_rank(ticks: np.ndarray, per_tick: float, upto: int) -> bool:
    """True when the first ``upto`` sorted timestamps (ticks from the start) give frame numbers 0, 1, 2, ..."""
    head = ticks[:upto]
    return bool(np.array_equal(np.rint(head * per_tick), np.arange(len(head))))


def _scan(container: Any, stream: Any, origin: int, per_tick: float, start: int) -> str | None:
    """Demux (not decode) from the start to past frame ``start``: None when every packet's pts gives its rank."""
    stop = start + _REORDER
    pts: list[int] = []
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            if packet.pts is None:
                return "a packet has no pts"
            pts.append(int(packet.pts))
            if (packet.pts - origin) * per_tick > stop:
                break
    except (av.FFmpegError, OSError) as e:
        return f"reading it failed: {e}"
    if not _is_rank(np.sort(np.array(pts, dtype=np.int64)) - origin, per_tick, start + 1):
        return "the frame rate is not constant before that frame"
    return None


@dataclass(frozen=True)
class _Landing:
    """Where a seek landed: the first packet's dts and the first decoded frame (None: no frame came)."""

    dts: int | None
    decoded: bool = False
    number: int | None = None  # None: no frame, or one without a pts
    keyframe: bool = False


def _landing(container: Any, stream: Any, numbering: FrameNumbering) -> _Landing:
    """Demux and decode until the first frame comes out."""
    dts = None
    for packet in container.demux(stream):
        if not numbering.packet(packet):
            continue
        if dts is None and packet.dts is not None:
            dts = int(packet.dts)
        for frame in packet.decode():
            number = numbering.number(frame) if frame.pts is not None else None
            return _Landing(dts, True, number, bool(frame.key_frame))
    return _Landing(dts)


def seek_to_keyframe(uri: str, container: Any, stream: Any, numbering: FrameNumbering, start: int) -> Seek:
    """Seek ``container`` to the last keyframe at or before frame ``start`` and set ``numbering`` for it.

    Args:
        uri: the input, for messages.
        container: an open PyAV input container, nothing read yet.
        stream: its video stream (its ``thread_type`` already set).
        numbering: a fresh numbering of ``stream``.
        start: the first frame wanted (0-based, as counted from the start of the file).

    Returns:
        :attr:`Seek.DONE` when demuxing now starts at that keyframe (``numbering`` gives true numbers),
        else :attr:`Seek.UNTOUCHED` or :attr:`Seek.MOVED` (reopen the container): decode from the start.
    """
    reason = _no_seek_reason(container, stream, numbering)
    if reason is not None:
        log.debug("%s: decoding from the start to reach frame %d (%s)", uri, start, reason)
        return Seek.UNTOUCHED
    step = Fraction(0)  # time_base ticks per frame (timestamp numbering)
    if numbering.indexed:
        key = numbering.keyframe_before(start)
        if key is None:
            log.debug("%s: decoding from the start to reach frame %d (no keyframe before it)", uri, start)
            return Seek.UNTOUCHED
        offset = key
    else:
        origin, time_base, rate = int(stream.start_time), Fraction(stream.time_base), Fraction(stream.average_rate)
        if not _fully_indexed(stream, _index_entries(stream)):  # Matroska, MPEG-TS: check the timestamps
            reason = _scan(container, stream, origin, float(time_base * rate), start)
            if reason is not None:
                log.debug("%s: decoding from the start to reach frame %d (%s)", uri, start, reason)
                return Seek.MOVED
        numbering.use_pts(origin, time_base, rate)
        step = 1 / (rate * time_base)
        offset = origin + round(start * step)
    why = "it did not land on a keyframe at or before it"
    for tries in range(_TRIES):
        try:
            container.seek(offset, stream=stream, backward=True, any_frame=False)
            at = _landing(container, stream, numbering)
            if at.number is not None and at.keyframe and at.number <= start:
                container.seek(offset, stream=stream, backward=True, any_frame=False)  # decode again from there
                numbering.restart(offset if numbering.indexed else None)
                log.debug("%s: sought to the keyframe %d to reach frame %d", uri, at.number, start)
                return Seek.DONE
        except (av.FFmpegError, OSError) as e:
            why = f"the seek failed: {e}"
            break
        if at.decoded and at.number is None:
            why = "a frame has no pts"
            break
        if numbering.indexed:  # one keyframe back
            earlier = numbering.keyframe_before(numbering.frame_of(offset) - 1)
            if earlier is None:
                break
            offset = earlier
        else:  # back by the overshoot, 4× further each time (MPEG-TS lands near, not on, a keyframe)
            frames_back = (max((at.number or start) - start, 0) + 1) * 4**tries
            offset = min(offset, at.dts if at.dts is not None else offset) - round(frames_back * step)
        numbering.restart()
    log.debug("%s: decoding from the start to reach frame %d (%s)", uri, start, why)
    return Seek.MOVED


def estimated_frame_count(uri: str) -> int | None:
    """How many frames a video file holds whose container does not count them, from its duration and frame rate.

    Matroska/WebM and MPEG-TS files state no frame count (``SourceInfo.frame_count`` is None) but a
    keyframe seek finds their frames by timestamp; ``round(duration × fps)`` estimates the count,
    exactly for a constant-rate file whose duration is its video's (Matroska's per-track ``DURATION``
    tag, the stream's duration, else the container's, which may be a longer audio track's).

    Args:
        uri: a local video file.

    Returns:
        The estimated number of frames, or None: the container counts its frames, finds them by
        index (AVI) or not at all, states no duration or frame rate, or cannot be read.
    """
    try:
        with av.open(uri) as container:
            if container.format.name not in _TIMESTAMPED:
                return None
            if not_a_video(container):
                return None
            stream = video_stream(container)  # the stream the source tracks
            if stream.frames:
                return None
            rate = stream.average_rate or stream.guessed_rate
            seconds = _duration_s(container, stream)
            if not rate or rate <= 0 or seconds is None:
                return None
            count = round(seconds * float(rate))
            return count if count > 0 else None
    except (av.FFmpegError, OSError, ValueError) as e:
        log.debug("%s: no frame count estimated (%s)", uri, e)
        return None


def _duration_s(container: Any, stream: Any) -> float | None:
    """The video stream's duration (s): Matroska's track tag, the stream's, else the container's; None: unknown."""
    tag = stream.metadata.get("DURATION")  # "HH:MM:SS.nnnnnnnnn", written per track by FFmpeg and mkvmerge
    if tag:
        h, m, sec = tag.split(":")
        return int(h) * 3600 + int(m) * 60 + float(sec)
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None
