"""The tracker's similarity policy: the box term by name, and how OKS is mixed in.

The geometry itself (IoU, GIoU, OKS) lives in :mod:`stip_rt.geometry`; box similarities are picked
by name from :data:`BOX_SIMILARITIES`. All functions are numpy only, without per-pair Python loops.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..geometry import giou_matrix, iou_matrix

BOX_SIMILARITIES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "iou": iou_matrix,
    "giou": giou_matrix,
}


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


def buffered_iou(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Buffered IoU (C-BIoU, Yang et al., WACV 2023): IoU after both boxes of a pair grow by ``scale``
    of their own width and height on every side, so that a larger motion than the prediction's still
    overlaps; the scale is row ``a``'s.

    Args:
        a: (N, 4) xyxy pixels (the tracks' predicted boxes).
        b: (M, 4) xyxy pixels (the people's boxes).
        scale: (N,) buffer of each row, a fraction of the box size (0: plain IoU).

    Returns:
        (N, M) float64 IoU in [0, 1] of the buffered boxes.
    """
    s = np.asarray(scale, np.float64)[:, None, None]
    wa = a[:, 2:] - a[:, :2]
    ea = np.concatenate([a[:, :2] - s[:, 0] * wa, a[:, 2:] + s[:, 0] * wa], axis=1)[:, None, :]  # (N, 1, 4)
    wb = (b[:, 2:] - b[:, :2])[None]
    eb = np.concatenate([b[None, :, :2] - s * wb, b[None, :, 2:] + s * wb], axis=2)  # (N, M, 4)
    iw = np.clip(np.minimum(ea[..., 2], eb[..., 2]) - np.maximum(ea[..., 0], eb[..., 0]), 0.0, None)
    ih = np.clip(np.minimum(ea[..., 3], eb[..., 3]) - np.maximum(ea[..., 1], eb[..., 1]), 0.0, None)
    inter = iw * ih
    area_a = (ea[..., 2] - ea[..., 0]) * (ea[..., 3] - ea[..., 1])
    area_b = (eb[..., 2] - eb[..., 0]) * (eb[..., 3] - eb[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)
