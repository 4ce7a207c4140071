"""Non-maximum suppression in plain torch (CPU and CUDA, no torchvision), batched by group.

Greedy NMS keeps a box unless a kept box with a higher score overlaps it by more than the IoU
threshold. With boxes sorted by score and ``S[i, j] = IoU(i, j) > thr`` for ``i < j``, the kept set
is the unique solution of ``keep[j] = not any_i(keep[i] and S[i, j])`` (IoU:
:func:`stip_rt.geometry.iou_matrix_torch`). :func:`nms` finds it by
iterating that equation on whole vectors from "keep everything": entry j is final once every
entry before it is, so the loop ends after at most (longest chain of suppressions) + 1 steps — a
handful in practice — and each step is one masked matrix reduction, with no per-box Python loop.
Groups (frames of a batch, classes) are kept apart by masking the overlap matrix, so a batch of
frames is one call. The result equals torchvision's ``nms`` / ``batched_nms`` (ties broken by the
stable sort).
"""

from __future__ import annotations

import torch

from ..geometry import iou_matrix_torch


def nms(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, groups: torch.Tensor | None = None
) -> torch.Tensor:
    """Greedy NMS, optionally independent per group.

    Args:
        boxes: (N, 4) xyxy, any unit.
        scores: (N,).
        iou_threshold: a box is dropped when its IoU with a kept, higher-scored box of the same
            group is above this.
        groups: (N,) int group of each box (frame of a batch, or class); None: one group.

    Returns:
        (K,) int64 indices into ``boxes`` of the kept boxes, by decreasing score.
    """
    if boxes.shape[0] == 0:
        return torch.zeros((0,), dtype=torch.int64, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices
    b = boxes[order].float()
    over = torch.triu(iou_matrix_torch(b, b) > iou_threshold, diagonal=1)  # over[i, j]: i (higher) suppresses j
    if groups is not None:
        g = groups[order]
        over &= g[:, None] == g[None, :]
    keep = torch.ones(b.shape[0], dtype=torch.bool, device=b.device)
    while True:
        new = ~(over & keep[:, None]).any(dim=0)
        if torch.equal(new, keep):
            break
        keep = new
    return order[keep]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS run independently per group (torchvision's ``batched_nms`` signature); see :func:`nms`."""
    return nms(boxes, scores, iou_threshold, groups)
