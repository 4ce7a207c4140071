"""Runs one pipeline for the window: the viewer is a sink of it and its controller.

Inference never runs on the UI thread. :class:`ViewerSink` receives results on the
pipeline's sink thread, draws the overlays there, and hands the finished picture to the
UI thread through a queued Qt signal; the UI thread only paints. Pause and step block
the sink (back-pressure pauses the whole pipeline for files; live sources keep dropping
old frames), playback speed paces it, seek restarts the run at another frame.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from stip_rt.errors import StipError
from stip_rt.io.draw import draw_people
from stip_rt.io.sinks import open_sink
from stip_rt.pipeline import Pipeline
from stip_rt.types import FrameResult, RunInfo

from .options import ViewerOptions, run_config


class ViewerSink:
    """A pipeline sink that draws each frame and emits it to the UI (thread-safe).

    Args:
        emit: called on the sink thread with (annotated BGR image, result).
        options: the current overlay options (replaced by :meth:`set_options` at any time).
        speed: playback speed for files (1.0 = real time, 0 = as fast as possible).
    """

    needs_image = True

    def __init__(self, emit, options: ViewerOptions, speed: float = 1.0) -> None:
        self._emit = emit
        self._options = options
        self.speed = speed
        self.run: RunInfo | None = None
        self._resume = threading.Event()
        self._resume.set()
        self._step = 0
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._recorders: list = []
        self._t0_wall: float | None = None
        self._t0_media = 0.0

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
        for s in sinks:
            s.open(self.run)
        with self._lock:
            self._recorders.extend(sinks)

    def stop_recording(self) -> None:
        with self._lock:
            sinks, self._recorders = self._recorders, []
        for s in sinks:
            s.close()

    @property
    def recording(self) -> bool:
        return bool(self._recorders)

    # --- Sink protocol (sink thread) ---
    def open(self, run: RunInfo) -> None:
        self.run = run

    def write(self, result: FrameResult) -> None:
        self._wait_if_paused()
        self._pace(result)
        image = result.image if result.image is not None else np.zeros((360, 640, 3), np.uint8)
        o = self._options
        t = result.tracks
        schema = self.run.schema if self.run is not None else None
        annotated = draw_people(
            image.copy(), t.boxes, t.keypoints, ids=t.ids, schema=schema, kpt_threshold=o.kpt_threshold,
            show_boxes=o.show_boxes, show_skeleton=o.show_skeleton, show_ids=o.show_ids,
        )
        with self._lock:
            recorders = list(self._recorders)
        for s in recorders:
            s.write(result if not s.needs_image else dataclasses.replace(result, image=annotated))
        self._emit(annotated, result)

    def close(self) -> None:
        self._closed.set()
        self._resume.set()
        self.stop_recording()

    def _wait_if_paused(self) -> None:
        while not self._resume.wait(0.05):
            if self._closed.is_set():
                return
        with self._lock:
            if self._step > 0:
                self._step -= 1
                if self._step == 0:
                    self._resume.clear()  # show this one frame, then hold

    def _pace(self, result: FrameResult) -> None:
        live = self.run is not None and self.run.source.live
        if live or self.speed <= 0:
            return
        now = time.perf_counter()
        if self._t0_wall is None:
            self._t0_wall, self._t0_media = now, result.time
            return
        due = self._t0_wall + (result.time - self._t0_media) / self.speed
        while not self._closed.is_set() and (delay := due - time.perf_counter()) > 0:
            time.sleep(min(delay, 0.05))


class Session(QObject):
    """One run of the pipeline for one source, owned by the window.

    Signals:
        frame(object, object): annotated image (np.ndarray BGR) and its FrameResult.
        ended(str): the run ended; the text is the error message, or empty when it ended normally.
    """

    frame = pyqtSignal(object, object)
    ended = pyqtSignal(str)

    def __init__(self, source: str, options: ViewerOptions, start: int = 0, speed: float = 1.0,
                 max_frames: int | None = None) -> None:
        super().__init__()
        self.source = source
        self.options = options
        self.sink = ViewerSink(self.frame.emit, options, speed)
        self.config = run_config(source, options, start, max_frames)
        self.pipeline = Pipeline(self.config, [self.sink], on_end=self._on_end)
        self._stopped = threading.Event()

    def start(self) -> None:
        """Start the run without blocking the UI: opening the source and building the models happen
        on a helper thread; a failure arrives as ``ended(message)``."""
        threading.Thread(target=self._start, name="stip-viewer-start", daemon=True).start()

    def _start(self) -> None:
        try:
            self.pipeline.start()
        except StipError as e:
            self.sink.close()
            self.ended.emit(str(e))
            return
        if self._stopped.is_set():  # stop() came while the run was starting
            self.pipeline.stop()

    def stop(self) -> None:
        self._stopped.set()
        self.sink.close()
        self.pipeline.stop()

    def _on_end(self, error: BaseException | None) -> None:
        self.ended.emit("" if error is None else str(error))

