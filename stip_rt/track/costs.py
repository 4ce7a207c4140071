"""Pure, vectorised similarity functions for association: (N, ...) and (M, ...) → (N, M).

Box similarities are picked by name from :data:`BOX_SIMILARITIES`. All functions are numpy only,
without per-pair Python loops.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_EPS = 1e-9


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair of boxes.

    Args:
        a: (N, 4) xyxy pixels.
        b: (M, 4) xyxy pixels.

    Returns:
        (N, M) float64 IoU in [0, 1] (0 for degenerate boxes).
    """
    ax1, ay1, ax2, ay2 = _columns(a)[:, :, None]
    bx1, by1, bx2, by2 = _columns(b)
    iw = np.minimum(ax2, bx2) - np.maximum(ax1, bx1)
    ih = np.minimum(ay2, by2) - np.maximum(ay1, by1)
    inter = np.maximum(iw, 0.0, out=iw)
    inter *= np.maximum(ih, 0.0, out=ih)
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / np.maximum(union, _EPS, out=union)


def _columns(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) boxes → (4, N) float64 contiguous x1, y1, x2, y2 rows (contiguous operands are faster)."""
    return np.ascontiguousarray(np.asarray(boxes, np.float64).reshape(-1, 4).T)


def giou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Generalised IoU (Rezatofighi et al. 2019) of every pair of boxes.

    Args:
        a: (N, 4) xyxy pixels.
        b: (M, 4) xyxy pixels.

    Returns:
        (N, M) float64 GIoU in [-1, 1].
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    cw = np.maximum(a[:, None, 2], b[None, :, 2]) - np.minimum(a[:, None, 0], b[None, :, 0])
    ch = np.maximum(a[:, None, 3], b[None, :, 3]) - np.minimum(a[:, None, 1], b[None, :, 1])
    hull = np.maximum(cw * ch, _EPS)
    union = np.maximum(union, _EPS)
    return inter / union - (hull - union) / hull


BOX_SIMILARITIES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "iou": iou_matrix,
    "giou": giou_matrix,
}


def oks_pairs(
    kpts_a: np.ndarray,
    kpts_b: np.ndarray,
    areas_b: np.ndarray,
    sigmas: np.ndarray,
    min_score: float,
) -> np.ndarray:
    """Object keypoint similarity of aligned pairs of skeletons (COCO formula).

    ``OKS = mean_k exp(-d_k² / (2 · area · (2σ_k)²))`` over the joints whose score is at least
    ``min_score`` on both sides. Leading dimensions broadcast, so (N, 1, K, 3) against (1, M, K, 3)
    gives all pairs.

    Args:
        kpts_a: (..., K, 3) x, y, score in pixels (e.g. track keypoints moved to the prediction).
        kpts_b: (..., K, 3) x, y, score in pixels (the new people).
        areas_b: (...) object scale in px² of ``kpts_b`` (the box area w·h).
        sigmas: (K,) per-joint OKS sigmas of the schema.
        min_score: joints below this score on either side do not count.

    Returns:
        (...) float64 OKS in [0, 1]; NaN where no joint is usable on both sides.
    """
    a = np.asarray(kpts_a, np.float64)
    b = np.asarray(kpts_b, np.float64)
    var = (2.0 * np.asarray(sigmas, np.float64)) ** 2  # (K,)
    d = a - b
    d *= d
    d2 = d[..., 0] + d[..., 1]  # squared distance
    area = np.maximum(np.asarray(areas_b, np.float64), _EPS)[..., None]
    valid = a[..., 2] >= min_score
    valid &= b[..., 2] >= min_score
    count = valid.sum(axis=-1)
    d2 /= 2.0 * area * var
    total = np.where(valid, np.exp(np.negative(d2, out=d2), out=d2), 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def oks_matrix(
    kpts_a: np.ndarray,
    kpts_b: np.ndarray,
    areas_b: np.ndarray,
    sigmas: np.ndarray,
    min_score: float,
) -> np.ndarray:
    """OKS of every pair: (N, K, 3) and (M, K, 3) → (N, M); see :func:`oks_pairs`.

    Args:
        kpts_a: (N, K, 3) x, y, score in pixels.
        kpts_b: (M, K, 3) x, y, score in pixels.
        areas_b: (M,) box areas of ``kpts_b`` in px².
        sigmas: (K,) OKS sigmas.
        min_score: joints below this score on either side do not count.

    Returns:
        (N, M) float64 OKS in [0, 1]; NaN where no joint is usable on both sides.
    """
    a = np.asarray(kpts_a, np.float64)
    b = np.asarray(kpts_b, np.float64)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), np.float64)
    return oks_pairs(a[:, None], b[None], np.asarray(areas_b)[None, :], sigmas, min_score)


def combined_similarity(box_sim: np.ndarray, oks: np.ndarray | None, oks_weight: float) -> np.ndarray:
    """Mix box similarity and OKS: ``(1-w)·box + w·OKS`` where OKS is defined, else ``box``.

    Args:
        box_sim: (N, M) box similarity.
        oks: (N, M) OKS with NaN where undefined, or None (box-only).
        oks_weight: w in [0, 1].

    Returns:
        (N, M) float64 similarity.
    """
    if oks is None or oks_weight == 0.0:
        return box_sim
    mixed = (1.0 - oks_weight) * box_sim + oks_weight * oks
    return np.where(np.isnan(oks), box_sim, mixed)
