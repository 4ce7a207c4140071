"""Runs the pipeline for the window: the viewer is a sink of it and its controller.

Inference never runs on the UI thread. :class:`~.viewer_sink.ViewerSink` receives results on the pipeline's
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

from PyQt6.QtCore import QObject, pyqtSignal

from stip_rt.errors import StipError
from stip_rt.pipeline import Pipeline, PipelineParts
from stip_rt.run_config import RunConfig
from stip_rt.types import SourceInfo

from .options import ViewerOptions, run_config
from .viewer_sink import ViewerSink


class Session(QObject):
    """The runs of the pipeline on one source, owned by the window; the models are built once.

    Signals:
        frame(object, object): annotated image (np.ndarray BGR) and its FrameResult.
        ended(str): the run ended; the text is the error message, or empty when it reached the end
            (the session keeps its models: :meth:`seek` runs again). ``finished`` with a message: a
            seek past the real end of a video whose length was estimated; the models are kept.
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
        self.length_estimated = False  # frame_count is an estimate (see frame_count)
        self._length: int | None = None
        self._from = start  # the first frame of the current run
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
            self._measure(parts.run.source)
            if self._next_id is not None and hasattr(parts.tracker, "reset"):
                parts.tracker.reset(next_id=self._next_id)
            self._run(parts)
        except StipError as e:
            self.sink.close()
            self.ended.emit(str(e))

    def _build(self) -> PipelineParts:
        """Build the stages in steps the user can follow: source and detector, then the pose model.

        Every model file the run needs is fetched (or found missing) first, so that one message
        names all of them, as ``stip-rt`` does. For a live source (a camera, a stream) the networks
        make their slow first calls here, before the source is read (which keeps it drained
        meanwhile), as :func:`stip_rt.pipeline_build.build_parts` does: the detector's in it, the pose
        model's after it is loaded.
        """
        from stip_rt.pipeline_build import build_estimator, build_parts, fetch_weights, warm_up
        from stip_rt.track.tracker import Tracker

        cfg = self.config
        pose = fetch_weights(cfg)
        detector = "detections " + Path(cfg.detect.detections).name if cfg.detect.detections else cfg.detect.model
        warm = ", then warming it up" if _looks_live(cfg) and not cfg.detect.detections else ""
        self.status.emit(f"opening {self.source} and loading the detector ({detector}){warm}", 0, 0)
        box_only = dataclasses.replace(cfg, pose=dataclasses.replace(cfg.pose, model="none"))
        parts = build_parts(box_only)
        if cfg.pose.model == "none":
            return parts
        info = parts.run.source
        try:
            self.status.emit(f"loading the pose model ({cfg.pose.model}) on {_backend_words(cfg)}", 0, 0)
            estimator, name, schema, backend = build_estimator(cfg, pose=pose)
            if info.live:
                self.status.emit(f"warming up the pose model ({cfg.pose.model}): its first calls are slow", 0, 0)
                warm_up(None, estimator, info)
        except BaseException:
            parts.source.close()
            raise
        tracker = Tracker(cfg.track, fps=info.fps, schema=schema, frame_size=_frame_size(parts))
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

                src = self.config.source  # its uri is self.source
                source = open_source(self.source, start=frame, max_frames=src.max_frames, live=src.live, config=src)
            except StipError as e:
                self.ended.emit(str(e))
                return
            run = dataclasses.replace(parts.run, source=source.info)
            self._from = frame
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
        ran_out = error is not None and self._ran_out(error)
        self.finished = error is None or ran_out
        if error is None:
            self._learn_length()
        elif ran_out:  # nothing from this frame on: the seek bar ends before it
            self._length = self._from
        self.sink.stop_recording()
        self.ended.emit("" if error is None else str(error))

    # ---------------------------------------------------------------- length
    @property
    def frame_count(self) -> int | None:
        """Frames of the source for the seek bar: its container's count, else an estimate from the duration
        of a video file whose container counts none (Matroska/WebM, MPEG-TS; ``length_estimated``), no
        less than the frames seen, exact once a run reached the end; None: unknown (a camera, a stream)."""
        n = self._length
        if n is not None and self.length_estimated:
            n = max(n, self.sink.last_index + 1)
        return n

    def _measure(self, info: SourceInfo) -> None:
        """The length of the source (the helper thread, before the first run)."""
        if info.frame_count:
            self._length = info.frame_count
        elif not info.live and Path(self.source).is_file():
            from stip_rt.io.video_seek import estimated_frame_count

            self._length = estimated_frame_count(self.source)
            self.length_estimated = self._length is not None

    def _learn_length(self) -> None:
        """A run reached the end: an estimated length is now known (unless the run stopped at max_frames)."""
        if self.length_estimated and self.config.source.max_frames is None and self.sink.written:
            self._length, self.length_estimated = self.sink.last_index + 1, False

    def _ran_out(self, error: BaseException) -> bool:
        """A run from a seek into a video whose length is estimated failed before its first frame: the
        video ends before the frame sought (its duration said more)."""
        return self.length_estimated and self._from > 0 and self.sink.written == 0 and isinstance(error, StipError)


def _frame_size(parts: PipelineParts) -> tuple[int, int] | None:
    """(width, height) of the source for the tracker (as :func:`stip_rt.pipeline_build.build_parts`)."""
    s = parts.run.source
    return (s.width, s.height) if s.width > 0 and s.height > 0 else None


def _looks_live(cfg: RunConfig) -> bool:
    """The source is live (a camera, a stream), as far as its name tells before it is opened."""
    from stip_rt.io.source_paths import CAMERA_PATH, is_url

    uri = str(cfg.source.uri or "").strip()
    live = cfg.source.live
    return live if live is not None else uri.isdigit() or bool(CAMERA_PATH.match(uri)) or is_url(uri)


def _backend_words(cfg: RunConfig) -> str:
    rt = cfg.runtime
    words = f"{rt.backend} backend, {rt.device} device"
    if rt.backend in ("auto", "onnxruntime", "tensorrt"):
        words += " (the first run of a backend exports ONNX or builds an engine: up to a few minutes)"
    return words
