"""Non-maximum suppression in plain torch (CPU and CUDA, no torchvision), batched by group.

Greedy NMS keeps a box unless a kept box with a higher score overlaps it by more than the IoU
threshold. With boxes sorted by score and ``S[i, j] = IoU(i, j) > thr`` for ``i < j``, the kept set
is the unique solution of ``keep[j] = not any_i(keep[i] and S[i, j])`` (IoU:
:func:`stip_rt.geometry.iou_matrix_torch`). It is found by iterating that equation on whole
vectors from "keep everything" (:func:`keep_step`): entry j is final once every entry before it
is, so the iteration reaches the solution after at most (longest chain of suppressions) + 1
steps — a handful in practice — and each step is one masked matrix reduction, with no per-box
Python loop. The result equals torchvision's ``nms`` / ``batched_nms`` (ties broken by the stable
sort).

Two ways to run it:

* :func:`nms` — any boxes, optionally in groups: sorts, builds the suppression matrix and iterates
  until nothing changes (:func:`settle`; one host check per step).
* :func:`greedy_keep` — rows already sorted by decreasing score (the per-frame top-k of a
  detector), with fixed shapes: a fixed number of steps and a per-row "settled" flag, all on the
  device, so a GPU caller never waits for it; the flag crosses to the host with the caller's one
  copy of its results, and a row not settled yet (a chain longer than the steps) is finished by
  :func:`settle`.
"""

from __future__ import annotations

import torch

from ..geometry import iou_matrix_torch

#: Steps :func:`greedy_keep` runs before it reports whether each row has settled.
KEEP_STEPS = 6


def suppression(boxes: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Which box suppresses which, for boxes sorted by decreasing score.

    Args:
        boxes: (..., k, 4) xyxy, each row (leading dimensions) by decreasing score.
        iou_threshold: overlap above which a box suppresses a lower-ranked one.

    Returns:
        (..., k, k) bool: ``[..., i, j]`` = box i, ranked before box j, overlaps it by more than the
        threshold. Boxes left out (``valid`` False in :func:`keep_step`) are never kept, so they
        never suppress either.
    """
    b = boxes.float()
    return torch.triu(iou_matrix_torch(b, b) > iou_threshold, diagonal=1)


def keep_step(over: torch.Tensor, keep: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """One step of ``keep[j] = valid[j] and not any_i(keep[i] and over[i, j])`` on every row
    (``keep`` within ``valid``: a box left out suppresses nothing)."""
    return valid & ~(over & keep[..., :, None]).any(dim=-2)


def greedy_keep(
    over: torch.Tensor, valid: torch.Tensor, steps: int = KEEP_STEPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy NMS of every row with fixed shapes and no host synchronisation.

    Args:
        over: (..., k, k) from :func:`suppression`.
        valid: (..., k) bool.
        steps: iterations before the check.

    Returns:
        keep (..., k) bool after ``steps`` iterations from ``valid``; settled (...) bool: True where
        one more step changes nothing, i.e. ``keep`` is that row's greedy result (else finish it
        with :func:`settle`).
    """
    keep = valid
    for _ in range(steps):
        keep = keep_step(over, keep, valid)
    settled = (keep_step(over, keep, valid) == keep).all(dim=-1)
    return keep, settled


def settle(over: torch.Tensor, keep: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Iterate :func:`keep_step` from ``keep`` until nothing changes (a host check per step).

    Args:
        over: (..., k, k) from :func:`suppression`.
        keep: (..., k) bool to start from (``valid``, or where :func:`greedy_keep` stopped).
        valid: (..., k) bool.

    Returns:
        (..., k) bool, the greedy result of every row.
    """
    while True:
        new = keep_step(over, keep, valid)
        if torch.equal(new, keep):
            return keep
        keep = new


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
    valid = torch.ones(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    over = suppression(boxes[order], iou_threshold)
    if groups is not None:
        g = groups[order]
        over &= g[:, None] == g[None, :]
    return order[settle(over, valid, valid)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS run independently per group (torchvision's ``batched_nms`` signature); see :func:`nms`."""
    return nms(boxes, scores, iou_threshold, groups)
