"""Top-down person samples from COCO-format keypoint files (COCO and CrowdPose), as the official
STIP datasets build them (STIP_SPEC §3.2, §4): box sanitising, box → (center, scale) with
×1.25 padding, training augmentation (half body, scale, rotation, flip), the affine crop, and
the targets every official loss needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from ..io.coco import keypoint_category
from ..pose.crops import IMAGENET_MEAN, IMAGENET_STD, affine_matrices, apply_affine, boxes_to_center_scale
from ..schemas import KeypointSchema
from .targets import generate_target


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (official values).

    Attributes:
        scale_factor: scale ← scale · clip(1 + f·N(0,1), 1 − f, 1 + f).
        rotation_factor: degrees; r = clip(f·N(0,1), −2f, 2f), applied with ``rotation_prob``.
        rotation_prob: probability of rotating.
        flip_prob: probability of a horizontal flip.
        half_body_prob: probability of the half-body crop when enough joints are visible.
        half_body_min_joints: visible joints needed for the half-body crop (strictly more than this).
    """

    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip_prob: float = 0.5
    half_body_prob: float = 0.3
    half_body_min_joints: int = 8


@dataclass(frozen=True)
class Instance:
    """One annotated person.

    Attributes:
        image: image file path.
        image_id: id in the annotation file.
        center: (2,) float32 box centre, pixels.
        scale: (2,) float32 padded box size / 200.
        joints: (K, 3) float32 (x, y, v) pixels, v ∈ {0, 1, 2}.
    """

    image: Path
    image_id: int
    center: np.ndarray
    scale: np.ndarray
    joints: np.ndarray


def clean_box(ann: dict, image: dict) -> list[float] | None:
    """The official sanitised box of a ground-truth person (HRNet/STIP dataset loaders): ``bbox``
    clipped to the image, its size less 1 px, as ``[x1, y1, x2, y2]`` pixels; None for an empty box
    or an annotation whose ``area`` is ≤ 0 (both dropped by the official loaders)."""
    x, y, w, h = ann["bbox"]
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(image["width"] - 1.0, x1 + max(0.0, w - 1))
    y2 = min(image["height"] - 1.0, y1 + max(0.0, h - 1))
    if x2 < x1 or y2 < y1 or ann.get("area", 1) <= 0:
        return None
    return [x1, y1, x2, y2]


def load_instances(ann_file: str | Path, image_dir: str | Path, schema: KeypointSchema,
                   aspect_ratio: float = 0.75, padding: float = 1.25) -> list[Instance]:
    """Read the people of a COCO-format keypoint file (official sanitising: boxes clipped to the
    image, empty boxes and people without labelled keypoints dropped, ``iscrowd`` skipped).

    The people are the annotations of the file's keypoint category
    (:func:`~stip_rt.io.coco.keypoint_category`: 1 in COCO and CrowdPose, any id in a custom file).

    Raises:
        DataError: unreadable file, missing keys, ambiguous categories, or keypoints that do not
            match the schema.
    """
    path = Path(ann_file)
    try:
        data = json.loads(path.read_text())
        images = {im["id"]: im for im in data["images"]}
        anns = data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"annotations {path}: not a COCO keypoint file ({e})") from None
    person = keypoint_category(data, f"annotations {path}")
    k = schema.num_keypoints
    out = []
    for i, a in enumerate(anns):
        if a.get("iscrowd", 0) or a.get("category_id", person) != person or "keypoints" not in a:
            continue
        kps = np.asarray(a["keypoints"], np.float32)
        if kps.size != 3 * k:
            raise DataError(f"annotations {path}: annotation {i} (id {a.get('id')}) has {kps.size // 3} "
                            f"keypoints, schema {schema.name} has {k}")
        kps = kps.reshape(k, 3)
        if kps[:, 2].max() <= 0:
            continue
        im = images.get(a["image_id"])
        if im is None:
            raise DataError(f"annotations {path}: annotation {i} refers to unknown image id {a['image_id']}")
        box = clean_box(a, im)
        if box is None:
            continue
        center, scale = boxes_to_center_scale(np.array([box]), aspect_ratio, padding)
        out.append(Instance(Path(image_dir) / im["file_name"], a["image_id"], center[0], scale[0],
                            np.concatenate([kps[:, :2], np.minimum(kps[:, 2:], 1)], axis=1)))
    return out


