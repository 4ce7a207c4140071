"""Runs the pipeline for the window: the viewer is a sink of it and its controller.

Inference never runs on the UI thread. :class:`ViewerSink` receives results on the pipeline's
sink thread, draws the overlays there, and hands the finished picture to the UI thread through a
queued Qt signal; the UI thread only paints. Pause and step block the sink (back-pressure pauses
the whole pipeline for files; live sources keep dropping old frames), playback speed paces it.

A :class:`Session` builds the stages once (source, detector, pose estimator, tracker: the slow
part, an ONNX export or a download among them, reported step by step through ``status``) and
keeps them: a seek stops the running pipeline, opens the source again at the target frame and
starts a new :class:`~stip_rt.pipeline.Pipeline` on the same detector, estimator and tracker
(whose tracks are reset but whose id counter goes on, so ids after a seek never repeat).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtCore import QObject, pyqtSignal

from stip_rt.errors import StipError
from stip_rt.io.draw import Trails, draw_people, draw_trails
from stip_rt.io.sinks import open_sink
from stip_rt.pipeline import Pipeline, PipelineParts
from stip_rt.pipeline_config import open_sinks
from stip_rt.types import FrameResult, RunInfo

from .options import ViewerOptions, run_config

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


class Session(QObject):
    """The runs of the pipeline on one source, owned by the window; the models are built once.

    Signals:
        frame(object, object): annotated image (np.ndarray BGR) and its FrameResult.
        ended(str): the run ended; the text is the error message, or empty when it reached the end
            (the session keeps its models: :meth:`seek` runs again).
        status(str, int, int): what starting is doing now, with progress (done, total; total 0 = unknown).
        seeked(int): a new run started at this frame after :meth:`seek`.
    """

    frame = pyqtSignal(object, object)
    ended = pyqtSignal(str)
    status = pyqtSignal(str, int, int)
    seeked = pyqtSignal(int)

    def __init__(self, source: str, options: ViewerOptions, start: int = 0, speed: float = 1.0,
                 max_frames: int | None = None, next_id: int | None = None) -> None:  # fmt: skip
        super().__init__()
        self.source = source
        self.options = options
        self.sink = ViewerSink(self.frame.emit, options, speed)
        self.config = run_config(source, options, start, max_frames)
        self.parts: PipelineParts | None = None
        self.pipeline: Pipeline | None = None
        self.builds = 0  # how many times the models were built (1 for a whole session)
        self.finished = False  # the last run reached the end of the source
        self._next_id = next_id
        self._gen = 0  # which pipeline's end counts (a seek supersedes the running one)
        self._lock = threading.Lock()
        self._seek_lock = threading.Lock()
        self._stopped = threading.Event()

    # ---------------------------------------------------------------- start
    def start(self) -> None:
        """Start without blocking the UI: building the models and opening the source happen on a
        helper thread, reported through ``status``; a failure arrives as ``ended(message)``."""
        threading.Thread(target=self._start, name="stip-viewer-start", daemon=True).start()

    def _start(self) -> None:
        try:
            from stip_rt.weights import progress_reporter

            with progress_reporter(self._download_progress):
                parts = self._build()
            self.builds += 1
            if self._next_id is not None and hasattr(parts.tracker, "reset"):
                parts.tracker.reset(next_id=self._next_id)
            self._run(parts)
        except StipError as e:
            self.sink.close()
            self.ended.emit(str(e))

    def _build(self) -> PipelineParts:
        """Build the stages in steps the user can follow: source and detector, then the pose model.

        Every model file the run needs is fetched (or found missing) first, so that one message
        names all of them, as ``stip-rt`` does.
        """
        from stip_rt.pipeline_build import build_estimator, build_parts, fetch_weights, warm_up
        from stip_rt.track.tracker import Tracker

        cfg = self.config
        pose = fetch_weights(cfg)
        detector = "detections " + Path(cfg.detect.detections).name if cfg.detect.detections else cfg.detect.model
        self.status.emit(f"opening {self.source} and loading the detector ({detector})", 0, 0)
        box_only = dataclasses.replace(cfg, pose=dataclasses.replace(cfg.pose, model="none"))
        parts = build_parts(box_only)
        if cfg.pose.model == "none":
            return parts
        try:
            self.status.emit(f"loading the pose model ({cfg.pose.model}) on {_backend_words(cfg)}", 0, 0)
            estimator, name, schema, backend = build_estimator(cfg, pose=pose)
            if parts.run.source.live:  # build_parts warmed the detector up only: the pose model too (its first calls)
                warm_up(None, estimator, parts.run.source)
        except BaseException:
            parts.source.close()
            raise
        tracker = Tracker(cfg.track, fps=parts.run.source.fps, schema=schema, frame_size=_frame_size(parts))
        run = dataclasses.replace(parts.run, schema=schema, pose_model=name, backend=backend)
        return dataclasses.replace(parts, estimator=estimator, tracker=tracker, run=run)

    @contextlib.contextmanager
    def _download_progress(self, name: str) -> Iterator[Callable[[int, int | None], None]]:
        last = [0.0]

        def report(done: int, total: int | None) -> None:
            now = time.perf_counter()
            if now - last[0] < 0.2 and (total is None or done < total):
                return
            last[0] = now
            size = f"{done / 1e6:.1f}" + (f" / {total / 1e6:.1f}" if total else "")
            self.status.emit(f"downloading {name}: {size} MB", done, total or 0)

        yield report

    def _run(self, parts: PipelineParts) -> None:
        with self._lock:
            if self._stopped.is_set():
                parts.source.close()
                return
            self._gen += 1
            gen = self._gen
            self.parts = parts
            self.finished = False
            self.pipeline = Pipeline(self.config, [self.sink.port()], parts=parts,
                                     on_end=lambda error: self._on_end(gen, error))  # fmt: skip
        self.status.emit("reading the first frame", 0, 0)
        self.pipeline.start()
        if self._stopped.is_set():  # stop() came while the run was starting
            self.pipeline.stop()

    # ---------------------------------------------------------------- seek
    @property
    def ready(self) -> bool:
        """The models are built: :meth:`seek` keeps them."""
        return self.parts is not None

    def seek(self, frame: int, options: ViewerOptions | None = None) -> None:
        """Run again from ``frame`` on the same models (on a helper thread; ``seeked`` when running).

        Args:
            frame: the first frame of the new run.
            options: new options whose tracker settings (smoothing) apply from there; models are kept.
        """
        threading.Thread(target=self._seek, args=(frame, options), name="stip-viewer-seek", daemon=True).start()

    def _seek(self, frame: int, options: ViewerOptions | None) -> None:
        with self._seek_lock:
            parts = self.parts
            if parts is None or self._stopped.is_set():
                return
            self.sink.detach()
            with self._lock:
                self._gen += 1  # the old pipeline's end is not the session's
                old = self.pipeline
            if old is not None:
                old.stop()
            try:
                tracker = parts.tracker
                if options is not None:
                    self.options = options
                    self.config = run_config(self.source, options, frame, self.config.source.max_frames)
                    if self.config.track != getattr(tracker, "config", None):
                        from stip_rt.track.tracker import Tracker

                        tracker = Tracker(self.config.track, fps=parts.run.source.fps, schema=parts.run.schema,
                                          frame_size=_frame_size(parts))  # fmt: skip
                        tracker.reset(next_id=self.sink.max_id + 1)
                if tracker is parts.tracker and hasattr(tracker, "reset"):
                    tracker.reset()  # forget the tracks, keep counting ids
                from stip_rt.io.sources import open_source

                src = self.config.source
                source = open_source(src.uri, start=frame, max_frames=src.max_frames, live=src.live, config=src)
            except StipError as e:
                self.ended.emit(str(e))
                return
            run = dataclasses.replace(parts.run, source=source.info)
            self.sink.attach()
            self.seeked.emit(frame)
            self._run(dataclasses.replace(parts, source=source, tracker=tracker, run=run))

    # ---------------------------------------------------------------- stop
    def stop(self) -> None:
        self._stopped.set()
        self.sink.close()
        with self._lock:
            pipeline = self.pipeline
        if pipeline is not None:
            pipeline.stop()

    def _on_end(self, gen: int, error: BaseException | None) -> None:
        with self._lock:
            if gen != self._gen:
                return  # superseded by a seek
        self.finished = error is None
        self.sink.stop_recording()
        self.ended.emit("" if error is None else str(error))


def _frame_size(parts: PipelineParts) -> tuple[int, int] | None:
    """(width, height) of the source for the tracker (as :func:`stip_rt.pipeline_build.build_parts`)."""
    s = parts.run.source
    return (s.width, s.height) if s.width > 0 and s.height > 0 else None


def _backend_words(cfg) -> str:
    rt = cfg.runtime
    words = f"{rt.backend} backend, {rt.device} device"
    if rt.backend in ("auto", "onnxruntime", "tensorrt"):
        words += " (the first run of a backend exports ONNX or builds an engine: up to a few minutes)"
    return words
