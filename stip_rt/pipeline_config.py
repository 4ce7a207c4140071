"""What one pipeline run is made of: its settings (:class:`PipelineConfig`) and its stage objects
(:class:`PipelineParts`), with the small protocols the pose and track stages satisfy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .detect.base import Detector
from .errors import ConfigError
from .io.base import Source
from .types import Detections, Poses, RunInfo, Tracks


@dataclass(frozen=True)
class PipelineConfig:
    """Everything a run needs; the CLI's flags map one to one onto these fields.

    Attributes:
        source: video file, stream URL (rtsp/http/hls), camera index or device, image folder or glob.
        pose: pose model (zoo name, YAML or JSON config path), ``auto`` (STIP-W32 when its weights are cached,
            else HRNet-W32), or ``none`` for box-only tracking.
        weights: pose checkpoint path; ``random`` for random weights (demos, tests); None = weights cache.
        detector: detector name (``rtmdet-tiny|s|m|l``).
        detector_weights: detector checkpoint path, ``random``, or None (weights cache).
        detections: detections file (COCO results JSON or MOT det/gt text) used instead of the detector.
        backend: ``auto``, ``torch``, ``cuda-fast``, ``onnxruntime``, ``tensorrt``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``...
        precision: ``auto``, ``fp32``, ``fp16``, ``bf16``.
        det_every: run the detector every N-th frame; boxes from the previous tracks in between.
        flip_test: average the heatmaps of the flipped crops too (slower, a little more accurate).
        tracker: tracker YAML (None = the packaged defaults).
        tracker_overrides: ``key=value`` overrides of the tracker config.
        smooth: keypoint smoothing on/off; None keeps the tracker config's setting.
        start: first frame (0-based) to process.
        max_frames: stop after this many frames (None = to the end).
        live: treat the source as live (drop frames when behind); None = decided by the source.
        queue_size: capacity of each queue between stages; 0 = auto (1 for live sources to keep
            latency low, 8 for files to absorb jitter).
        with_images: attach the frame to every :class:`FrameResult` even when no sink draws.
        join_timeout_s: how long :meth:`Pipeline.stop` waits for each thread.
    """

    source: str
    pose: str = "auto"
    weights: str | None = None
    detector: str = "rtmdet-tiny"
    detector_weights: str | None = None
    detections: str | None = None
    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    det_every: int = 1
    flip_test: bool = False
    tracker: str | None = None
    tracker_overrides: tuple[str, ...] = ()
    smooth: bool | None = None
    start: int = 0
    max_frames: int | None = None
    live: bool | None = None
    queue_size: int = 0
    with_images: bool = False
    join_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.det_every < 1:
            raise ConfigError(f"det_every: expected an integer >= 1, got {self.det_every}")
        if self.start < 0:
            raise ConfigError(f"start: expected a frame index >= 0, got {self.start}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max_frames: expected an integer >= 1, got {self.max_frames}")
        if self.queue_size < 0:
            raise ConfigError(f"queue_size: expected an integer >= 0, got {self.queue_size}")


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
            skips; required when ``det_every > 1``.
    """

    source: Source
    detector: Detector
    estimator: PoseStage | None
    tracker: TrackStage
    run: RunInfo
    boxes_from_tracks: Callable[[Tracks], Detections] | None = None