class KeypointsDataset(Dataset):
    """Crops and targets for training (augmented) or validation (plain crop).

    Each item is ``(image (3,H,W) float32 normalised, targets)`` with targets a dict of tensors:
    ``heatmap`` (K,h,w), ``weight`` (K,1), ``semantics`` (K,) keypoint presence, ``mask`` (1,h,w)
    (1 where the own-instance Gaussians exceed 0.3), ``center``, ``scale``, ``image_id``.

    Args:
        instances: from :func:`load_instances`.
        schema: the keypoint schema (flip pairs, upper/lower body).
        input_size: crop (h, w).
        heatmap_size: target (h, w).
        sigma: Gaussian σ in heatmap pixels (STIP: 3 at 128×96; HRNet: 2 at 64×48).
        train: augment when True.
        augment: augmentation settings.
        seed: RNG seed (each item draws from ``seed + index + epoch offset``).
    """

    def __init__(self, instances: list[Instance], schema: KeypointSchema, input_size: tuple[int, int],
                 heatmap_size: tuple[int, int], sigma: float, train: bool = True,
                 augment: AugmentConfig | None = None, seed: int = 0) -> None:
        self.instances = instances
        self.schema = schema
        self.input_size = input_size
        self.heatmap_size = heatmap_size
        self.sigma = sigma
        self.train = train
        self.augment = augment or AugmentConfig()
        self.seed = seed
        self.epoch = 0
        self._flip = schema.flip_index()

    def __len__(self) -> int:
        return len(self.instances)

    def _half_body(self, joints: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
        vis = joints[:, 2] > 0
        upper = [j for j in self.schema.upper_body if vis[j]]
        lower = [j for j in self.schema.lower_body if vis[j]]
        chosen = upper if (rng.standard_normal() < 0.5 and len(upper) > 2) else (lower if len(lower) > 2 else upper)
        if len(chosen) < 2:
            return None
        pts = joints[chosen, :2]
        lo, hi = pts.min(0), pts.max(0)
        _, scale = boxes_to_center_scale(np.array([[*lo, *hi]]), self.input_size[1] / self.input_size[0], 1.5)
        return pts.mean(0).astype(np.float32), scale[0]  # official: centre = mean of the joints

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One sample.

        Raises:
            DataError: the image is missing or unreadable, or making its sample failed; the message names
                the image (also when it is raised in a DataLoader worker process).
        """
        inst = self.instances[index]
        try:
            return self._sample(inst, index)
        except DataError:
            raise
        except Exception as e:  # e.g. cv2.error: name the image, not only OpenCV's function
            raise DataError(f"image {inst.image}: cannot make its training sample ({type(e).__name__}: {e})") from e

    def _sample(self, inst: Instance, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = cv2.imread(str(inst.image), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"image {inst.image}: missing or unreadable")
        joints = inst.joints.copy()
        center, scale, rot = inst.center.copy(), inst.scale.copy(), 0.0
        if self.train:
            a = self.augment
            rng = np.random.default_rng((self.seed, self.epoch, index))
            if (joints[:, 2] > 0).sum() > a.half_body_min_joints and rng.random() < a.half_body_prob:
                half = self._half_body(joints, rng)
                if half is not None:
                    center, scale = half
            scale = scale * np.clip(rng.standard_normal() * a.scale_factor + 1, 1 - a.scale_factor,
                                    1 + a.scale_factor)
            if rng.random() <= a.rotation_prob:
                rot = float(np.clip(rng.standard_normal() * a.rotation_factor, -2 * a.rotation_factor,
                                    2 * a.rotation_factor))
            if rng.random() <= a.flip_prob:
                image = image[:, ::-1]
                joints = joints[self._flip]
                joints[:, 0] = np.where(joints[:, 2] > 0, image.shape[1] - 1 - joints[:, 0], joints[:, 0])
                center = np.array([image.shape[1] - 1 - center[0], center[1]], np.float32)
        h, w = self.input_size
        m = affine_matrices(center[None], scale[None], (w, h), rotation=rot)
        crop = cv2.warpAffine(np.ascontiguousarray(image), m[0], (w, h), flags=cv2.INTER_LINEAR)
        pts = apply_affine(joints[None, :, :2], m)[0]
        rgb = crop[..., ::-1].astype(np.float32) / 255.0
        x = (rgb - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
        hh, hw = self.heatmap_size
        target, weight = generate_target(pts, joints[:, 2:3], (w, h), (hw, hh), self.sigma)
        targets = {
            "heatmap": torch.from_numpy(target),
            "weight": torch.from_numpy(weight),
            "semantics": torch.from_numpy((weight[:, 0] > 0).astype(np.float32)),
            "mask": torch.from_numpy((target.max(0, initial=0.0) > 0.3).astype(np.float32)[None]),
            "center": torch.from_numpy(center.astype(np.float32)),
            "scale": torch.from_numpy(scale.astype(np.float32)),
            "image_id": torch.tensor(inst.image_id),
        }
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), targets
