"""What one pipeline run is made of: its stage objects (:class:`PipelineParts`), with the small
protocols the pose and track stages satisfy. The settings are a :class:`~stip_rt.run_config.RunConfig`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .detect.base import Detector
from .io.base import Source
from .types import Detections, Poses, RunInfo, Tracks


class PoseStage(Protocol):
    """``estimator(image, detections) -> Poses`` (e.g. :class:`stip_rt.pose.estimator.PoseEstimator`)."""

    def __call__(self, image: np.ndarray, detections: Detections) -> Poses: ...


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
