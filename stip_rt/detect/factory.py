"""``create_detector``: a detector from a zoo name (``rtmdet-tiny|s|m|l``) or a detections file."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

from ..errors import ConfigError
from ..nn.rtmdet import SIZES, build_rtmdet
from .base import Detector
from .config import RTMDetDetectorConfig
from .files import read_detections_file
from .rtmdet import RTMDetDetector

log = logging.getLogger(__name__)

DEFAULT_DETECTOR = "rtmdet-tiny"


def create_detector(
    name_or_file: str | Path = DEFAULT_DETECTOR,
    device: str = "auto",
    *,
    backend: str = "auto",
    precision: str = "auto",
    config: RTMDetDetectorConfig | None = None,
    weights: str | Path | None = None,
    random_weights: bool = False,
    images: Sequence[str | Path] | None = None,
    annotations: str | Path | None = None,
) -> Detector:
    """Build a person detector (detect-every-N wraps it: :func:`stip_rt.detect.interval.every_n`).

    Args:
        name_or_file: ``rtmdet-tiny`` (default), ``rtmdet-s``, ``rtmdet-m``, ``rtmdet-l``; or a
            detections file (COCO ``.json`` or MOTChallenge ``.txt``, see :mod:`stip_rt.detect.files`).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        backend: inference backend for the network (``torch``, ``onnxruntime``, ... as
            :func:`stip_rt.runtime.factory.create_backend`); ``auto``: ONNX Runtime on the CPU when
            installed (about 3× PyTorch eager there, ``scripts/bench_detect.py``), else PyTorch;
            on CUDA ``cuda-fast`` (folded BatchNorm, FP16, a CUDA graph per batch bucket and
            input size) when Triton is installed, else PyTorch. Every backend serves the
            prepared graph (:func:`stip_rt.nn.fold.prepare_inference`).
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU), ``fp32``, ``fp16``, ``bf16``.
        config: input size and thresholds of the network detector.
        weights: an mmdetection RTMDet checkpoint to use instead of the zoo file; None: the zoo
            weights, downloaded into the cache on first use (SHA-256 checked).
        random_weights: skip the weights (tests, benchmarks).
        images, annotations: COCO detections of an image folder: the images in frame order and
            the annotation file mapping file names to image ids.

    Raises:
        ConfigError: unknown detector name. WeightsError: weights missing offline / corrupt /
            not loading. DataError: a malformed detections file. BackendError: backend unusable.
    """
    key = str(name_or_file)
    if key in SIZES:
        detector: Detector = _network(key, device, backend, precision, config, weights, random_weights)
    elif Path(key).suffix.lower() in (".json", ".txt") or Path(key).exists():
        detector = read_detections_file(key, images, annotations, score_threshold=0.0)
    else:
        from ..errors import did_you_mean

        raise ConfigError(
            f"detector '{key}': not a detector name{did_you_mean(key, SIZES)} nor a detections file "
            f"(names: {', '.join(SIZES)}; files: COCO .json, MOTChallenge .txt)"
        )
    return detector


def _network(
    name: str,
    device: str,
    backend: str,
    precision: str,
    config: RTMDetDetectorConfig | None,
    weights: str | Path | None,
    random_weights: bool,
) -> RTMDetDetector:
    from ..models import RANDOM_SEED, seeded
    from ..runtime.factory import create_backend, resolve_device

    cfg = config or RTMDetDetectorConfig()
    if backend == "auto":
        device = resolve_device(device)
        if device == "cpu":
            backend = "onnxruntime" if importlib.util.find_spec("onnxruntime") else "torch"
        else:
            backend = "cuda-fast" if importlib.util.find_spec("triton") else "torch"
    if random_weights:
        with seeded(RANDOM_SEED):  # the same random network every run: one cached ONNX export
            model = build_rtmdet(name)
    else:
        if weights is None:
            from ..weights import weights_path

            weights = weights_path(name)
        model = build_rtmdet(name, weights=weights)
    size = (cfg.input_size, cfg.input_size)
    runner = create_backend(model, backend=backend, device=device, precision=precision, input_size=size)
    log.info("detector %s at %d px on %s", name, cfg.input_size, getattr(runner, "device", device))
    return RTMDetDetector(runner, cfg, name=name, weights="random weights" if random_weights else str(weights))
