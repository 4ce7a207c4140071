"""Gaussian heatmap training targets, as the official ``generate_target`` (STIP_SPEC §3.2).

Per joint: centre pixel ``int(x / stride + 0.5)`` (truncation towards zero, also for negative
values), an unnormalised Gaussian with peak 1 on a (6σ+1)² window cut at the map border, weight
= visibility, set to 0 when the window misses the map entirely. Invisible joints get an
all-zero map. STIP uses 128×96 maps with σ = 3, the HRNet baseline 64×48 with σ = 2.
Vectorised over people and joints.
"""

from __future__ import annotations

import numpy as np


def generate_target(
    joints: np.ndarray,
    joints_vis: np.ndarray,
    image_size: tuple[int, int],
    heatmap_size: tuple[int, int],
    sigma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Official Gaussian targets and weights.

    Args:
        joints: (..., K, 2+) joint (x, y) in input-crop pixels.
        joints_vis: (..., K, 1+) visibility; column 0 is used (> 0.5 draws the Gaussian).
        image_size: input crop (width, height), e.g. (192, 256).
        heatmap_size: heatmap (width, height), e.g. (96, 128).
        sigma: Gaussian σ in heatmap pixels.

    Returns:
        target (..., K, H, W) float32 and target_weight (..., K, 1) float32.
    """
    joints = np.asarray(joints, np.float64)
    vis = np.asarray(joints_vis, np.float64)[..., 0]
    lead = joints.shape[:-1]  # (..., K)
    hw, hh = int(heatmap_size[0]), int(heatmap_size[1])
    stride = np.asarray(image_size, np.float64) / np.asarray(heatmap_size, np.float64)
    tmp = sigma * 3
    mu_x = np.trunc(joints[..., 0] / stride[0] + 0.5)
    mu_y = np.trunc(joints[..., 1] / stride[1] + 0.5)
    ul_x, ul_y = np.trunc(mu_x - tmp), np.trunc(mu_y - tmp)
    br_x, br_y = np.trunc(mu_x + tmp + 1), np.trunc(mu_y + tmp + 1)
    weight = vis.astype(np.float32)
    outside = (ul_x >= hw) | (ul_y >= hh) | (br_x < 0) | (br_y < 0)
    weight = np.where(outside, np.float32(0.0), weight).astype(np.float32)

    size = int(2 * tmp + 1)
    g1 = np.arange(size, dtype=np.float32)
    c0 = np.float32(size // 2)
    g = np.exp(-((g1[None, :] - c0) ** 2 + (g1[:, None] - c0) ** 2) / np.float32(2 * sigma**2)).astype(np.float32)

    # map pixel (y, x) takes g[y - ul_y, x - ul_x] inside the window [ul, br) ∩ patch
    xs = np.arange(hw)
    ys = np.arange(hh)
    gx = xs - ul_x[..., None].astype(np.int64)  # (..., K, W)
    gy = ys - ul_y[..., None].astype(np.int64)  # (..., K, H)
    in_x = (gx >= 0) & (gx < size) & (xs < br_x[..., None])
    in_y = (gy >= 0) & (gy < size) & (ys < br_y[..., None])
    vals = g[np.clip(gy, 0, size - 1)[..., :, None], np.clip(gx, 0, size - 1)[..., None, :]]  # (..., K, H, W)
    draw = (weight > 0.5) & ~outside
    mask = in_y[..., :, None] & in_x[..., None, :] & draw[..., None, None]
    target = np.where(mask, vals, np.float32(0.0)).astype(np.float32)
    return target.reshape(*lead, hh, hw), weight[..., None]
