"""Turn a :class:`~stip_rt.pipeline.PipelineConfig` into the stage objects of one run.

Each part comes from its home: sources from :mod:`stip_rt.io.sources`, detectors from
:mod:`stip_rt.detect.factory`, pose networks from :mod:`stip_rt.models`, backends from
:mod:`stip_rt.runtime.factory`, the estimator from :mod:`stip_rt.pose.estimator`, the tracker
from :mod:`stip_rt.track.tracker`. Nothing here decodes, infers or tracks.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

from .config import apply_overrides
from .detect.base import Detector
from .errors import WeightsError
from .io.base import Source
from .pipeline_config import PipelineConfig, PipelineParts, PoseStage, TrackStage
from .schemas import KeypointSchema, get_schema
from .types import Detections, RunInfo, Tracks

logger = logging.getLogger(__name__)

#: ``weights`` / ``detector_weights`` value that builds a network with random weights (demos, tests).
RANDOM = "random"
#: Pose models ``auto`` chooses between: STIP when its (hand-imported) weights are cached, else HRNet.
AUTO_POSE = ("stip-w32-coco-256x192", "hrnet-w32-coco-256x192")


def build_parts(config: PipelineConfig) -> PipelineParts:
    """Open the source and build detector, pose estimator and tracker for ``config``.

    Raises:
        StipError: the source cannot be opened, a model or its weights are missing, a config is
            invalid. Anything opened before the failure is closed again.
    """
    from .io.sources import open_source
    from .runtime.factory import resolve_device

    source = open_source(config.source, start=config.start, max_frames=config.max_frames, live=config.live)
    try:
        device = resolve_device(config.device)
        detector = _build_detector(config, device, source)
        estimator, pose_name, schema, backend_desc = _build_pose(config, device)
        tracker = _build_tracker(config, source.info.fps, schema)
        run = RunInfo(source.info, schema, pose_name, detector.name, backend_desc)
        info = source.info
        boxes = _boxes_from_tracks(config, info.width, info.height) if config.det_every > 1 else None
        return PipelineParts(source, detector, estimator, tracker, run, boxes)
    except BaseException:
        source.close()
        raise


def _weights_arg(value: str | None) -> tuple[bool, str | None]:
    """(random weights?, checkpoint path or None)."""
    if value is None:
        return False, None
    if value == RANDOM:
        return True, None
    if not Path(value).is_file():
        raise WeightsError(f"weights {value}: file not found (give a checkpoint path, or 'random')")
    return False, value


def _build_detector(config: PipelineConfig, device: str, source: Source) -> Detector:
    from .detect.factory import create_detector

    if config.detections is not None:
        # COCO detections of an image folder are matched to the images by file name
        images = getattr(source, "paths", None)
        return create_detector(config.detections, device=device, images=images)
    random, path = _weights_arg(config.detector_weights)
    if random:
        logger.warning("detector %s has random weights: boxes are meaningless (demo/test mode)", config.detector)
    return create_detector(
        config.detector, device=device, precision=config.precision, weights=path, random_weights=random
    )


def _resolve_pose(config: PipelineConfig) -> tuple[str, str | None, bool]:
    """(model spec, checkpoint path or None, random weights?) for the pose model of ``config``."""
    from . import weights as zoo

    random, path = _weights_arg(config.weights)
    name = config.pose
    if name == "auto":
        if random or path is not None:
            name = AUTO_POSE[0]
        else:
            try:
                return AUTO_POSE[0], str(zoo.weights_path(AUTO_POSE[0], fetch=False)), False
            except WeightsError:
                logger.warning("STIP weights are not cached (see `stip-rt weights import`); using %s", AUTO_POSE[1])
                name = AUTO_POSE[1]
    if random or path is not None:
        return name, path, random
    try:
        return name, str(zoo.weights_path(name)), False
    except WeightsError as e:
        if name in {m.name for m in zoo.list_models()}:
            raise
        raise WeightsError(f"pose model {name}: no weights known for it; pass --weights PATH (or 'random')") from e


def _build_pose(config: PipelineConfig, device: str) -> tuple[PoseStage | None, str, KeypointSchema | None, str]:
    """(estimator or None, model name, schema or None, backend description)."""
    if config.pose == "none":
        return None, "none", None, "none"
    from .models import build_model
    from .pose.estimator import PoseEstimator
    from .runtime.factory import create_backend, describe_backend

    spec, path, random = _resolve_pose(config)
    if random:
        logger.warning("pose model %s has random weights: keypoints are meaningless (demo/test mode)", spec)
    model = build_model(spec, weights=path).eval()
    backend = create_backend(model, backend=config.backend, device=device, precision=config.precision)
    estimator = PoseEstimator(backend, model.spec, flip_test=config.flip_test)
    return estimator, model.spec.name, get_schema(model.spec.schema), describe_backend(backend)


def _build_tracker(config: PipelineConfig, fps: float, schema: KeypointSchema | None) -> TrackStage:
    from .track.config import load_tracker_config
    from .track.tracker import Tracker

    overrides = apply_overrides({}, list(config.tracker_overrides))
    if config.smooth is not None:
        overrides = apply_overrides(overrides, [f"smoothing.enabled={str(config.smooth).lower()}"])
    tracker_config = load_tracker_config(config.tracker, overrides)
    return Tracker(tracker_config, fps=fps, schema=schema)


def _boxes_from_tracks(config: PipelineConfig, width: int, height: int) -> Callable[[Tracks], Detections]:
    from .detect.config import IntervalConfig
    from .detect.interval import boxes_from_tracks

    return functools.partial(
        boxes_from_tracks, config=IntervalConfig(every=config.det_every), width=width, height=height
    )


def describe_run(run: RunInfo) -> str:
    """One line for run summaries: source, models and backend."""
    s = run.source
    size = f"{s.width}x{s.height} @ {s.fps:g} fps" + (f", {s.frame_count} frames" if s.frame_count else "")
    return (
        f"{s.uri} ({size}{', live' if s.live else ''}) | pose {run.pose_model} | detector {run.detector} | "
        f"backend {run.backend}"
    )


__all__ = ["AUTO_POSE", "RANDOM", "build_parts", "describe_run"]
