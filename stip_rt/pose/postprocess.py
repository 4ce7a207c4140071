"""Rescoring and greedy OKS-NMS as the official ``evaluate()`` does them (STIP_SPEC §1.6).

* person score = box score × mean of the keypoint scores above ``IN_VIS_THRE`` = 0.2
  (0 when none is above it);
* OKS-NMS per image at 0.9, highest score first, a person dropped when its OKS with an
  already kept person is above the threshold (equal survives). The OKS uses the crop area
  (scale·200 product) and, per dataset, ``schema.nms_sigmas`` (CrowdPose's NMS sigmas differ
  from its metric's for head and neck, STIP_SPEC §7.14).

The OKS matrix is computed at once for all people; only the greedy selection loops (once
per kept person).
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch

from .. import geometry

IN_VIS_THRE = 0.2
OKS_THRE = 0.9


@overload
def rescore(
    box_scores: np.ndarray | torch.Tensor, keypoint_scores: torch.Tensor, in_vis_thre: float = ...
) -> torch.Tensor: ...


@overload
def rescore(
    box_scores: np.ndarray | torch.Tensor, keypoint_scores: np.ndarray, in_vis_thre: float = ...
) -> np.ndarray: ...


def rescore(
    box_scores: np.ndarray | torch.Tensor,
    keypoint_scores: np.ndarray | torch.Tensor,
    in_vis_thre: float = IN_VIS_THRE,
) -> np.ndarray | torch.Tensor:
    """Official rescoring: box score × mean keypoint score above the threshold.

    Torch ops on the keypoint scores' device when they are a tensor (nothing synchronises);
    numpy in, numpy out otherwise. Float64 sums of float32 scores of at most a few dozen joints
    are exact, so the order of summation does not matter.

    Args:
        box_scores: (N,) detector scores (moved to the keypoint scores' device).
        keypoint_scores: (N, K) keypoint scores (heatmap maxima).
        in_vis_thre: only scores strictly above this count.

    Returns:
        (N,) float64 person scores (0 for a person with no keypoint above the threshold), a
        tensor on the keypoint scores' device if they are a tensor, else a numpy array.
    """
    if not isinstance(keypoint_scores, torch.Tensor):
        kps = torch.as_tensor(np.asarray(keypoint_scores))
        return rescore(torch.as_tensor(np.asarray(box_scores)), kps, in_vis_thre).numpy()
    s = keypoint_scores.double()
    box = torch.as_tensor(box_scores).to(device=s.device, dtype=torch.float64)
    above = s > in_vis_thre
    count = above.sum(dim=1)
    total = torch.where(above, s, torch.zeros_like(s)).sum(dim=1)
    mean = torch.where(count > 0, total / count.clamp(min=1), torch.zeros_like(total))
    return mean * box


def oks_matrix(keypoints: np.ndarray, areas: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Official ``oks_iou`` between every pair of people (all joints count).

    :func:`stip_rt.geometry.oks` with the official NMS conventions: the object scale of a pair is
    the mean of the two crop areas (+ ``np.spacing(1)``) and every joint counts, whatever its score.

    Args:
        keypoints: (N, K, 2+) float32 (x, y, ...) frame pixels.
        areas: (N,) crop areas in px² (product of scale·200).
        sigmas: (K,) OKS sigmas.

    Returns:
        (N, N) float64, entry [i, j] = official ``oks_iou(person i, person j)``.
    """
    kp = np.asarray(keypoints)
    a = np.asarray(areas, np.float64)
    mean_area = (a[:, None] + a[None, :]) / 2 + np.spacing(1)
    return geometry.oks_matrix(kp, kp, mean_area, sigmas)  # distances in the input dtype (float32 officially)


def oks_nms(
    keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: np.ndarray, threshold: float = OKS_THRE
) -> np.ndarray:
    """Official greedy ``oks_nms``.

    Args:
        keypoints: (N, K, 2+) float32 frame pixels.
        scores: (N,) person scores (after :func:`rescore`).
        areas: (N,) crop areas in px².
        sigmas: (K,) OKS sigmas (``schema.sigmas_array(for_nms=True)``).
        threshold: drop a person whose OKS with a kept one is above this.

    Returns:
        (M,) int64 indices of the kept people, highest score first (the official order).
    """
    n = len(scores)
    if n == 0:
        return np.zeros((0,), np.int64)
    oks = oks_matrix(keypoints, areas, sigmas)
    order = np.asarray(scores).argsort()[::-1]  # same call as the official code: same tie order
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        order = rest[oks[i, rest] <= threshold]
    return np.asarray(keep, np.int64)
