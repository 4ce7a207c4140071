"""The sink stage: each frame's :class:`~stip_rt.types.FrameResult`, written to every sink, and its errors."""

from __future__ import annotations

import time
from collections.abc import Sequence

from .errors import CallbackError, SinkError, StipError
from .io.base import Sink, sink_failure
from .stage_item import FrameItem, NullRecorder, Recorder, record_time
from .types import FrameResult


class SinkWriteError(SinkError):
    """A sink's ``write`` raised an ``OSError`` (its ``__cause__``), or another error of a sink
    stip-rt provides; the message names the sink, the pipeline adds the source and the frame."""


class SinkCodeError(CallbackError):
    """A caller's own sink's ``write`` raised an error that is neither a :class:`StipError` nor an
    ``OSError`` (its ``__cause__``: a bug in the caller's code, not a disk); named as :class:`SinkWriteError`."""


class SinkStep:
    """Sink stage: the frame's :class:`FrameResult`, written to every sink.

    Args:
        sinks: opened sinks (the pipeline opens and closes them).
        needs_image: attach the frame to the result (a sink draws, or ``outputs.with_images``).
        recorder: gets ``sink`` times and each result's track ids and latency.
    """

    def __init__(self, sinks: Sequence[Sink], needs_image: bool, recorder: Recorder | None = None) -> None:
        self.sinks = tuple(sinks)
        self.needs_image = needs_image
        self.recorder = recorder or NullRecorder()

    def __call__(self, item: FrameItem) -> FrameResult:
        """Write ``item``'s result to every sink, in order, and return it.

        Raises:
            SinkWriteError: a sink's ``write`` raised an ``OSError`` (a sink's own :class:`StipError`
                passes through).
            SinkCodeError: a caller's own sink's ``write`` raised another error (a ``ValueError``).
        """
        if item.tracks is None:
            raise ValueError(f"frame {item.frame.index}: no tracks to write")
        latency = time.perf_counter() - item.t_capture
        item.timings["latency"] = latency
        image = item.frame.image if self.needs_image else None
        result = FrameResult(item.frame.index, item.frame.time, item.tracks, item.timings, image)
        t0 = time.perf_counter()
        for sink in self.sinks:
            try:
                sink.write(result)
            except StipError:
                raise
            except Exception as e:
                raise sink_failure(sink, "write", e, SinkWriteError, SinkCodeError) from e
        record_time(self.recorder, item, "sink", time.perf_counter() - t0)
        self.recorder.result(item.tracks.ids, latency)
        return result
