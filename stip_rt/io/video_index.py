"""True frame numbers of a decoded video, also across damaged data (what the container's index knows).

A decoder only counts the frames it gets. When the middle of a file is damaged the demuxer skips
to the next readable packet, and in AVI (which has no timestamps: FFmpeg numbers packets as it
reads them) every later frame would get a number too low. AVI files carry an index (``idx1`` /
OpenDML) giving each frame's file offset, so a packet's true frame number is the index entry at its
position. :class:`FrameNumbering` uses it to renumber such packets, reports the frames that are
missing (with the file and the range) and drops packets the index does not know (data the
demuxer mistook for a frame). Other containers (MP4, MKV, ...) carry timestamps for every
packet and their demuxers find packets through their own tables; their frames are counted, or
(after a keyframe seek, :mod:`stip_rt.io.video_seek`) numbered from their timestamps.
"""

from __future__ import annotations

import bisect
import itertools
import logging
from fractions import Fraction
from typing import Any

log = logging.getLogger(__name__)

# a packet's position is its chunk header's (or up to this many bytes after it: AVI chunk header = 8)
_HEADER_SLACK = 16


class FrameNumbering:
    """Gives each decoded frame of one video stream its true 0-based number.

    Call :meth:`packet` for every demuxed packet before decoding it (it fixes its timestamps, or
    returns False for a packet to drop), then :meth:`number` for every decoded frame.

    Args:
        uri: the input, for messages.
        container: the open PyAV input container.
        stream: its video stream.
    """

    def __init__(self, uri: str, container: Any, stream: Any) -> None:
        self.uri = uri
        self._count = 0  # next number when counting
        self._next: int | None = None  # rank in the index of the next expected packet
        self._start_ts = 0
        self._positions: list[int] = []
        self._timestamps: list[int] = []
        self._keyframes: list[int] = []
        self.missing = 0  # frames the file lacks (damaged data), reported as warnings
        self._pts_rule: tuple[int, Fraction] | None = None  # (stream start, frames per tick) after use_pts
        self._pts: tuple[int, Fraction] | None = None  # that rule while the next frame is numbered by its pts
        entries = _index_entries(stream)
        frames = int(stream.frames or 0)
        if container.format.name == "avi" and entries:
            ordered = sorted(entries, key=lambda e: e.pos)
            stamps = [int(e.timestamp) for e in ordered]
            # the index covers the declared length: one entry per frame, or (a video written with
            # gaps in its times, e.g. a live run that dropped frames) fewer entries spanning it
            if all(a < b for a, b in itertools.pairwise(stamps)) and stamps[-1] - stamps[0] + 1 == frames:
                self._positions = [int(e.pos) for e in ordered]
                self._timestamps = stamps
                self._keyframes = sorted(int(e.timestamp) for e in entries if e.is_keyframe)
                self._start_ts = stamps[0]

    @property
    def indexed(self) -> bool:
        """True when frame numbers come from the container's index (else frames are counted)."""
        return bool(self._positions)

    def keyframe_before(self, frame: int) -> int | None:
        """Index timestamp of the last keyframe at or before ``frame`` (None: no index, or none that early)."""
        i = bisect.bisect_right(self._keyframes, self._start_ts + frame) - 1
        return self._keyframes[i] if self._positions and i >= 0 else None

    def frame_of(self, ts: int) -> int:
        """The frame number of index timestamp ``ts``."""
        return ts - self._start_ts

    def use_pts(self, start_pts: int, time_base: Fraction, rate: Fraction) -> None:
        """Number the first frame after each :meth:`restart` by its pts and count on from there.

        Its number is ``round((pts - start_pts) × time_base × rate)``: its rank in constant-rate video.
        """
        self._pts_rule = (start_pts, time_base * rate)
        self._pts = self._pts_rule

    def restart(self, next_ts: int | None = None) -> None:
        """Forget what was read: the container was sought (to index timestamp ``next_ts`` when indexed)."""
        self._next = None if next_ts is None else bisect.bisect_left(self._timestamps, next_ts)
        self._count = 0
        self._pts = self._pts_rule

    def packet(self, packet: Any) -> bool:
        """Give ``packet`` its true timestamps (from the index); False: drop it (not a frame of the index)."""
        if not self._positions or not packet.size:
            return True  # counting, or the flush packet
        pos = packet.pos
        if pos is None or pos < 0:
            return True
        i = bisect.bisect_right(self._positions, pos) - 1
        if i < 0 or pos - self._positions[i] > _HEADER_SLACK:
            log.warning(
                "%s: skipped %d bytes at byte %d that the file's index does not list as a frame (damaged data)",
                self.uri, packet.size, pos,
            )  # fmt: skip
            return False
        ts = self._timestamps[i]
        if self._next is not None and i < self._next:
            log.warning("%s: skipped a repeated packet of frame %d at byte %d", self.uri, ts - self._start_ts, pos)
            return False
        if self._next is not None and i > self._next:
            self._report_gap(self._next, i, pos)
        self._next = i + 1
        if packet.dts != ts:
            packet.dts = ts
            packet.pts = ts
        return True

    def _report_gap(self, first: int, arrived: int, pos: int) -> None:
        """Warn that the index entries ``first`` … ``arrived − 1`` (ranks) never came."""
        a, b = self._timestamps[first] - self._start_ts, self._timestamps[arrived - 1] - self._start_ts
        after = self._timestamps[arrived]
        self.missing += arrived - first
        key = bisect.bisect_left(self._keyframes, after)
        if key < len(self._keyframes) and self._keyframes[key] == after:
            tail = ""
        elif key < len(self._keyframes):
            tail = (
                f"; frames {after - self._start_ts}–{self._keyframes[key] - self._start_ts - 1} are decoded "
                f"without their reference frames and may show artefacts until the keyframe "
                f"{self._keyframes[key] - self._start_ts}"
            )
        else:
            tail = "; the frames after it are decoded without their reference frames and may show artefacts"
        what = f"frame {a} is" if a == b else f"frames {a}–{b} are"
        log.warning(
            "%s: damaged data before byte %d: %s missing (skipped; later frames keep their true numbers)%s",
            self.uri, pos, what, tail,
        )  # fmt: skip

    def number(self, frame: Any) -> int:
        """The true 0-based number of decoded ``frame`` (frames come out in display order)."""
        if self._pts is not None and frame.pts is not None:  # the first frame after a seek: its pts gives its rank
            n = round((int(frame.pts) - self._pts[0]) * self._pts[1])
            self._pts = None
            self._count = n + 1
            return n
        if self._positions and frame.pts is not None:
            n = int(frame.pts) - self._start_ts
            if n >= self._count:
                self._count = n + 1
                return n
        n = self._count
        self._count += 1
        return n


def _index_entries(stream: Any) -> list[Any]:
    try:
        return list(stream.index_entries)
    except (AttributeError, TypeError, ValueError):  # PyAV without index access
        return []
