"""The threaded pipeline: source → detect → pose → track → sinks, each stage on its own thread.

Stages talk through bounded queues (back-pressure: a slow stage makes the ones before it wait;
a live source then drops old frames itself, a file never does). Policies (see ``docs/pipeline.md``):

* **Errors**: the first error anywhere wins. The stages *before* the failing one stop at once;
  the stages *after* it finish what is already queued (so every frame computed before the
  failure is written), the sinks are closed (flushed) and one :class:`StipError` naming the
  input — and the frame where there is one — is raised to the caller.
* **Stop / Ctrl-C**: :meth:`Pipeline.stop` (or ``KeyboardInterrupt`` while iterating) stops every
  stage, closes the sinks with everything written so far, and joins the threads with timeouts.
* **Detect every N**: the detector runs on every N-th frame; in between, the pose stage takes
  boxes from the previous frame's tracks (it waits for the track stage, which is cheap).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import BackendError, ConfigError, SinkError, SourceError, StipError
from .io.base import Sink
from .pipeline_config import PipelineParts
from .pipeline_stats import PipelineStats, StatsRecorder
from .run_config import RunConfig
from .types import Detections, Frame, FrameResult, Poses, Tracks

__all__ = ["Pipeline", "PipelineParts", "RunConfig"]  # parts live in pipeline_config, the settings in run_config

logger = logging.getLogger(__name__)

_POLL = 0.05  # seconds between checks of the stop flags while a queue is full/empty
_END = object()  # end of stream marker travelling down the queues
_CANCELLED = object()  # returned by _get when the stage was told to stop

_NAMES = ("source", "detect", "pose", "track", "sink")
_ERROR_TYPES: dict[str, type[StipError]] = {
    "source": SourceError,
    "detect": BackendError,
    "pose": BackendError,
    "track": StipError,
    "sink": SinkError,
}


@dataclass(slots=True)
class _Item:
    seq: int  # position in this run (frame indices of live sources may have gaps)
    frame: Frame
    t_capture: float
    timings: dict[str, float] = field(default_factory=dict)
    dets: Detections | None = None
    poses: Poses | None = None
    tracks: Tracks | None = None


class _Feedback:
    """The track stage's latest output, which the pose stage waits for on frames without detection."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = -1
        self._tracks: Tracks | None = None

    def publish(self, seq: int, tracks: Tracks) -> None:
        with self._cond:
            self._seq, self._tracks = seq, tracks
            self._cond.notify_all()

    def wait(self, seq: int, cancel: threading.Event) -> Tracks | None:
        """Tracks of item ``seq`` or later (None if cancelled first); empty tracks when ``seq`` < 0."""
        if seq < 0:
            return Tracks.empty()
        with self._cond:
            while self._seq < seq:
                if cancel.is_set():
                    return None
                self._cond.wait(_POLL)
            return self._tracks


