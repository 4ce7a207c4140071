"""The official training losses (STIP_SPEC §3.1).

STIP: ``pose`` MSE on the IaP heatmap Y, the initial heatmap H0 and the kernel maps KM (weight 1
each), ``sp_pose`` MSE on the stage-3 part heatmap P against the same own-instance target,
``mask`` BCE on the stage-2 mask (5e-4) and ``semantics`` BCE on the keypoint-presence scores
(1e-5). The HRNet baseline uses the MSE term only.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def joints_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Official JointsMSELoss with target weights: (0.5 / (K·N·H·W)) · Σ w·(pred − gt)².

    Args:
        pred, target: (N, K, H, W).
        weight: (N, K, 1) joint weights in {0, 1}.
    """
    w = weight.reshape(*weight.shape[:2], 1, 1)
    return 0.5 * torch.mean((w * (pred - target)) ** 2)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the STIP loss terms (official yaml values)."""

    pose: float = 1.0
    sp_pose: float = 1.0
    mask: float = 5e-4
    semantics: float = 1e-5


def stip_loss(outputs: dict, targets: dict[str, torch.Tensor],
              weights: LossWeights | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Total STIP loss and its terms.

    Args:
        outputs: ``STIPNet.forward_train`` output (official names).
        targets: ``heatmap`` (N,K,H,W), ``weight`` (N,K,1), ``mask`` (N,1,H,W), ``semantics`` (N,K).

    Returns:
        (total loss, {term name: value}) — the logged ``kernel`` value is included, not added.
    """
    w = weights or LossWeights()
    hm, jw = targets["heatmap"], targets["weight"]
    y, h0, km = outputs["keypoint"]
    terms = {
        "pose": w.pose * (joints_mse(y, hm, jw) + joints_mse(h0, hm, jw) + joints_mse(km, hm, jw)),
        "sp_pose": w.sp_pose * joints_mse(outputs["sp_keypoint"], hm, jw),
        "mask": w.mask * F.binary_cross_entropy(outputs["mask"][0].clamp(1e-7, 1 - 1e-7), targets["mask"]),
        "semantics": w.semantics * F.binary_cross_entropy(outputs["semantics"][0].clamp(1e-7, 1 - 1e-7),
                                                          targets["semantics"]),
    }
    total = functools.reduce(operator.add, terms.values())  # a tensor (sum() starts from the int 0)
    logged = {k: float(v.detach()) for k, v in terms.items()}
    logged["kernel"] = float(outputs["kernel"].detach().mean())
    return total, logged


def hrnet_loss(outputs: dict, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """The HRNet baseline loss: MSE on the heatmap only."""
    loss = joints_mse(outputs["keypoint"][0], targets["heatmap"], targets["weight"])
    return loss, {"pose": float(loss.detach())}
