"""The official top-down test protocol (STIP_SPEC §1.6, §4), from detection boxes to AP.

Per image: read it as the official loader does (``cv2.imread``, BGR, EXIF orientation
ignored) → every detection box (score ≥ ``image_thre``, person class) as one batch through
the :class:`~stip_rt.pose.estimator.PoseEstimator` (flip test on) → official decoding →
rescoring (box score × mean keypoint score above 0.2) → greedy OKS-NMS at 0.9 with the
schema's NMS sigmas and the crop areas → COCO results → :func:`evaluate_keypoints`.

The official code batches crops across images (32 per GPU); here an image's crops form one
batch. Networks run in eval mode, so results do not depend on how crops are batched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DataError, SourceError
from ..geometry import boxes_to_center_scale
from ..io.coco import keypoint_category, poses_to_coco, read_coco_detections, read_coco_gt
from ..pose.estimator import PoseEstimator
from ..pose.postprocess import OKS_THRE, oks_nms
from ..schemas import BUILTIN_SCHEMAS
from ..types import Detections, Poses
from .keypoints import DATASET_SCHEMA, Dataset, KeypointMetrics, check_dataset_keys, evaluate_keypoints

log = logging.getLogger(__name__)

Progress = Callable[[Iterable[Any], int], Iterable[Any]]


@dataclass(frozen=True)
class ProtocolConfig:
    """Settings of the test protocol (defaults = the official STIP test settings).

    Attributes:
        image_thre: keep detection boxes with score ≥ this (official ``IMAGE_THRE``: 0).
        use_nms: run OKS-NMS per image.
        oks_thre: OKS-NMS threshold (0.9).
    """

    image_thre: float = 0.0
    use_nms: bool = True
    oks_thre: float = OKS_THRE


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as the official loader: BGR uint8, EXIF orientation ignored.

    Raises:
        SourceError: missing or unreadable file.
    """
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"image {p}: file not found")
    img = cv2.imread(str(p), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if img is None:
        raise SourceError(f"image {p}: cannot read this image (damaged or not an image)")
    return img


def nms_poses(poses: Poses, estimator: PoseEstimator, oks_thre: float = OKS_THRE) -> Poses:
    """Official OKS-NMS over the people of one image (kept people in the official order).

    Args:
        poses: the estimator's output (scores already rescored).
        estimator: gives the crop geometry (areas) and the schema's NMS sigmas.
        oks_thre: threshold.

    Returns:
        The kept people, highest score first.
    """
    if len(poses) == 0 or poses.keypoints is None:
        return poses
    _, scale = boxes_to_center_scale(poses.boxes, estimator.spec.aspect_ratio, estimator.spec.box_padding)
    areas = np.prod(scale * np.float32(200.0), axis=1).astype(np.float32)
    keep = oks_nms(poses.keypoints, poses.scores, areas, estimator.schema.sigmas_array(for_nms=True), oks_thre)
    return Poses(poses.boxes[keep], poses.box_scores[keep], poses.keypoints[keep], poses.scores[keep])


def predict_images(
    estimator: PoseEstimator,
    images: Iterable[tuple[Any, Path]],
    detections: Mapping[Any, Detections],
    config: ProtocolConfig | None = None,
) -> Iterator[tuple[Any, Path, np.ndarray, Poses]]:
    """Run the protocol's inference on images, one batch per image.

    Args:
        estimator: the pose estimator (its flip-test setting is used as is).
        images: (image id, path) pairs.
        detections: image id → boxes; images without an entry get no people.
        config: protocol settings (None: the official ones).

    Yields:
        (image id, path, image BGR, poses after rescoring and OKS-NMS).
    """
    config = config if config is not None else ProtocolConfig()
    for image_id, path in images:
        image = read_image(path)
        dets = detections.get(image_id, Detections.empty())
        if len(dets) and config.image_thre > 0:
            keep = dets.scores >= config.image_thre
            dets = Detections(dets.boxes[keep], dets.scores[keep])
        poses = estimator(image, dets)
        if config.use_nms:
            poses = nms_poses(poses, estimator, config.oks_thre)
        yield image_id, path, image, poses


def _gt_images(gt: Mapping[str, Any], images_dir: Path, gt_name: str) -> list[tuple[Any, Path]]:
    out = []
    for i, img in enumerate(gt["images"]):
        name = img.get("file_name")
        if not isinstance(name, str):
            raise DataError(f"ground truth {gt_name}: images[{i}] has no 'file_name'")
        path = images_dir / name
        if not path.is_file() and (images_dir / Path(name).name).is_file():
            path = images_dir / Path(name).name
        if not path.is_file():
            raise SourceError(f"image {path}: file not found (images[{i}] of {gt_name}, id {img['id']})")
        out.append((img["id"], path))
    return out


def run_protocol(
    estimator: PoseEstimator,
    gt_path: str | Path,
    images_dir: str | Path,
    detections_path: str | Path,
    dataset: Dataset = "coco",
    config: ProtocolConfig | None = None,
    progress: Progress | None = None,
) -> tuple[KeypointMetrics, list[dict[str, Any]]]:
    """Full protocol: detections → poses → COCO results → OKS AP.

    Args:
        estimator: pose estimator whose schema matches ``dataset``.
        gt_path: ground-truth annotation JSON (COCO or CrowdPose).
        images_dir: folder with the GT's ``file_name`` images.
        detections_path: person detections (COCO results with ``bbox``).
        dataset: ``coco`` or ``crowdpose``.
        config: protocol settings (None: the official ones).
        progress: optional ``progress(iterable, total) -> iterable`` wrapper (the CLI's progress bar).

    Returns:
        (metrics, COCO results list). The results are in the official format, without ``bbox``:
        pycocotools then takes each result's ``area`` from its keypoints, as the metric printed
        here does, so any COCO tool scores a written file with the same AP(M) and AP(L). Their
        ``category_id`` is the ground truth's person category
        (:func:`~stip_rt.io.coco.keypoint_category`), whose boxes are read from the detections.

    Raises:
        DataError: invalid files, or a model whose joints do not match the dataset.
        SourceError: a GT image is missing.
    """
    config = config if config is not None else ProtocolConfig()
    want = DATASET_SCHEMA.get(dataset)
    if want is None:
        raise DataError(f"unknown dataset '{dataset}' (use 'coco' or 'crowdpose')")
    custom = estimator.schema.name not in BUILTIN_SCHEMAS and dataset == "coco"  # scored with its own sigmas
    if estimator.schema.name != want and not custom:
        raise DataError(
            f"model '{estimator.spec.name}' predicts {estimator.schema.name} keypoints but dataset "
            f"'{dataset}' needs {want}"
        )
    gt = read_coco_gt(gt_path, estimator.num_keypoints)
    check_dataset_keys(gt, dataset, str(gt_path))  # before any inference, not after it
    sizes = {img["id"]: (img.get("width", np.inf), img.get("height", np.inf)) for img in gt["images"]}
    person = keypoint_category(gt, f"ground truth {gt_path}")
    dets = read_coco_detections(detections_path, sizes, score_threshold=config.image_thre, category_id=person)
    images = _gt_images(gt, Path(images_dir), str(gt_path))
    stream: Iterable[Any] = predict_images(estimator, images, dets, config)
    if progress is not None:
        stream = progress(stream, len(images))
    results: list[dict[str, Any]] = []
    for image_id, _, _, poses in stream:
        results.extend(poses_to_coco(image_id, poses, person, bbox=False))  # official format: see the docstring
    log.info("protocol: %d people kept on %d images", len(results), len(images))
    return evaluate_keypoints(gt, results, dataset, estimator.schema if custom else None), results
