"""The viewer as a sink of the pipeline: :class:`ViewerSink` receives results on the pipeline's sink
thread, draws the overlays there, and hands the finished picture to the UI thread (a queued Qt
signal's ``emit``); pause and step block it, playback speed paces it, Record writes through it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from stip_rt.errors import StipError
from stip_rt.io.draw import Trails, draw_people, draw_trails
from stip_rt.io.sinks import open_sink
from stip_rt.pipeline_config import open_sinks
from stip_rt.types import FrameResult, RunInfo

from .options import ViewerOptions

TRAIL_FRAMES = 50  # how many frames a trajectory trail spans
#: A longer step between two frames' source times is a cut, not time to wait out: a video recorded across
#: a seek (Record, then a seek) or from a stream that stalled, whose frames carry their source's times.
MAX_GAP_S = 1.0
_SELECTED = (255, 255, 255)  # outline of the selected track (BGR)


class ViewerSink:
    """A pipeline sink that draws each frame and emits it to the UI (thread-safe).

    It outlives the pipelines of one session (a seek starts a new pipeline writing to the same
    sink): pipelines write through :meth:`port`, whose ``close`` does nothing; :meth:`close` ends it.

    Args:
        emit: called on the sink thread with (annotated BGR image, result).
        options: the current overlay options (replaced by :meth:`set_options` at any time).
        speed: playback speed for files (1.0 = real time, 0 = as fast as possible).
    """

    needs_image = True

    def __init__(self, emit: Callable[[np.ndarray, FrameResult], None], options: ViewerOptions,
                 speed: float = 1.0) -> None:  # fmt: skip
        self._emit = emit
        self._options = options
        self.speed = speed
        self.run: RunInfo | None = None
        self.selected: int | None = None
        self.max_id = 0  # largest track id seen (ids of a rebuilt tracker start above it)
        self.written = 0  # frames shown since the run (or the last seek) started
        self.last_index = -1  # the index of the last frame shown
        self.trails = Trails(TRAIL_FRAMES)
        self._resume = threading.Event()
        self._resume.set()
        self._step = 0
        self._closed = threading.Event()
        self._detached = threading.Event()  # a seek is replacing the pipeline: drop frames, do not wait
        self._lock = threading.Lock()
        self._recorders: list = []
        self._t0_wall: float | None = None
        self._t0_media = 0.0
        self._last_media: float | None = None  # source time of the last frame paced
        self._recorded: float | None = None  # time (in the recorded video) of the last frame recorded
        self._record_shift = 0.0  # recorded video time = source time - this (the seeks recorded across)

    # --- controls (UI thread) ---
    def set_options(self, options: ViewerOptions) -> None:
        self._options = options

    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._t0_wall = None  # restart pacing from the current frame
        self._resume.set()

    def step(self) -> None:
        with self._lock:
            self._step += 1
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def start_recording(self, paths: list[Path]) -> None:
        """Open sinks (video and/or track files) that receive every following frame."""
        if self.run is None:
            raise StipError("nothing is running to record")
        sinks = [open_sink(p) for p in paths]
        open_sinks(sinks, self.run)  # all or none: a failed start leaves no file locked or truncated
        with self._lock:
            self._recorders.extend(sinks)

    def stop_recording(self) -> None:
        with self._lock:
            sinks, self._recorders = self._recorders, []
            self._recorded, self._record_shift = None, 0.0
        for s in sinks:
            s.close()

    @property
    def recording(self) -> bool:
        return bool(self._recorders)

    def detach(self) -> None:
        """Before a seek: frames still in flight are dropped and a paused or pacing write returns."""
        self._detached.set()

    def attach(self) -> None:
        """After a seek: trails start again; a paused view shows the new frame and holds."""
        self.trails = Trails(TRAIL_FRAMES)
        self._t0_wall = None
        self.written = 0
        self._detached.clear()
        if self.paused:
            self.step()

    # --- Sink protocol (sink thread) ---
    def port(self) -> _Port:
        """What one pipeline writes to."""
        return _Port(self)

    def open(self, run: RunInfo) -> None:
        self.run = run

    def write(self, result: FrameResult) -> None:
        self._wait_if_paused()
        self._pace(result)
        if self._detached.is_set() or self._closed.is_set():
            return
        self.written += 1
        self.last_index = result.index
        if len(result.tracks):
            self.max_id = max(self.max_id, int(result.tracks.ids.max()))
        self.trails.update(result.index, result.tracks)
        annotated = self.render(result)
        with self._lock:
            recorders = list(self._recorders)
        if recorders:
            video = dataclasses.replace(result, image=annotated, time=self._record_time(result.time))
        for s in recorders:  # track files get the source's times, a video plays on without the seek's jump
            s.write(video if s.needs_image else result)
        self._emit(annotated, result)

    def _record_time(self, t: float) -> float:
        """The time a frame at source time ``t`` gets in a video being recorded: a cut (a seek) is one frame long."""
        last = self._recorded
        if last is not None and not 0 <= t - self._record_shift - last <= MAX_GAP_S:
            self._record_shift = t - last - self._frame_s()
        self._recorded = t - self._record_shift
        return self._recorded

    def _frame_s(self) -> float:
        """One frame interval of the source (s)."""
        fps = self.run.source.fps if self.run is not None else 0.0
        return 1.0 / fps if fps > 0 else 1.0 / 30

    def render(self, result: FrameResult) -> np.ndarray:
        """The picture of ``result`` with the current overlays (trails as of the last frame written)."""
        image = result.image if result.image is not None else np.zeros((360, 640, 3), np.uint8)
        o = self._options
        t = result.tracks
        out = image.copy()
        if o.show_trails:
            draw_trails(out, self.trails)
        schema = self.run.schema if self.run is not None else None
        draw_people(
            out, t.boxes, t.keypoints, ids=t.ids, schema=schema, kpt_threshold=o.kpt_threshold,
            show_boxes=o.show_boxes, show_skeleton=o.show_skeleton, show_ids=o.show_ids,
        )  # fmt: skip
        if self.selected is not None:
            hit = np.flatnonzero(t.ids == self.selected)
            if hit.size:
                x1, y1, x2, y2 = (round(v) for v in t.boxes[hit[0]])
                lw = max(2, round(min(out.shape[:2]) / 240))
                cv2.rectangle(out, (x1 - lw, y1 - lw), (x2 + lw, y2 + lw), _SELECTED, lw, cv2.LINE_AA)
        return out

    def close(self) -> None:
        self._closed.set()
        self._resume.set()
        self.stop_recording()

    def _wait_if_paused(self) -> None:
        while not self._resume.wait(0.05):
            if self._closed.is_set() or self._detached.is_set():
                return
        with self._lock:
            if self._step > 0:
                self._step -= 1
                if self._step == 0:
                    self._resume.clear()  # show this one frame, then hold

    def set_speed(self, speed: float) -> None:
        """Play at ``speed`` × real time (0: as fast as possible) from the frame shown now."""
        self.speed = speed
        self._t0_wall = None  # pace from the current frame at the new speed, not the whole run so far

    def _pace(self, result: FrameResult) -> None:
        live = self.run is not None and self.run.source.live
        last, self._last_media = self._last_media, result.time
        if self._t0_wall is not None and last is not None and not 0 <= result.time - last <= MAX_GAP_S:
            # the source's times jumped (a cut): show this frame one frame after the last, not when its time comes
            self._t0_media += result.time - last - self._frame_s()
        while not (live or self._closed.is_set() or self._detached.is_set()):
            speed = self.speed
            if speed <= 0:
                return
            if self._t0_wall is None:  # the first frame, or the speed changed / playback resumed meanwhile
                self._t0_wall, self._t0_media = time.perf_counter(), result.time
                return
            delay = self._t0_wall + (result.time - self._t0_media) / speed - time.perf_counter()
            if delay <= 0:
                return
            time.sleep(min(delay, 0.05))


class _Port:
    """One pipeline's view of the :class:`ViewerSink`: the pipeline closing it does not close the viewer."""

    needs_image = True

    def __init__(self, sink: ViewerSink) -> None:
        self._sink = sink

    def open(self, run: RunInfo) -> None:
        self._sink.open(run)

    def write(self, result: FrameResult) -> None:
        self._sink.write(result)

    def close(self) -> None:
        pass
