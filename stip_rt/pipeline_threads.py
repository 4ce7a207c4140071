"""The bodies of the :class:`~stip_rt.pipeline.Pipeline`'s four threads and the queue plumbing they share.

Stage ``k`` (``_NAMES[k]``) reads ``queues[k - 1]`` and writes ``queues[k]``; each waits on its
queue in short polls so that its cancel flag stops it. What a stage does to a frame is in
:mod:`stip_rt.stages`; starting, stopping and the first-error rule are in :mod:`stip_rt.pipeline`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import StipError
from .io.base import Sink
from .live_pacing import LivePacer
from .pipeline_config import PipelineParts, close_sinks
from .pipeline_stats import StatsRecorder
from .run_config import RunConfig
from .stage_item import FrameItem
from .stages import Steps
from .types import FrameResult

_POLL = 0.05  # seconds between checks of the stop flags while a queue is full/empty
_END = object()  # end of stream marker travelling down the queues
_CANCELLED = object()  # returned by _get when the stage was told to stop

_NAMES = ("detect", "pose", "track", "sink")  # stage k reads queues[k - 1] and writes queues[k]


class StageThreads:
    """The thread loops of :class:`~stip_rt.pipeline.Pipeline` (a base class: it owns the state they use)."""

    config: RunConfig
    parts: PipelineParts | None
    sinks: tuple[Sink, ...]
    _on_result: Callable[[FrameResult], None] | None
    _on_end: Callable[[StipError | None], None] | None
    _attached: bool
    _cancel: list[threading.Event]
    _stopping: threading.Event
    _sink_done: threading.Event
    _queues: list[queue.Queue[Any]]
    _stats: StatsRecorder
    _pacer: LivePacer

    if TYPE_CHECKING:  # defined by Pipeline

        @property
        def error(self) -> StipError | None: ...

        def _fail(self, k: int, exc: BaseException, frame_index: int | None, stage: str | None = None) -> None: ...

        def _reader_gone(self) -> bool: ...

    def _get(self, k: int) -> Any:
        """Stage ``k``'s next input (``queues[k - 1]``); _CANCELLED once stage ``k`` was told to stop."""
        q = self._queues[k - 1]
        while not self._cancel[k].is_set():
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                continue
        return _CANCELLED

    def _put(self, k: int, item: Any) -> bool:
        """Stage ``k`` hands ``item`` on (``queues[k]``, blocking: back-pressure); False once told to stop."""
        return _put_until(self._queues[k], item, self._cancel[k].is_set)

    def _to_sinks(self, item: Any) -> bool:
        """The track stage hands ``item`` to the sink stage (blocking: back-pressure), also after
        stop(); False once the sink stage has ended or was told to stop."""
        return _put_until(self._queues[2], item, lambda: self._sink_done.is_set() or self._cancel[3].is_set())

    def _to_reader(self, item: Any) -> bool:
        """The sink stage hands ``item`` to the caller's iterator (blocking: back-pressure); False once
        no one will read it again (stop(), or the reading thread has ended: the run then stops)."""
        return _put_until(self._queues[3], item, self._reader_gone)

    def _stream(self, stage: object) -> contextlib.AbstractContextManager[object]:
        """The CUDA stream of a stage's thread (``runtime.stage_streams``, a stage whose backend is on a
        GPU: :func:`~stip_rt.runtime.cuda_fast.stage_stream`); a no-op otherwise (torch not imported)."""
        device = getattr(getattr(stage, "backend", None), "device", None)
        if not self.config.runtime.stage_streams or device is None:
            return contextlib.nullcontext()
        from .runtime.cuda_fast import stage_stream

        return stage_stream(device)

    # ---------------------------------------------------------------- stages

    def _detect_loop(self, steps: Steps) -> None:
        """Stage 0: frames from the source's buffer (its own reader thread), detected on schedule."""
        with self._stream(self.parts.detector if self.parts is not None else None):
            self._detect_frames(steps)

    def _detect_frames(self, steps: Steps) -> None:
        read, detect = steps.read, steps.detect
        item: FrameItem | None = None
        try:
            while self._pacer.wait_turn(self._cancel[0]):
                try:
                    item = read(_POLL)
                except queue.Empty:
                    continue
                except Exception as e:  # the source's error, after every frame read before it
                    self._fail(0, e, None if read.last_index is None else read.last_index + 1, "source")
                    break
                if item is None:
                    break
                self._pacer.took_frame()
                detect(item)
                self._pacer.detected(item.timings.get("detect", 0.0))
                if not self._put(0, item):
                    break
        except BaseException as e:  # SystemExit / KeyboardInterrupt too: they stop the run, never end it quietly
            self._fail(0, e, item.frame.index if item is not None else None)
        finally:
            try:
                read.feed.close()
            except Exception as e:
                self._fail(0, e, None, "source")
            self._stats.set_dropped(read.feed.dropped)
            self._put(0, _END)

    def _pose_loop(self, steps: Steps) -> None:
        """Stage 1: the frames already waiting, cut into batches (files), one network call per batch."""
        with self._stream(self.parts.estimator if self.parts is not None else None):
            self._pose_frames(steps)

    def _pose_frames(self, steps: Steps) -> None:
        batcher, pose = steps.batcher, steps.pose
        inbox = self._queues[0]

        def waiting() -> FrameItem | None:  # a frame that is already there, never wait
            try:
                got = inbox.get_nowait()
            except queue.Empty:
                return None
            if got is _END:  # the detect thread has ended: put the end back, last, for the blocking get
                inbox.put_nowait(got)
                return None
            return got

        batch: list[FrameItem] = []
        try:
            while True:
                self._pacer.pose_ready(input_waiting=bool(batcher.pending) or not inbox.empty())
                if not batcher.pending:
                    got = self._get(1)
                    if got is _CANCELLED or got is _END:
                        break
                    batcher.add(got)
                batcher.fill(waiting)
                batch = batcher.take()
                self._pacer.pose_busy()
                if not pose(batch, self._cancel[1]) or not all(self._put(1, it) for it in batch):
                    break
        except BaseException as e:  # an error may name the frame of the batch it concerns (NaN output)
            at = min(getattr(e, "frame_offset", 0), len(batch) - 1)
            self._fail(1, e, batch[at].frame.index if batch else None)
        self._put(1, _END)

    def _track_loop(self, steps: Steps) -> None:
        """Stage 2: the tracker, frame by frame in order (its undelayed tracks also feed the pose
        stage's boxes on frames without detection). Frames leave when complete (a few frames later
        for files: back-fill); however the stage ends (end of stream, an error, stop), every frame
        already tracked is handed to the sinks, held ones included, then the end marker."""
        track = steps.track
        item: Any = None
        try:
            while (item := self._get(2)) is not _CANCELLED and item is not _END:
                for done in track(item):
                    if not self._to_sinks(done):
                        return
        except BaseException as e:
            self._fail(2, e, item.frame.index if isinstance(item, FrameItem) else None)
        finally:
            for done in track.flush():
                if not self._to_sinks(done):
                    break
            self._to_sinks(_END)

    def _sink_loop(self, steps: Steps) -> None:
        """Stage 3: write every sink, then hand the result to ``on_result`` or the iterator; close the
        sinks; call ``on_end``. It ends at the track stage's end marker (after stop() too: what was
        tracked is written). A failing ``on_result`` or ``on_end`` is the run's error, like a stage's."""
        item: Any = None
        stage = "sink"
        try:
            while (item := self._get(3)) is not _CANCELLED and item is not _END:
                stage = "sink"
                result = steps.sink(item)
                if self._on_result is not None:
                    stage = "on_result"
                    self._on_result(result)
                elif self._attached:
                    self._to_reader(result)
        except BaseException as e:  # SystemExit / KeyboardInterrupt too: they stop the run, never end it quietly
            self._fail(3, e, item.frame.index if isinstance(item, FrameItem) else None, stage)
        finally:
            try:
                for err in close_sinks(self.sinks):  # every sink is closed; each failure is reported
                    self._fail(3, err, None)
                self._stats.finish()
                if self._attached:
                    self._to_reader(_END)
                if self._on_end is not None:
                    try:
                        self._on_end(self.error)
                    except BaseException as e:
                        self._fail(3, e, None, "on_end")
            finally:
                self._sink_done.set()


def _put_until(q: queue.Queue[Any], item: Any, stopped: Callable[[], bool]) -> bool:
    """Blocking put (back-pressure) that gives up, returning False, once ``stopped()``."""
    while not stopped():
        try:
            q.put(item, timeout=_POLL)
            return True
        except queue.Full:
            continue
    return False
