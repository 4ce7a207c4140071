"""The threaded pipeline: detect → pose → track → sinks, each stage on its own thread.

Here are the control (prepare, start, stop, iterate, wait) and the errors; the four thread loops
and their queue plumbing are in :mod:`stip_rt.pipeline_threads`, what a stage does is in :mod:`stip_rt.stages`, and
each policy has one home (``docs/pipeline.md``, "Where each policy lives"). Queues are bounded
and a put blocks while full (back-pressure); only a live source drops frames. The first error
anywhere wins: the stages before the failing one stop at once, the ones after it finish what is
queued, the sinks are closed and one :class:`StipError` naming the input (and the frame) is
raised. :meth:`Pipeline.stop` (or Ctrl-C while iterating) stops every stage, writes the frames already
tracked and closes the sinks.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .errors import BackendError, CallbackError, ConfigError, SinkError, SourceError, StipError
from .io.base import Sink
from .io.source_config import redact_credentials
from .live_pacing import LivePacer
from .pipeline_config import PipelineParts, as_sinks, close_run, open_run, with_later_errors
from .pipeline_stats import PipelineStats, StatsRecorder
from .pipeline_threads import _END, _NAMES, _POLL, StageThreads
from .run_config import RunConfig
from .sink_step import SinkCodeError, SinkWriteError
from .stages import make_steps
from .types import FrameResult

__all__ = ["Pipeline", "PipelineParts", "RunConfig"]  # parts live in pipeline_config, the settings in run_config

logger = logging.getLogger(__name__)

_ERROR_TYPES: dict[str, type[StipError]] = {
    "source": SourceError,  # the detect thread reads the source: its errors are named apart
    "detect": BackendError,
    "pose": BackendError,
    "track": StipError,
    "sink": SinkError,
    "on_result": CallbackError,  # the caller's own code: not disguised as a disk error
    "on_end": CallbackError,
}


class Pipeline(StageThreads):
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
        sinks: writers (a list of sinks and/or output paths, or one of them; a path gets the writer
            :func:`stip_rt.io.sinks.open_sink` picks by its suffix); opened in :meth:`prepare`, closed
            (flushed) when the run ends, fails or stops.
        parts: pre-built stages; by default built from ``config`` in :meth:`prepare`.
        on_result: called on the sink thread with each result; the pipeline is then not iterable.
        on_end: called once on the sink thread when the run ends, with the error or None.

    Raises:
        ConfigError: a sink that is neither a path nor a sink object (naming what it lacks).
        SinkError: an output path whose format cannot be told from its name.

    An exception raised by ``on_result`` or ``on_end`` is the run's error: a :class:`CallbackError`
    naming the frame, with the exception as its ``__cause__``; so is a caller's own sink's error
    that is not an ``OSError`` (its ``OSError`` is a :class:`SinkError`). A ``SystemExit`` or
    ``KeyboardInterrupt`` from a callback (or a stage) stops the run too: the sinks are closed, the
    run's error says what happened, and :meth:`run`, :meth:`wait` or the iteration re-raise that
    exception itself.
    """

    def __init__(
        self,
        config: RunConfig | None = None,
        sinks: Sink | str | os.PathLike[str] | Sequence[Sink | str | os.PathLike[str]] = (),
        *,
        parts: PipelineParts | None = None,
        on_result: Callable[[FrameResult], None] | None = None,
        on_end: Callable[[StipError | None], None] | None = None,
    ) -> None:
        self.config = config = config if config is not None else RunConfig()
        self.sinks = as_sinks(sinks, "Pipeline")
        self.parts = parts
        self._on_result = on_result
        self._on_end = on_end
        self._lock = threading.Lock()
        self._prepare_lock = threading.Lock()
        self._prepared = False
        self._started = False
        self._stopped = False
        self._attached = False  # an iterator takes the results (else: sinks/callback only)
        self._reader: threading.Thread | None = None  # the thread iterating; the run stops when it ends
        self._error: StipError | None = None
        self._later: list[StipError] = []  # failures after the first one (e.g. a sink that cannot close)
        self._fatal: BaseException | None = None  # SystemExit / KeyboardInterrupt on a thread: re-raised
        self._cancel = [threading.Event() for _ in _NAMES]
        self._stopping = threading.Event()  # stop() was called: results are no longer handed to the iterator
        self._sink_done = threading.Event()  # the sink thread has ended (sinks closed, on_end called)
        self._queues: list[queue.Queue[Any]] = []
        self._threads: list[threading.Thread] = []
        self._stats = StatsRecorder()
        self._needs_image = config.outputs.with_images or any(s.needs_image for s in self.sinks)
        self._pacer = LivePacer(live=False)  # set for the source in start()

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
            open_run(self.parts, self.sinks, self.config.detect.interval.every)
            self._prepared = True
            return self.parts

    def start(self) -> None:
        """Prepare (see :meth:`prepare`) and start the threads; returns at once; idempotent.

        Results go to the sinks and ``on_result``; to the iterator only once someone iterates
        (``for result in pipeline`` starts the pipeline itself, so that no result is missed).

        Raises:
            StipError: a source, model, detector or sink cannot be opened (nothing is left open).
        """
        parts = self.prepare()
        with self._lock:  # held until every thread runs: a stop() from another thread waits for it
            if self._started:
                return
            if self._stopped:
                raise ConfigError("this pipeline was stopped; create a new Pipeline for another run")
            cfg = self.config
            live = parts.run.source.live
            size = cfg.queues.size or (1 if live else 8)
            # queue k is stage k's output; the last one feeds the caller's iterator
            self._queues = [queue.Queue(maxsize=size) for _ in _NAMES[:-1]] + [queue.Queue(maxsize=max(size, 2))]
            self._pacer = LivePacer(live)
            steps = make_steps(parts, cfg, self.sinks, self._needs_image, self._stats)
            loops = (self._detect_loop, self._pose_loop, self._track_loop, self._sink_loop)
            # no thread here blocks in a C call that no flag can interrupt (the source's own reader
            # thread, a daemon, may), so none is a daemon: stop() joins them all
            names = (f"stip-rt-{n}" for n in _NAMES)
            self._threads = [threading.Thread(target=f, args=(steps,), name=n) for n, f in zip(names, loops)]
            self._stats.start()
            for t in self._threads:
                t.start()
            self._started = True
        logger.info("pipeline started: %s (queues of %d)", parts.run.source.uri, size)

    def stop(self) -> None:
        """Stop every stage, write the frames already tracked, close the sinks and join the threads; idempotent.

        The detect, pose and track stages stop at once; the sinks still write every frame the
        tracker has finished (also the ones it held back for back-filling), then close.
        """
        with self._prepare_lock, self._lock:
            if self._stopped:
                return
            self._stopped = True
            started, prepared = self._started, self._prepared
        if not started:
            if prepared:  # opened but never ran
                assert self.parts is not None
                for e in close_run(self.parts, self.sinks):
                    logger.error("%s", e)
            return
        self._halt()
        if threading.current_thread() is self._threads[-1]:  # on_result / on_end stopped the run
            self._cancel[-1].set()  # the sink stage cannot write more while inside its own callback
        timeout = self.config.queues.join_timeout_s
        for t in self._threads:
            if t is threading.current_thread():
                continue
            if t is self._threads[-1]:
                if self._threads[-2].is_alive():
                    self._cancel[-1].set()  # the track stage did not end: do not wait for its end marker
                ended = self._sink_done.wait(timeout)  # the sinks are closed (an Event: see wait())
                if ended:
                    t.join(timeout)  # only returning from its function is left
            else:
                t.join(timeout)
                ended = not t.is_alive()
            if not ended:
                logger.warning("thread %s did not stop within %.0f s", t.name, timeout or 0)
        self._stats.finish()

    def __enter__(self) -> Pipeline:
        self.prepare()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[FrameResult]:
        """Yield results in frame order until the source ends; then raise the run's error, if any.

        Closing the iterator (or dropping it, as leaving ``for result in pipeline`` does) stops the run;
        so does the end of the thread that read it last (a script that kept it and reached its end).
        """
        if self._on_result is not None:
            raise ConfigError("this pipeline delivers its results to on_result; it cannot also be iterated")
        self._attached = True
        self._reader = threading.current_thread()
        self.start()
        out = self._queues[-1]
        try:
            while True:
                try:
                    item = out.get(timeout=_POLL)
                except queue.Empty:
                    if self._sink_done.is_set() and out.empty():
                        break
                    continue
                if item is _END:
                    break
                yield item
                self._reader = threading.current_thread()  # whoever resumed the iterator reads now
            self._sink_done.wait()  # the sinks are closing: let them finish writing (see wait())
        finally:
            self.stop()
        self._raise_error()

    def run(self) -> PipelineStats:
        """Process the whole source into the sinks (and ``on_result``) and return the figures.

        Raises:
            StipError: the run's error, after everything computed before it was written.
            BaseException: a ``SystemExit`` or ``KeyboardInterrupt`` raised on a pipeline thread
                (e.g. ``sys.exit()`` in ``on_result``), itself, after the sinks were closed.
        """
        self.start()
        self.wait()
        return self.stats()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (it must have been started); True when it has ended.

        Raises:
            StipError: the run's error.
            BaseException: a ``SystemExit`` or ``KeyboardInterrupt`` raised on a pipeline thread, itself.
        """
        if not self._started:
            raise ConfigError("wait(): the pipeline was not started")
        # An Event, not Thread.join(): on CPython 3.11 a join() interrupted by a signal handler's
        # exception (Ctrl-C) can mark the still-running sink thread as stopped, and stop() would then
        # return before the sinks are closed (see stip_rt.interrupt).
        try:
            ended = self._sink_done.wait(timeout)
        except BaseException:  # Ctrl-C while waiting: stop cleanly, then let it through
            self.stop()
            raise
        if not ended:
            return False
        self.stop()
        self._raise_error()
        return True

    def _raise_error(self) -> None:
        """Raise a thread's ``SystemExit`` / ``KeyboardInterrupt`` itself (the run's error, :attr:`error`,
        says where it happened), else the run's error, if any."""
        error = self.error
        if self._fatal is not None:
            raise self._fatal
        if error is not None:
            raise error

    @property
    def error(self) -> StipError | None:
        """The run's first error so far (None while all is well), with the messages of any later
        failures appended (e.g. a sink that could not close after the error)."""
        with self._lock:
            err, later, self._later = self._error, self._later, []
        return with_later_errors(err, later) if err is not None else None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and the end of the sink thread."""
        return bool(self._threads) and not self._sink_done.is_set()

    def stats(self) -> PipelineStats:
        """Figures of the run so far (any thread, any time)."""
        return self._stats.snapshot()

    def _halt(self) -> None:
        """Stop handing results to the iterator and stop the stages before the sinks (those write
        what was tracked, then close); returns at once, from any thread, the sink thread included."""
        self._stopping.set()
        for ev in self._cancel[:-1]:  # the sink stage ends at the track stage's end marker
            ev.set()

    def _reader_gone(self) -> bool:
        """True once no one will read the iterator again: stop() was called, or the thread that
        iterates has ended (a script that kept the iterator, left its loop and reached its end: the
        interpreter's exit waits for the threads); in the latter case the run stops (:meth:`_halt`)."""
        if self._stopping.is_set():
            return True
        reader = self._reader
        if reader is None or reader.is_alive():
            return False
        logger.info("pipeline: %s, which read the results, has ended: stopping the run", reader.name)
        self._halt()
        return True

    # ---------------------------------------------------------------- errors

    def _fail(self, k: int, exc: BaseException, frame_index: int | None, stage: str | None = None) -> None:
        """Record the first error (as a :class:`StipError` naming the input and frame) and stop the
        stages before ``k``; the ones after it drain."""
        stage = stage or _NAMES[k]
        uri = self.parts.run.source.uri if self.parts is not None else redact_credentials(str(self.config.source.uri))
        where = f"{uri}: frame {frame_index}" if frame_index is not None else uri
        err = exc if isinstance(exc, StipError) else None
        if err is None:
            logger.debug("%s failed", stage, exc_info=exc)
            what = stage if stage.startswith("on_") else f"{stage} stage"
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            err = _ERROR_TYPES[stage](f"{where}: {what} failed: {detail}")
            err.__cause__ = exc  # raised later on another thread: keep the original and its traceback
        elif isinstance(err, BackendError) and stage in ("detect", "pose") and frame_index is not None:
            err.args = (f"{where}: {stage} stage: {err}",)  # a network's own error (e.g. NaN output): add the frame
        elif isinstance(err, SinkWriteError | SinkCodeError) and frame_index is not None:
            err.args = (f"{where}: sink stage failed: {err}",)  # it names the sink: add the source and frame
        with self._lock:
            if not isinstance(exc, Exception) and self._fatal is None:
                self._fatal = exc  # SystemExit, KeyboardInterrupt: the caller gets it back, not a StipError
            if self._error is None:
                self._error = err
            else:
                self._later.append(err)
        for i in range(k):
            self._cancel[i].set()
