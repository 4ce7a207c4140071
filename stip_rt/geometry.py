"""Box and keypoint geometry shared by detect, pose, track and eval: one home for IoU, GIoU, OKS and box forms.

Pure numpy (pixels, float64 unless said otherwise), vectorised without per-pair Python loops. The one
torch variant, :func:`iou_matrix_torch`, is for callers that hold tensors (NMS on the device); torch is
imported inside it, so importing this module (e.g. from the torch-free tracker) does not load torch.

Box forms: ``xyxy`` corners ``[x1, y1, x2, y2]``; ``xywh`` corner and size (MOT, COCO); ``cxcywh``
centre and size (the Kalman measurement); ``center``/``scale`` the top-down crop form of the official
HRNet protocol (``scale`` = padded size / :data:`PIXEL_STD`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

#: Pixels per unit of the official top-down ``scale`` (a legacy of the MPII code).
PIXEL_STD = 200.0
_EPS = 1e-9


# ---------------------------------------------------------------------------------------------- box forms
def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``[x, y, w, h]`` → (N, 4) ``[x1, y1, x2, y2]`` (same dtype)."""
    b = np.asarray(boxes).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``[x1, y1, x2, y2]`` → (N, 4) ``[x, y, w, h]`` (same dtype)."""
    b = np.asarray(boxes).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy → (N, 4) float64 ``[cx, cy, w, h]``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    wh = b[:, 2:] - b[:, :2]
    return np.concatenate([b[:, :2] + 0.5 * wh, wh], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray, min_size: float = 0.0) -> np.ndarray:
    """(N, >=4) ``[cx, cy, w, h, ...]`` (extra columns ignored) → (N, 4) float64 xyxy.

    Args:
        boxes: (N, >=4) centre and size pixels, e.g. Kalman states.
        min_size: sizes below this are raised to it (keeps boxes from a filter positive).
    """
    z = np.asarray(boxes, np.float64).reshape(len(boxes), -1)
    half = 0.5 * np.maximum(z[:, 2:4], min_size)
    return np.concatenate([z[:, :2] - half, z[:, :2] + half], axis=1)


def box_areas(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy → (N,) ``w·h`` in px² (negative for inverted boxes; callers check validity)."""
    b = np.asarray(boxes).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy → (N,) bool: True where the box is finite with a positive width and height (a
    box a pose crop can be cut from; the tracker skips the others by the same rule)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        return np.isfinite(b).all(axis=1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])


