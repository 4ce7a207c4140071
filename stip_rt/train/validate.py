"""Validation during training: OKS AP of the model being trained, with the project's test protocol.

The network (an eval-mode copy) runs through :class:`~stip_rt.pose.estimator.PoseEstimator` and
:func:`~stip_rt.eval.protocol.predict_images` exactly as ``stip-rt eval`` runs it (flip test,
rescoring, OKS-NMS), on ground-truth person boxes or on a detections file (the official test
protocol), and :func:`~stip_rt.eval.keypoints.evaluate_keypoints` scores it: COCO AP, CrowdPose AP
(easy/medium/hard), or COCO-style AP with a custom keypoint set's sigmas.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..data.keypoints_dataset import clean_box
from ..errors import ConfigError, DataError
from ..eval.keypoints import COCO_NAMES, CROWDPOSE_NAMES, check_dataset_keys, evaluate_keypoints
from ..eval.protocol import ProtocolConfig, _gt_images, predict_images
from ..io.coco import keypoint_category, poses_to_coco, read_coco_detections, read_coco_gt
from ..models import ModelSpec
from ..schemas import get_schema
from ..types import Detections

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValConfig:
    """Validation settings.

    Attributes:
        ann: COCO-format keypoint ground truth (None: no validation).
        images: its image folder.
        detections: person boxes (COCO results with ``bbox``); None = the ground-truth boxes.
        every: validate every N epochs (and after the last one).
        flip_test: average with the flipped image (the official test setting).
        metric: the metric that picks ``best.pth`` (``AP``).
    """

    ann: str | None = None
    images: str | None = None
    detections: str | None = None
    every: int = 10
    flip_test: bool = True
    metric: str = "AP"


def dataset_of(spec: ModelSpec) -> str:
    """``crowdpose`` for CrowdPose-14 models, else ``coco`` (COCO-17 and custom keypoint sets)."""
    return "crowdpose" if get_schema(spec.schema).name == "crowdpose14" else "coco"


def metric_names(spec: ModelSpec) -> tuple[str, ...]:
    """The metric names validation reports for this model."""
    return CROWDPOSE_NAMES if dataset_of(spec) == "crowdpose" else COCO_NAMES


def gt_detections(gt: dict[str, Any], category_id: int | None = None) -> dict[Any, Detections]:
    """Ground-truth person boxes (score 1) per image, as the official loaders give them with
    ``USE_GT_BBOX``: non-crowd people of the person category with a labelled keypoint, each box
    sanitised as for training (:func:`~stip_rt.data.keypoints_dataset.clean_box`: clipped to the
    image, size less 1 px; empty boxes and ``area`` ≤ 0 dropped).

    Args:
        gt: the ground truth.
        category_id: the person category; None: the ground truth's keypoint category
            (:func:`~stip_rt.io.coco.keypoint_category`).
    """
    person = keypoint_category(gt, "ground truth") if category_id is None else category_id
    images = {img["id"]: img for img in gt["images"]}
    boxes: dict[Any, list[list[float]]] = {i: [] for i in images}
    for a in gt["annotations"]:
        if a.get("iscrowd", 0) or a.get("category_id", person) != person or max(a["keypoints"][2::3], default=0) <= 0:
            continue
        box = clean_box(a, {"width": np.inf, "height": np.inf, **images[a["image_id"]]})
        if box is not None:
            boxes[a["image_id"]].append(box)
    return {i: Detections(np.asarray(b, np.float32).reshape(-1, 4), np.ones(len(b), np.float32))
            for i, b in boxes.items()}


def read_val_gt(config: ValConfig, spec: ModelSpec, name: str | None = None) -> dict[str, Any]:
    """The validation ground truth ``config.ann``, checked for what ``spec``'s metric needs: each
    annotation's ``area`` (COCO AP; custom keypoint sets too), each image's ``crowdIndex`` (CrowdPose).

    Args:
        config: the validation settings (``ann`` set).
        spec: the model validated (its keypoint set picks the metric).
        name: how the message names the file (default: its path).

    Raises:
        DataError: an invalid file, or the first annotation / image without the key, naming the file.
    """
    if config.ann is None:
        raise ConfigError("validation: set both val.ann and val.images")
    gt = read_coco_gt(config.ann, get_schema(spec.schema).num_keypoints)
    dataset = dataset_of(spec)
    hint = f"model {spec.name} ({get_schema(spec.schema).name}) is validated with {dataset} AP"
    check_dataset_keys(gt, dataset, name or str(config.ann), hint)  # type: ignore[arg-type]
    return gt


def check_val_set(config: ValConfig, spec: ModelSpec) -> None:
    """Check the validation set when a run starts, not at its first validation epochs later.

    The ground truth must have what the metric needs (:func:`read_val_gt`) and at least one person
    with a labelled keypoint (a set without any scores nothing: every metric would be 0 or −1);
    every image it names must be in ``images``; the detections file, when given, must be valid.

    Raises:
        DataError / SourceError: the first problem, naming the file or image.
    """
    gt = read_val_gt(config, spec, f"val.ann {config.ann}")
    person = keypoint_category(gt, f"val.ann {config.ann}")
    if not any(not a["iscrowd"] and a["num_keypoints"] > 0 and a.get("category_id", person) == person
               for a in gt["annotations"]):
        raise DataError(f"val.ann {config.ann}: no person with a labelled keypoint to validate on "
                        f"({len(gt['images'])} images, {len(gt['annotations'])} annotations, person category "
                        f"{person})")
    _gt_images(gt, Path(config.images or ""), f"val.ann {config.ann}")
    if config.detections is not None:
        read_coco_detections(config.detections, _image_sizes(gt), category_id=person)


def _image_sizes(gt: dict[str, Any]) -> dict[Any, Any]:  # (width, height); inf when not recorded
    return {img["id"]: (img.get("width", np.inf), img.get("height", np.inf)) for img in gt["images"]}


def validate(model: nn.Module, spec: ModelSpec, config: ValConfig, device: str) -> dict[str, float]:
    """OKS metrics of ``model`` on the validation set.

    Args:
        model: the network being trained (not modified: an eval-mode copy runs).
        spec: its spec (input size, decoding, schema).
        config: the validation set and settings (``ann`` and ``images`` set).
        device: where the copy runs.

    Returns:
        metric name → value in [0, 1] (:func:`metric_names`).

    Raises:
        DataError / SourceError: invalid annotation, detection or image files; a ground truth without
            what the metric needs (:func:`read_val_gt`), before the model runs.
    """
    from ..pose.estimator import PoseEstimator
    from ..runtime.torch_backend import TorchBackend

    if config.ann is None or config.images is None:
        raise ConfigError("validation: set both val.ann and val.images")
    schema = get_schema(spec.schema)
    gt = read_val_gt(config, spec)
    person = keypoint_category(gt, f"val.ann {config.ann}")
    dets = (gt_detections(gt, person) if config.detections is None
            else read_coco_detections(config.detections, _image_sizes(gt), category_id=person))
    # fold=False: no BatchNorm folding (and its random probe) for a copy that lives for one pass
    estimator = PoseEstimator(TorchBackend(model, device=device, fold=False), spec, flip_test=config.flip_test)
    images = _gt_images(gt, Path(config.images), str(config.ann))
    results: list[dict[str, Any]] = []
    for image_id, _, _, poses in predict_images(estimator, images, dets, ProtocolConfig()):
        results.extend(poses_to_coco(image_id, poses, category_id=person, bbox=False))
    dataset = dataset_of(spec)
    custom = schema.name not in ("coco17", "crowdpose14")
    metrics = evaluate_keypoints(gt, results, dataset, schema if custom else None)  # type: ignore[arg-type]
    log.info("validation on %d images: %s", len(images), " ".join(f"{k}={v:.4f}" for k, v in metrics.as_dict().items()))
    return metrics.as_dict()
