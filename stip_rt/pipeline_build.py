"""Turn a :class:`~stip_rt.run_config.RunConfig` into the stage objects of one run.

Each stage builds from its own branch: the source from ``config.source``
(:mod:`stip_rt.io.sources`), the detector from ``config.detect`` (:mod:`stip_rt.detect.factory`,
with ``detect.rtmdet`` and the ``detect.interval``), the pose estimator from ``config.pose`` and
``config.runtime`` (:mod:`stip_rt.models`, :mod:`stip_rt.runtime.factory`,
:mod:`stip_rt.pose.estimator`), the tracker from ``config.track`` (:mod:`stip_rt.track.tracker`).
Nothing here decodes or tracks; for a live source the networks make their first calls here (:func:`warm_up`).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable

from .detect.base import Detector
from .errors import ConfigError, WeightsError
from .io.base import Source
from .pipeline_config import PipelineParts, PoseStage, TrackStage
from .run_config import DetectConfig, RunConfig
from .schemas import KeypointSchema, get_schema
from .types import Detections, RunInfo, SourceInfo, Tracks
from .weights import RANDOM, checkpoint_arg

logger = logging.getLogger(__name__)

#: Pose models ``auto`` chooses between: STIP when its (hand-imported) weights are cached, else HRNet.
AUTO_POSE = ("stip-w32-coco-256x192", "hrnet-w32-coco-256x192")

#: A chosen pose model: (model spec name, checkpoint path or None, random weights?).
PoseChoice = tuple[str, str | None, bool]


def build_parts(config: RunConfig) -> PipelineParts:
    """Open the source and build detector, pose estimator and tracker for ``config``.

    The cheap checks come first: the source's path (:func:`~stip_rt.io.sources.check_source`),
    then the model files (:func:`fetch_weights`, which may download), then the source is opened.

    Raises:
        StipError: the source cannot be opened, a model or its weights are missing, a config is
            invalid. Anything opened before the failure is closed again.
    """
    from .io.sources import check_source, open_source
    from .runtime.factory import resolve_device

    src = config.source
    if src.uri is None:
        raise ConfigError("source.uri: no source given (a video file, stream URL, camera index or image folder)")
    check_source(src.uri)  # a wrong path first (a stat): not after locating, or downloading, the weights
    pose = fetch_weights(config)  # every missing checkpoint named in one message, before anything opens
    source = open_source(src.uri, start=src.start, max_frames=src.max_frames, live=src.live, config=src)
    try:
        device = resolve_device(config.runtime.device)
        detector = _build_detector(config, device, source)
        estimator, pose_name, schema, backend_desc = build_estimator(config, device, pose=pose)
        tracker = _build_tracker(config, source.info, schema)
        if source.info.live:
            warm_up(detector, estimator, source.info)
        run = RunInfo(source.info, schema, pose_name, detector.name, backend_desc, device)
        info = source.info
        every = config.detect.interval.every
        boxes = _boxes_from_tracks(config.detect, info.width, info.height) if every > 1 else None
        return PipelineParts(source, detector, estimator, tracker, run, boxes)
    except BaseException:
        source.close()
        raise


def warm_up(detector: Detector | None, estimator: PoseStage | None, info: SourceInfo) -> None:
    """Make the networks' slow first calls before a live source is read (its frames would be late, and dropped).

    Every stage with a ``warm_up(width, height)`` method runs it on a black frame of the source's
    size: the network detectors (a detections file has nothing to warm) and the pose estimator
    (:meth:`~stip_rt.pose.estimator.PoseEstimator.warm_up`: with ``cuda-fast``, a CUDA graph for
    every batch bucket, not one the first time a frame holds that many people). A live network
    stream or a camera is kept drained meanwhile (:class:`~stip_rt.io.video_source.VideoSource`,
    :class:`~stip_rt.io.camera.CameraSource`), so its first frame read is a fresh one. A stage built
    later (the viewer loads its pose model after the source and the detector) is warmed up by a call
    of its own, with None for the stage already warm.
    """
    t0 = time.perf_counter()
    warmed = []
    for stage, words in ((detector, "the detector"), (estimator, "the pose model")):
        warm = getattr(stage, "warm_up", None)
        if callable(warm):
            warm(info.width, info.height)
            warmed.append(words)
    if warmed:
        logger.info("warmed up %s for a live source in %.2f s", " and ".join(warmed), time.perf_counter() - t0)


def fetch_weights(config: RunConfig) -> PoseChoice | None:
    """Bring every zoo checkpoint the run needs into the cache (downloading what is missing).

    Both the detector's and the pose model's are tried before failing, so that one message names
    everything that is missing (offline: each URL and the import command), not one per run.

    Returns:
        The pose model chosen (for :func:`build_estimator`, so ``auto`` is decided and reported
        once), or None for ``pose.model: none``.

    Raises:
        WeightsError: one or more checkpoints cannot be had, all of them named.
    """
    from . import weights as zoo

    problems: list[str] = []
    pose: PoseChoice | None = None
    det = config.detect
    if det.detections is None:
        random, path = checkpoint_arg(det.weights)
        if not random and path is None:
            try:
                zoo.weights_path(det.model)
            except WeightsError as e:
                problems.append(f"detector: {e}")
    if config.pose.model != "none":
        try:
            pose = _resolve_pose(config)
        except WeightsError as e:
            problems.append(f"pose model: {e}")
    if len(problems) == 1:
        raise WeightsError(problems[0])
    if problems:
        raise WeightsError(f"{len(problems)} model files are missing. " + " | ".join(problems))
    return pose


def _build_detector(config: RunConfig, device: str, source: Source) -> Detector:
    from .detect.factory import create_detector

    det = config.detect
    if det.detections is not None:
        # COCO detections of an image folder are matched to the images by file name
        images = getattr(source, "paths", None)
        return create_detector(det.detections, device=device, images=images)
    random, path = checkpoint_arg(det.weights)
    if random:
        logger.warning("detector %s has random weights: boxes are meaningless (demo/test mode)", det.model)
    return create_detector(
        det.model,
        device=device,
        precision=config.runtime.precision,
        config=det.rtmdet,
        weights=path,
        random_weights=random,
    )


def _resolve_pose(config: RunConfig) -> PoseChoice:
    """(model spec, checkpoint path or None, random weights?) for the pose model of ``config``."""
    from . import weights as zoo

    random, path = checkpoint_arg(config.pose.weights)
    name = config.pose.model
    if name == "auto":
        if random or path is not None:
            name = AUTO_POSE[0]
        else:
            try:
                return AUTO_POSE[0], str(zoo.weights_path(AUTO_POSE[0], fetch=False)), False
            except WeightsError:
                entry = zoo.get_entry(AUTO_POSE[0])
                cached = zoo.weights_dir() / entry.file
                if cached.exists():  # cached but damaged: say so, do not fall back to a download of HRNet
                    why = zoo.check_cached(entry, cached, full=False).message
                    raise WeightsError(
                        f"cached weights of '{entry.name}' (the default pose model) at {cached} are corrupt ({why}); "
                        f"import them again (`{zoo.import_command(entry.name)}`) or use --model {AUTO_POSE[1]}"
                    ) from None
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


def build_estimator(
    config: RunConfig, device: str | None = None, pose: PoseChoice | None = None
) -> tuple[PoseStage | None, str, KeypointSchema | None, str]:
    """The pose estimator of ``config.pose`` on ``config.runtime`` (also used by ``predict`` and ``eval``).

    Args:
        config: the run configuration.
        device: a resolved device; None resolves ``config.runtime.device``.
        pose: the pose model as :func:`fetch_weights` chose it; None chooses it here.

    Returns:
        (estimator or None for ``pose.model: none``, model name, schema or None, backend description).
    """
    if config.pose.model == "none":
        return None, "none", None, "none"
    from .models import RANDOM_SEED, build_model, load_spec
    from .pose.estimator import PoseEstimator
    from .runtime.factory import create_backend, describe_backend, resolve_backend, resolve_device

    rt = config.runtime
    device = device or resolve_device(rt.device)
    name, path, random = pose or _resolve_pose(config)
    score_from = config.pose.score_from
    if score_from == "auto":
        score_from = "box" if random else "keypoints"
    if random:
        logger.warning(
            "pose model %s has random weights: skeletons are meaningless (demo/test mode)%s",
            name,
            "; person scores are the detector's box scores" if score_from == "box" else "",
        )
    spec = load_spec(name)
    model = build_model(spec, weights=path, seed=RANDOM_SEED if random else None).eval()
    extra = {}
    if resolve_backend(rt.backend, device) == "cuda-fast":  # the backend's own settings; precision: runtime's wins
        cuda_fast = rt.cuda_fast
        if rt.precision != "auto":
            cuda_fast = dataclasses.replace(cuda_fast, precision=rt.precision)
        extra["config"] = cuda_fast
    backend = create_backend(model, backend=rt.backend, device=device, precision=rt.precision, **extra)
    named = "random weights" if random else path
    estimator = PoseEstimator(
        backend,
        spec,
        flip_test=config.pose.flip_test,
        in_vis_thre=config.pose.in_vis_thre,
        score_from=score_from,
        weights=named,
        decode_graphs=config.pose.decode_graphs,
        max_crops=config.pose.max_crops,
    )
    return estimator, spec.name, get_schema(spec.schema), describe_backend(backend)


def _build_tracker(config: RunConfig, info: SourceInfo, schema: KeypointSchema | None) -> TrackStage:
    from .track.tracker import Tracker

    size = (info.width, info.height) if info.width > 0 and info.height > 0 else None  # lost tracks leaving it end
    return Tracker(config.track, fps=info.fps, schema=schema, frame_size=size)


def _boxes_from_tracks(detect: DetectConfig, width: int, height: int) -> Callable[[Tracks], Detections]:
    from .detect.interval import boxes_from_tracks

    return functools.partial(boxes_from_tracks, config=detect.interval, width=width, height=height)


def describe_run(run: RunInfo) -> str:
    """One line for run summaries: source, models and backend."""
    s = run.source
    size = f"{s.width}x{s.height} @ {s.fps:g} fps" + (f", {s.frame_count} frames" if s.frame_count else "")
    return (
        f"{s.uri} ({size}{', live' if s.live else ''}) | pose {run.pose_model} | detector {run.detector} | "
        f"backend {run.backend}"
    )


__all__ = ["AUTO_POSE", "RANDOM", "build_estimator", "build_parts", "describe_run"]
