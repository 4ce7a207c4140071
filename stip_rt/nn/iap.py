"""The IaP op: STIP's per-instance, per-pixel dynamic 1×1 convolution (one home).

    score[n,k,p] = (1/C) · Σ_c f[n,c,p] · ( b[k·C+c] + Σ_c' W[k·C+c, c'] · e[n,c',p] )

``e`` are the kernel embeddings, ``f`` the refined features, ``W, b`` the kernel
generator (a 1×1 conv C → K·C). The reference below materialises the N×K×C×H×W
kernels exactly as the official code does; the fused implementations (a later issue)
plug in behind :func:`iap` and never do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def iap_reference(e: torch.Tensor, f: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The literal formula (the ground truth in tests).

    Args:
        e: (N, C, H, W) kernel embeddings.
        f: (N, C, H, W) refined features.
        weight: (K·C, C) or (K·C, C, 1, 1) generator weight, row ``k·C + c``.
        bias: (K·C,) generator bias, or None.

    Returns:
        (N, K, H, W) heatmaps in the dtype of ``f``.
    """
    n, c, h, w = f.shape
    kernels = F.conv2d(e, weight.reshape(weight.shape[0], c, 1, 1), bias)  # (N, K·C, H, W)
    kernels = kernels.reshape(n, -1, c, h, w)
    return torch.mean(kernels * f.unsqueeze(1), dim=2)


def iap(
    e: torch.Tensor,
    f: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    upsample: bool = False,
) -> torch.Tensor:
    """IaP dynamic convolution; same contract as :func:`iap_reference`.

    With ``upsample=True``, ``e`` is given at half resolution (N, C, H/2, W/2) and is
    upsampled ×2 (bilinear, align_corners=False) first, as the network does; fused
    implementations exploit that the generator commutes with the upsample (STIP_SPEC §1.5).
    """
    if upsample:
        e = F.interpolate(e, scale_factor=2, mode="bilinear", align_corners=False)
    return iap_reference(e, f, weight, bias)
