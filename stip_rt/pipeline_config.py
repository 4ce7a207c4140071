"""What one pipeline run is made of: its stage objects (:class:`PipelineParts`), with the small
protocols the pose and track stages satisfy. The settings are a :class:`~stip_rt.run_config.RunConfig`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .detect.base import Detector
from .errors import ConfigError
from .io.base import Sink, Source
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
    """Check ``parts`` for detect-every-``every`` and open every sink for ``parts.run``.

    Raises:
        StipError: a sink cannot be opened (the sinks opened before it and the source are closed).
    """
    opened: list[Sink] = []
    try:
        if every > 1 and parts.boxes_from_tracks is None:
            raise ConfigError("detect.interval.every > 1 needs parts.boxes_from_tracks")
        for sink in sinks:
            sink.open(parts.run)
            opened.append(sink)
    except BaseException:
        close_run(parts, opened)
        raise


def close_run(parts: PipelineParts, sinks: Sequence[Sink]) -> None:
    """Close ``sinks`` (errors logged) and the source of a run that never started."""
    for sink in sinks:
        try:
            sink.close()
        except Exception:
            logger.debug("closing %r of a run that did not start", sink, exc_info=True)
    parts.source.close()