class Pipeline:
    """Runs the stages on threads and delivers :class:`FrameResult` objects in frame order.

    Three ways to drive it: iterate (``for result in pipeline`` starts it and yields every result);
    ``start()`` and let the sinks and/or ``on_result`` take the results (e.g. a Qt controller:
    they arrive on the sink thread; ``stop()`` from any thread); or :meth:`run` to the end.
    ``with`` prepares it (models built, sinks opened: errors surface there) and stops it on exit.

    Example::

        config = load_run_config(source="video.mp4", weights="random")  # stip_rt.run_load
        with Pipeline(config, [open_sink("out.jsonl")]) as p:
            for result in p:
                print(result.index, result.tracks.ids)
        print(p.stats())

    Args:
        config: the run's settings (default: :class:`RunConfig` defaults; with given ``parts``
            only ``detect.interval.every``, ``queues`` and ``outputs.with_images`` matter).
        sinks: writers; opened in :meth:`prepare`, closed (flushed) when the run ends, fails or stops.
        parts: pre-built stages; by default built from ``config`` in :meth:`prepare`.
        on_result: called on the sink thread with each result; the pipeline is then not iterable.
        on_end: called once on the sink thread when the run ends, with the error or None.
    """

    def __init__(
        self,
        config: RunConfig | None = None,
        sinks: Sequence[Sink] = (),
        *,
        parts: PipelineParts | None = None,
        on_result: Callable[[FrameResult], None] | None = None,
        on_end: Callable[[StipError | None], None] | None = None,
    ) -> None:
        self.config = config = config if config is not None else RunConfig()
        self.sinks = tuple(sinks)
        self.parts = parts
        self._on_result = on_result
        self._on_end = on_end
        self._lock = threading.Lock()
        self._prepare_lock = threading.Lock()
        self._prepared = False
        self._started = False
        self._stopped = False
        self._attached = False  # an iterator takes the results (else: sinks/callback only)
        self._error: StipError | None = None
        self._cancel = [threading.Event() for _ in _NAMES]
        self._queues: list[queue.Queue[Any]] = []
        self._threads: list[threading.Thread] = []
        self._feedback = _Feedback()
        self._stats = StatsRecorder()
        self._needs_image = config.outputs.with_images or any(s.needs_image for s in self.sinks)
        self._newest_only = False  # live input: queues before the pose stage keep only the newest frame

    # ---------------------------------------------------------------- control

    def prepare(self) -> PipelineParts:
        """Build the stages (unless given) and open the sinks, without starting a thread; idempotent.

        Lets a caller read ``parts.run`` (source size, frame count, models) before frames flow;
        :meth:`start` and iteration call it.

        Raises:
            StipError: a source, model, detector or sink cannot be opened (nothing is left open).
        """
        with self._prepare_lock:
            if self._stopped:
                raise ConfigError("this pipeline was stopped; create a new Pipeline for another run")
            if self._prepared:
                assert self.parts is not None
                return self.parts
            if self.parts is None:
                from .pipeline_build import build_parts  # heavy imports (torch models) only when building

                self.parts = build_parts(self.config)
            parts = self.parts
            opened: list[Sink] = []
            try:
                if self.config.detect.interval.every > 1 and parts.boxes_from_tracks is None:
                    raise ConfigError("detect.interval.every > 1 needs parts.boxes_from_tracks")
                for sink in self.sinks:
                    sink.open(parts.run)
                    opened.append(sink)
            except BaseException:
                for sink in opened:
                    _close_quietly(sink)
                parts.source.close()
                raise
            self._prepared = True
            return parts

    def start(self) -> None:
        """Prepare (see :meth:`prepare`) and start the threads; returns at once; idempotent.

        Results go to the sinks and ``on_result``; to the iterator only once someone iterates
        (``for result in pipeline`` starts the pipeline itself, so that no result is missed).

        Raises:
            StipError: a source, model, detector or sink cannot be opened (nothing is left open).
        """
        parts = self.prepare()
        with self._lock:
            if self._started:
                return
            self._started = True
        live = parts.run.source.live
        self._newest_only = live
        size = self.config.queues.size or (1 if live else 8)
        # queue k is stage k's input; the last one feeds the caller's iterator
        self._queues = [queue.Queue(maxsize=size) for _ in _NAMES] + [queue.Queue(maxsize=max(size, 2))]
        loops = (self._source_loop, self._detect_loop, self._pose_loop, self._track_loop, self._sink_loop)
        self._threads = [
            # only the source may block inside a C call (camera/network read) that no flag can
            # interrupt; as a last resort it is a daemon so that it can never hang interpreter exit
            threading.Thread(target=loop, name=f"stip-rt-{name}", daemon=(name == "source"))
            for name, loop in zip(_NAMES, loops)
        ]
        self._stats.start()
        for t in self._threads:
            t.start()
        logger.info("pipeline started: %s (queues of %d)", parts.run.source.uri, size)

    def stop(self) -> None:
        """Stop every stage, close the sinks (keeping what was written) and join the threads; idempotent."""
        with self._prepare_lock, self._lock:
            if self._stopped:
                return
            self._stopped = True
            started, prepared = self._started, self._prepared
        if not started:
            if prepared:  # opened but never ran
                assert self.parts is not None
                for sink in self.sinks:
                    _close_quietly(sink)
                self.parts.source.close()
            return
        for ev in self._cancel:
            ev.set()
        self._join(self.config.queues.join_timeout_s)

    def _join(self, timeout: float | None) -> None:
        for t in self._threads:
            if t is threading.current_thread():
                continue
            t.join(timeout)
            if t.is_alive():
                logger.warning("thread %s did not stop within %.0f s", t.name, timeout or 0)
        self._stats.finish()

    def __enter__(self) -> Pipeline:
        self.prepare()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[FrameResult]:
        """Yield results in frame order until the source ends; then raise the run's error, if any."""
        if self._on_result is not None:
            raise ConfigError("this pipeline delivers its results to on_result; it cannot also be iterated")
        self._attached = True
        self.start()
        out = self._queues[-1]
        try:
            while True:
                try:
                    item = out.get(timeout=_POLL)
                except queue.Empty:
                    if not self._threads[-1].is_alive() and out.empty():
                        break
                    continue
                if item is _END:
                    break
                yield item
            self._threads[-1].join()  # the sinks are closing: let them finish writing
        finally:
            self.stop()
        if self._error is not None:
            raise self._error

    def run(self) -> PipelineStats:
        """Process the whole source into the sinks (and ``on_result``) and return the figures.

        Raises:
            StipError: the run's error, after everything computed before it was written.
        """
        self.start()
        self.wait()
        return self.stats()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (it must have been started); True when it has ended.

        Raises:
            StipError: the run's error.
        """
        if not self._started:
            raise ConfigError("wait(): the pipeline was not started")
        try:
            self._threads[-1].join(timeout)
        except BaseException:  # Ctrl-C while waiting: stop cleanly, then let it through
            self.stop()
            raise
        if self._threads[-1].is_alive():
            return False
        self.stop()
        if self._error is not None:
            raise self._error
        return True

    @property
    def error(self) -> StipError | None:
        """The run's error so far (None while all is well)."""
        return self._error

    @property
    def running(self) -> bool:
        """True between :meth:`start` and the end of the sink thread."""
        return bool(self._threads) and self._threads[-1].is_alive()

    def stats(self) -> PipelineStats:
        """Figures of the run so far (any thread, any time)."""
        return self._stats.snapshot()

    # ---------------------------------------------------------------- plumbing

    def _get(self, k: int) -> Any:
        q = self._queues[k]
        while not self._cancel[k].is_set():
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                continue
        return _CANCELLED

    def _put(self, k: int, item: Any) -> bool:
        """Stage ``k`` hands ``item`` to the next queue; False when stage ``k`` was told to stop."""
        q = self._queues[k + 1]
        if self._newest_only and k < 2 and item is not _END:
            return self._put_newest(q, item)
        while not self._cancel[k].is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _put_newest(self, q: queue.Queue[Any], item: Any) -> bool:
        """Live input, before the pose stage: never wait; a newer frame replaces a waiting one."""
        while True:
            try:
                q.put_nowait(item)
                return True
            except queue.Full:
                try:
                    q.get_nowait()
                except queue.Empty:
                    continue  # the consumer just took it: room now
                self._stats.dropped_in_queue()

    def _fail(self, k: int, exc: BaseException, item: _Item | None, frame_index: int | None = None) -> None:
        """Record the first error and stop the stages before ``k``; the ones after it drain."""
        err = self._as_stip_error(k, exc, item.frame.index if item is not None else frame_index)
        with self._lock:
            if self._error is None:
                self._error = err
        for i in range(k):
            self._cancel[i].set()

    def _as_stip_error(self, k: int, exc: BaseException, frame_index: int | None) -> StipError:
        if isinstance(exc, StipError):
            return exc
        logger.debug("%s stage failed", _NAMES[k], exc_info=exc)
        uri = self.parts.run.source.uri if self.parts is not None else self.config.source.uri
        where = f"{uri}: frame {frame_index}" if frame_index is not None else uri
        return _ERROR_TYPES[_NAMES[k]](f"{where}: {_NAMES[k]} stage failed: {type(exc).__name__}: {exc}")

    def _timed(self, item: _Item, stage: str, t0: float) -> None:
        dt = time.perf_counter() - t0
        item.timings[stage] = dt
        self._stats.stage(stage, dt)

    # ---------------------------------------------------------------- stages

    def _source_loop(self) -> None:
        assert self.parts is not None
        source = self.parts.source
        seq = 0
        last_index: int | None = None
        it: Iterator[Frame] | None = None
        try:
            it = iter(source)
            while not self._cancel[0].is_set():
                t0 = time.perf_counter()
                frame = next(it, None)
                if frame is None:
                    break
                item = _Item(seq, frame, time.perf_counter())
                self._timed(item, "decode", t0)
                self._stats.set_dropped(source.dropped)
                last_index, seq = frame.index, seq + 1
                if not self._put(0, item):
                    break
        except Exception as e:
            self._fail(0, e, None, None if last_index is None else last_index + 1)
        finally:
            close = getattr(it, "close", None)
            try:
                if close is not None:
                    close()
                source.close()
            except Exception as e:
                self._fail(0, e, None)
            self._stats.set_dropped(source.dropped)
            self._put(0, _END)

    def _stage_loop(self, k: int, work: Callable[[_Item], bool]) -> None:
        """Take items from queue ``k``, ``work`` on them, pass them on; END travels through."""
        item: Any = None
        try:
            while True:
                item = self._get(k)
                if item is _CANCELLED or item is _END:
                    break
                if not work(item) or not self._put(k, item):
                    break
        except Exception as e:
            self._fail(k, e, item if isinstance(item, _Item) else None)
        self._put(k, _END)

    def _detect_loop(self) -> None:
        assert self.parts is not None
        detector = self.parts.detector
        every = self.config.detect.interval.every
        last_key: int | None = None  # frame index of the last detection frame

        def work(item: _Item) -> bool:
            nonlocal last_key
            # by frame index: with dropped frames (live) the detector still runs every `every` source frames
            if last_key is None or item.frame.index - last_key >= every:
                last_key = item.frame.index
                t0 = time.perf_counter()
                item.dets = detector.detect([item.frame.image], [item.frame.index])[0]
                self._timed(item, "detect", t0)
                self._stats.detector_ran()
            return True

        self._stage_loop(1, work)

    def _pose_loop(self) -> None:
        assert self.parts is not None
        parts = self.parts
        last_seq = -1  # the last item this stage passed on (live input may skip some)

        def work(item: _Item) -> bool:
            nonlocal last_seq
            if item.dets is None:  # detector skipped this frame: boxes from the previous tracks
                previous = self._feedback.wait(last_seq, self._cancel[2])
                if previous is None:
                    return False
                if len(previous) == 0:  # nobody tracked: detect now rather than at the next detection frame
                    t0 = time.perf_counter()
                    item.dets = parts.detector.detect([item.frame.image], [item.frame.index])[0]
                    self._timed(item, "detect", t0)
                    self._stats.detector_ran()
                else:
                    assert parts.boxes_from_tracks is not None
                    item.dets = parts.boxes_from_tracks(previous)
            t0 = time.perf_counter()
            if parts.estimator is None:
                item.poses = Poses.from_detections(item.dets)
            else:
                item.poses = parts.estimator(item.frame.image, item.dets)
            self._timed(item, "pose", t0)
            last_seq = item.seq
            return True

        self._stage_loop(2, work)

    def _track_loop(self) -> None:
        assert self.parts is not None
        tracker = self.parts.tracker

        def work(item: _Item) -> bool:
            assert item.poses is not None
            t0 = time.perf_counter()
            item.tracks = tracker.update(item.poses, item.frame.index)
            self._timed(item, "track", t0)
            self._feedback.publish(item.seq, item.tracks)
            return True

        self._stage_loop(3, work)

    def _sink_loop(self) -> None:
        item: Any = None
        try:
            while True:
                item = self._get(4)
                if item is _CANCELLED or item is _END:
                    break
                assert item.tracks is not None
                latency = time.perf_counter() - item.t_capture
                item.timings["latency"] = latency
                result = FrameResult(
                    item.frame.index,
                    item.frame.time,
                    item.tracks,
                    item.timings,
                    item.frame.image if self._needs_image else None,
                )
                t0 = time.perf_counter()
                for sink in self.sinks:
                    sink.write(result)
                self._timed(item, "sink", t0)
                self._stats.result(item.tracks.ids, latency)
                if self._on_result is not None:
                    self._on_result(result)
                elif self._attached and not self._put(4, result):
                    break
        except Exception as e:
            self._fail(4, e, item if isinstance(item, _Item) else None)
        finally:
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as e:
                    self._fail(4, e, None)
            self._stats.finish()
            if self._attached:
                self._put(4, _END)  # gives up once stopped: the caller may have stopped reading
            if self._on_end is not None:
                self._on_end(self._error)


def _close_quietly(sink: Sink) -> None:
    try:
        sink.close()
    except Exception:
        logger.debug("closing %r after a failed start", sink, exc_info=True)

