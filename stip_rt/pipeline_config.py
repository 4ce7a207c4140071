"""What one pipeline run is made of: its stage objects (:class:`PipelineParts`), with the small
protocols the pose and track stages satisfy. The settings are a :class:`~stip_rt.run_config.RunConfig`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .detect.base import Detector
from .errors import ConfigError, StipError
from .io.base import Sink, Source, sink_failure, sink_items
from .types import Detections, Poses, RunInfo, Tracks

logger = logging.getLogger(__name__)


class PoseStage(Protocol):
    """``estimator(image, detections) -> Poses`` (e.g. :class:`stip_rt.pose.estimator.PoseEstimator`)."""

    def __call__(self, image: np.ndarray, detections: Detections, /) -> Poses: ...


class TrackStage(Protocol):
    """``update(poses, frame_index) -> Tracks`` (e.g. :class:`stip_rt.track.tracker.Tracker`)."""

    def update(self, poses: Poses, frame_index: int) -> Tracks: ...


@dataclass(frozen=True)
class PipelineParts:
    """The stage objects of one run (built from a config by :func:`stip_rt.pipeline_build.build_parts`,
    or by hand: tests and applications may pass their own).

    Attributes:
        source: opened frame source (the pipeline closes it).
        detector: person detector, or detections read from a file.
        estimator: pose estimator, or None for box-only tracking.
        tracker: the tracker.
        run: what the sinks write in their header.
        boxes_from_tracks: turns the previous frame's tracks into boxes for frames the detector
            skips; required when ``detect.interval.every > 1``.
    """

    source: Source
    detector: Detector
    estimator: PoseStage | None
    tracker: TrackStage
    run: RunInfo
    boxes_from_tracks: Callable[[Tracks], Detections] | None = None


def open_run(parts: PipelineParts, sinks: Sequence[Sink], every: int) -> None:
    """Check ``parts`` for detect-every-``every``, claim every sink for ``parts.run``, then open them.

    Every sink that can refuse a run (another run writes its file, its format needs keypoints)
    does so while it is claimed, before any sink creates or truncates a file: a refused run
    leaves every earlier output as it was.

    Raises:
        StipError: a sink refuses the run or cannot be opened (the sinks claimed before it and the
            source are closed; their failures to close are appended to the message). A sink's error
            that is not a :class:`StipError` names the sink, with the error as its cause: a
            :class:`SinkError` for an ``OSError`` (a user-written sink's ``PermissionError``), a
            :class:`CallbackError` for another error of a caller's own sink (:func:`~stip_rt.io.base.sink_failure`).
    """
    try:
        if every > 1 and parts.boxes_from_tracks is None:
            raise ConfigError("detect.interval.every > 1 needs parts.boxes_from_tracks")
        open_sinks(sinks, parts.run)
    except BaseException:
        parts.source.close()
        raise


def open_sinks(sinks: Sequence[Sink], run: RunInfo) -> None:
    """Claim every sink for ``run``, then open them; on a failure close those claimed, so that
    nothing is left locked or half-written (a refused run changes no file).

    Raises:
        StipError: the first failure (a sink's error that is not a StipError as a SinkError or
            CallbackError naming the sink, chained: :func:`~stip_rt.io.base.sink_failure`), with the
            failures to close appended to its message.
    """
    claimed: list[Sink] = []
    try:
        for sink in sinks:
            claimed.append(sink)  # closed on failure: a half-claimed sink drops what it took
            claim = getattr(sink, "claim", None)
            if claim is not None:
                _sink_call(sink, "claim", claim, run)
        for sink in sinks:
            _sink_call(sink, "open", sink.open, run)
    except BaseException as e:
        closing = close_sinks(claimed)
        if isinstance(e, StipError):
            with_later_errors(e, closing)
        raise


def _sink_call(sink: Sink, verb: str, method: Callable[[RunInfo], None], run: RunInfo) -> None:
    """``method(run)``; an error that is not a StipError becomes one naming the sink (:func:`sink_failure`)."""
    try:
        method(run)
    except StipError:
        raise
    except Exception as e:
        raise sink_failure(sink, verb, e) from e


def as_sinks(sinks: Any, origin: str = "Pipeline") -> tuple[Sink, ...]:
    """The sinks of a run from what a caller gave: a sink or an output path, or a sequence of them
    (a path gets the writer :func:`stip_rt.io.sinks.open_sink` picks by its suffix).

    Raises:
        ConfigError: an item that is neither a path nor a sink, naming it and what it lacks.
        SinkError: an output whose format cannot be told from its name.
    """
    from .io.sinks import open_sink

    return tuple(open_sink(s) if isinstance(s, str) else s for s in sink_items(sinks, origin))


def close_run(parts: PipelineParts, sinks: Sequence[Sink]) -> list[StipError]:
    """Close ``sinks`` and the source of a run that never started; returns the sinks' failures
    (:func:`close_sinks`)."""
    errors = close_sinks(sinks)
    parts.source.close()
    return errors


def close_sinks(sinks: Sequence[Sink]) -> list[StipError]:
    """Close every sink, each one even when another fails.

    Returns:
        One :class:`StipError` per sink that failed to close, in sink order: the sink's own
        :class:`StipError`, or one naming the sink's file (or type) and the cause (a
        :class:`SinkError`, or a :class:`CallbackError` for a caller's sink's bug: :func:`sink_failure`).
    """
    errors: list[StipError] = []
    for sink in sinks:
        try:
            sink.close()
        except Exception as e:
            logger.debug("closing %r failed", sink, exc_info=True)
            if isinstance(e, StipError):
                errors.append(e)
                continue
            errors.append(sink_failure(sink, "close", e))
    return errors


def with_later_errors(first: StipError, later: Sequence[BaseException]) -> StipError:
    """``first`` (still the error that counts: its type decides the exit code) with the message of
    every later failure appended in order, so that none goes unreported
    (``...: pose stage failed: ...; also: out.json: cannot close: ...``)."""
    later = [e for e in later if e is not first]
    if later:
        first.args = ("; also: ".join([str(first), *(str(e) for e in later)]),)
    return first