def boxes_to_center_scale(
    boxes: np.ndarray, aspect_ratio: float = 0.75, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Official ``_box2cs``: centre of each box and its padded size / 200.

    Args:
        boxes: (N, 4) xyxy frame pixels.
        aspect_ratio: model input width / height (0.75 for 256×192).
        padding: enlargement after the aspect fix (1.25 in the official test protocol).

    Returns:
        center (N, 2) float32 pixels, scale (N, 2) float32 (= padded w, h / 200).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    center = np.stack([b[:, 0] + w * 0.5, b[:, 1] + h * 0.5], axis=1).astype(np.float32)
    wide = w > aspect_ratio * h
    tall = w < aspect_ratio * h
    h = np.where(wide, w / aspect_ratio, h)
    w = np.where(tall, h * aspect_ratio, w)
    scale = np.stack([w / PIXEL_STD, h / PIXEL_STD], axis=1).astype(np.float32) * np.float32(padding)
    return center, scale.astype(np.float32)


# ---------------------------------------------------------------------------------------------- box overlap
def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Intersection and union areas of every pair, and the (4, N, 1) / (4, M) corner rows they came from.

    Contiguous float64 operands (numpy is 2-3× slower on strided or broadcast small arrays).
    """
    ca = np.ascontiguousarray(np.asarray(a, np.float64).reshape(-1, 4).T)[:, :, None]
    cb = np.ascontiguousarray(np.asarray(b, np.float64).reshape(-1, 4).T)
    ax1, ay1, ax2, ay2 = ca
    bx1, by1, bx2, by2 = cb
    iw = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.maximum(iw, 0.0, out=iw)
    inter *= np.maximum(ih, 0.0, out=ih)
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter, union, ca, cb


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair of boxes.

    Args:
        a: (N, 4) xyxy pixels.
        b: (M, 4) xyxy pixels.

    Returns:
        (N, M) float64 IoU in [0, 1] (0 for degenerate boxes).
    """
    inter, union, _, _ = _overlap(a, b)
    return inter / np.maximum(union, _EPS, out=union)


def giou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Generalised IoU (Rezatofighi et al. 2019) of every pair of boxes: ``IoU − (hull − union) / hull``.

    Args:
        a: (N, 4) xyxy pixels.
        b: (M, 4) xyxy pixels.

    Returns:
        (N, M) float64 GIoU in [-1, 1].
    """
    inter, union, (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = _overlap(a, b)
    union = np.maximum(union, _EPS, out=union)
    hull = (np.maximum(ax2, bx2) - np.minimum(ax1, bx1)) * (np.maximum(ay2, by2) - np.minimum(ay1, by1))
    hull = np.maximum(hull, _EPS, out=hull)
    return inter / union - (hull - union) / hull


def iou_matrix_torch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU on tensors (any device), for NMS; :func:`iou_matrix` for numpy.

    Args:
        a: (..., N, 4) xyxy boxes.
        b: (..., M, 4) xyxy boxes (leading dimensions broadcast with ``a``'s: a batch of frames).

    Returns:
        (..., N, M) IoU in [0, 1] in the boxes' dtype (0 where both boxes are empty; inverted boxes
        count as empty).
    """
    import torch

    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    lt = torch.maximum(a[..., :, None, :2], b[..., None, :, :2])
    rb = torch.minimum(a[..., :, None, 2:], b[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[..., :, None] + area_b[..., None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny), torch.zeros_like(inter))


# ---------------------------------------------------------------------------------------------- keypoints
def oks(
    kpts_a: np.ndarray, kpts_b: np.ndarray, areas: np.ndarray, sigmas: np.ndarray, min_score: float | None = None
) -> np.ndarray:
    """Object keypoint similarity of aligned pairs of skeletons (COCO's formula).

    ``OKS = mean_k exp(-d_k² / (2σ_k)² / s / 2)``, ``d_k`` the distance of joint k, ``s`` the object
    scale (an area in px²), over the joints that count. Leading dimensions broadcast, so
    (N, 1, K, ·) against (1, M, K, ·) gives all pairs. Which area and which joints are the caller's
    policy: the official OKS-NMS uses the mean area of the two people and every joint
    (:func:`stip_rt.pose.postprocess.oks_matrix`); the tracker uses the new person's box area and
    only the joints seen on both sides (``min_score``).

    The difference is taken in the inputs' dtype (float32 keypoints give the official float32
    distances), the rest in float64.

    Args:
        kpts_a: (..., K, 2+) x, y[, score] pixels.
        kpts_b: (..., K, 2+) x, y[, score] pixels.
        areas: (...) object scale ``s`` in px², > 0.
        sigmas: (K,) per-joint OKS sigmas of the schema.
        min_score: None: every joint counts; else only joints whose score (column 2) is at least
            this on both sides.

    Returns:
        (...) float64 OKS in [0, 1]; NaN where no joint counts.
    """
    a = np.asarray(kpts_a)
    b = np.asarray(kpts_b)
    d = a[..., :2] - b[..., :2]
    d *= d
    e = (d[..., 0] + d[..., 1]) / ((2.0 * np.asarray(sigmas, np.float64)) ** 2)
    e = e / np.asarray(areas, np.float64)[..., None]  # not in place: ``areas`` may broadcast wider
    e /= 2.0
    sim = np.exp(np.negative(e, out=e), out=e)
    if min_score is None:
        return sim.sum(axis=-1) / sim.shape[-1]
    valid = (a[..., 2] >= min_score) & (b[..., 2] >= min_score)
    count = valid.sum(axis=-1)
    total = np.where(valid, sim, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def oks_matrix(
    kpts_a: np.ndarray, kpts_b: np.ndarray, areas: np.ndarray, sigmas: np.ndarray, min_score: float | None = None
) -> np.ndarray:
    """OKS of every pair: (N, K, 2+) and (M, K, 2+) → (N, M); see :func:`oks`.

    Args:
        kpts_a: (N, K, 2+) x, y[, score] pixels.
        kpts_b: (M, K, 2+) x, y[, score] pixels.
        areas: (M,) object scale of each ``kpts_b`` person, or (N, M) one per pair, in px².
        sigmas: (K,) OKS sigmas.
        min_score: see :func:`oks`.

    Returns:
        (N, M) float64 OKS in [0, 1]; NaN where no joint counts.
    """
    a = np.asarray(kpts_a)
    b = np.asarray(kpts_b)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), np.float64)
    return oks(a[:, None], b[None], np.broadcast_to(areas, (a.shape[0], b.shape[0])), sigmas, min_score)
