"""The run configuration: one nested, frozen tree that every entry point builds.

``RunConfig(source, detect, pose, runtime, track, outputs, queues)``: each stage builds from its
own branch. Every default lives in code (these dataclasses and the component configs they hold);
``stip_rt/defaults.yaml`` lists every key with its type and meaning. The tree is loaded once
(defaults + optional ``--config FILE`` + ``--set a.b=v``) and validated completely before any
source, file or model is opened. This module imports no torch, so validation is fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .detect.config import IntervalConfig, RTMDetDetectorConfig
from .io.source_config import SourceConfig
from .runtime.config import CudaFastConfig
from .track.config import TrackerConfig


@dataclass(frozen=True)
class DetectConfig:
    """Where person boxes come from.

    Attributes:
        model: detector name (``rtmdet-tiny|s|m|l``).
        weights: detector checkpoint path, ``random`` (demos, tests), or None (the weights cache).
        detections: a detections file (COCO results JSON or MOT det/gt text) used instead of the detector.
        interval: detect-every-N (``interval.every``) and how boxes are made from tracked poses in between.
        rtmdet: input size, thresholds and NMS of the RTMDet detector.
    """

    model: str = "rtmdet-tiny"
    weights: str | None = None
    detections: str | None = None
    interval: IntervalConfig = field(default_factory=lambda: IntervalConfig(every=1))
    rtmdet: RTMDetDetectorConfig = field(default_factory=RTMDetDetectorConfig)


@dataclass(frozen=True)
class PoseConfig:
    """The pose model and how it is run.

    Attributes:
        model: zoo name, model YAML path, ``auto`` (STIP-W32 when its weights are cached, else
            HRNet-W32) or ``none`` (box-only tracking).
        weights: checkpoint path, ``random`` (demos, tests), or None (the weights cache).
        flip_test: also run the mirrored crops and average the heatmaps (slower, a little more accurate).
        batch_frames: files only: up to this many consecutive frames share one network batch
            (live sources always run one frame per batch).
        max_crops: people per network call at most; more (a crowd, several frames) run as several
            calls, so the crops and the network's memory stay bounded (64: cuda-fast's largest
            bucket and TensorRT's largest profile batch).
        in_vis_thre: keypoint scores above this count in the person score (official 0.2).
        score_from: where a person's score comes from: ``keypoints`` (box score × mean keypoint score,
            official), ``box`` (the detector's box score alone), or ``auto`` (``box`` when the pose
            weights are ``random``, whose keypoint scores mean nothing; else ``keypoints``).
        decode_graphs: on CUDA, replay the flip average, decoding and person scores from one CUDA
            graph per bucket of people instead of ~240 eager ops (off until a GPU run measures it).
    """

    model: str = "auto"
    weights: str | None = None
    flip_test: bool = False
    batch_frames: int = 4
    max_crops: int = 64
    in_vis_thre: float = 0.2
    score_from: str = "auto"
    decode_graphs: bool = False


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how the networks run.

    Attributes:
        backend: ``auto``, ``torch``, ``cuda-fast``, ``onnxruntime`` or ``tensorrt``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``fp16`` or ``bf16``.
        stage_streams: CUDA: the pipeline's detect and pose threads queue their GPU work on a
            stream each, so that one stage's synchronisation does not wait for the other's work.
        cuda_fast: settings of the ``cuda-fast`` backend.
    """

    backend: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    stage_streams: bool = False
    cuda_fast: CudaFastConfig = field(default_factory=CudaFastConfig)


@dataclass(frozen=True)
class OutputsConfig:
    """What the run writes.

    Attributes:
        files: output files; the format follows the suffix (``.jsonl``, ``.json``, ``.csv``, ...).
        video: annotated video path, or None.
        trails: draw each track's trajectory over the last this many frames on the annotated
            video (0: no trails).
        with_images: attach the frame to every result even when no output draws.
        save: ``stip-rt track`` given no ``files`` and no ``video`` writes the tracks (JSONL) and the
            annotated video to a new folder ``<save_dir>/<name>`` (False: nothing is saved).
            ``track_frames`` and the viewer write only what they are given.
        save_dir: the folder of those runs; each run gets a new sub-folder (``<name>``, ``<name>2``,
            ``<name>3``...), never overwriting one.
        name: that sub-folder's name; None: the source's stem (``vtest`` for ``vtest.avi``,
            ``camera0`` for camera 0, the last part of a stream URL).
    """

    files: tuple[str, ...] = ()
    video: str | None = None
    trails: int = 0
    with_images: bool = False
    save: bool = True
    save_dir: str = "runs/track"
    name: str | None = None


@dataclass(frozen=True)
class QueuesConfig:
    """The queues between the pipeline's stages.

    Attributes:
        size: capacity of each queue; 0 = auto (1 for live sources, 8 for files).
        join_timeout_s: how long stopping waits for each thread, seconds.
    """

    size: int = 0
    join_timeout_s: float = 10.0


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, one branch per stage.

    Attributes:
        source: what is read (``source.uri``) and how it is decoded, buffered and reconnected.
        detect: person boxes: detector or detections file, detect-every-N.
        pose: the pose model, flip test, cross-frame batching.
        runtime: backend, device, precision.
        track: the tracker.
        outputs: files, the annotated video, and the run folder `stip-rt track` saves to by default.
        queues: queue sizes and thread shutdown.
    """

    source: SourceConfig = field(default_factory=SourceConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    track: TrackerConfig = field(default_factory=TrackerConfig)
    outputs: OutputsConfig = field(default_factory=OutputsConfig)
    queues: QueuesConfig = field(default_factory=QueuesConfig)
