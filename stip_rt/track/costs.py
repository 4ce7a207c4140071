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
