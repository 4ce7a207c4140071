"""Reference decode for the tests: the former numpy + OpenCV implementation (STIP_SPEC §1.6).

The library decodes with torch on the heatmaps' device (:mod:`stip_rt.pose.decode`); this
independent CPU version stays here so the tests (and ``scripts/bench_pose_stage.py``, which
loads it by path) can compare against it. It matches the official decode fixtures.

Two decoders, vectorised over crops and joints:

* ``hrnet``: first row-major argmax, coordinates zeroed where the maximum is ≤ 0, then a
  quarter-pixel step towards the larger neighbour on each axis (``TEST.POST_PROCESS``),
  only when 1 < x < W−1 and 1 < y < H−1 (official ``get_final_preds``).
* ``stip``: the same argmax, then the sub-pixel refinement of ``get_final_preds_with_refine``:
  OpenCV 7×7 Gaussian blur (σ = 0, i.e. the fixed kernel [1, 3.5, 7, 9, 7, 3.5, 1]/32),
  rescale to the map's maximum, clip, log, edge-pad, and one Newton step −H⁻¹·∇ at the argmax.

Heatmap-pixel coordinates are mapped to frame pixels with the official inverse crop affine
(:func:`stip_rt.pose.crops.affine_matrices`). The keypoint score is the map's maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from stip_rt.pose.crops import affine_matrices, apply_affine

DecodeKind = Literal["hrnet", "stip"]
_CV_MAX_CHANNELS = 128  # OpenCV 5 caps Mat channels at 128 (4.x: 512)


@dataclass(frozen=True, slots=True)
class Decoded:
    """Decoded keypoints of a batch of crops.

    Attributes:
        coords: (N, K, 2) float64 (x, y) in frame pixels (float32 values for ``hrnet``, as official).
        maxvals: (N, K) float32 map maxima (keypoint scores).
        hm_coords: (N, K, 2) float64 (x, y) in heatmap pixels before the mapping.
    """

    coords: np.ndarray
    maxvals: np.ndarray
    hm_coords: np.ndarray


def argmax_coords(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Official ``get_max_preds``.

    Args:
        heatmaps: (N, K, H, W) float32.

    Returns:
        coords (N, K, 2) float32 (column, row of the first maximum; (0, 0) where max ≤ 0),
        maxvals (N, K) float32.
    """
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    idx = np.argmax(flat, axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float32)
    coords *= (maxvals > 0.0)[..., None].astype(np.float32)
    return coords, maxvals.astype(np.float32)


def quarter_offset(heatmaps: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """HRNet post-processing: +0.25 px towards the larger neighbour, interior points only.

    Args:
        heatmaps: (N, K, H, W) float32.
        coords: (N, K, 2) float32 argmax coordinates.

    Returns:
        (N, K, 2) float32 shifted coordinates (a new array).
    """
    n, k, h, w = heatmaps.shape
    px = np.floor(coords[..., 0] + 0.5).astype(np.int64)
    py = np.floor(coords[..., 1] + 0.5).astype(np.int64)
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    pxc = np.clip(px, 1, w - 2)
    pyc = np.clip(py, 1, h - 2)
    flat = heatmaps.reshape(n, k, h * w)

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return np.take_along_axis(flat, (yy * w + xx)[..., None], axis=2)[..., 0]

    dx = at(pyc, pxc + 1) - at(pyc, pxc - 1)
    dy = at(pyc + 1, pxc) - at(pyc - 1, pxc)
    step = np.stack([np.sign(dx), np.sign(dy)], axis=-1).astype(np.float32) * np.float32(0.25)
    return coords + step * inside[..., None].astype(np.float32)


def _blur(maps: np.ndarray) -> np.ndarray:
    """cv2.GaussianBlur((7, 7), 0) of every (H, W) map in (M, H, W) float32, as channels."""
    m, h, w = maps.shape
    out = np.empty_like(maps)
    for s in range(0, m, _CV_MAX_CHANNELS):
        chunk = np.ascontiguousarray(maps[s : s + _CV_MAX_CHANNELS].transpose(1, 2, 0))
        blurred = cv2.GaussianBlur(chunk, (7, 7), 0)
        out[s : s + _CV_MAX_CHANNELS] = blurred.reshape(h, w, -1).transpose(2, 0, 1)
    return out


def refine_offsets(heatmaps: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """STIP refinement (official ``refine``): Newton step on the log of the blurred map.

    Args:
        heatmaps: (N, K, H, W) float32 (not modified).
        coords: (N, K, 2) float32 integer argmax coordinates from :func:`argmax_coords`.

    Returns:
        (N, K, 2) float64 offsets to add to ``coords`` (0 where the Hessian is singular;
        NaN for an all-zero map, as the official code).
    """
    n, k, h, w = heatmaps.shape
    if n * k == 0:
        return np.zeros((n, k, 2), np.float64)
    maps = np.ascontiguousarray(heatmaps, dtype=np.float32).reshape(n * k, h, w)
    peak = maps.reshape(n * k, -1).max(axis=1)
    b = _blur(maps)
    bmin = b.reshape(n * k, -1).min(axis=1)
    bmax = b.reshape(n * k, -1).max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = (b - bmin[:, None, None]) / (bmax - bmin)[:, None, None] * peak[:, None, None]
        b = np.log(np.clip(b, np.float32(0.001), np.float32(50.0)))
    lg = np.pad(b, ((0, 0), (1, 1), (1, 1)), mode="edge").reshape(n * k, -1)
    wp = w + 2
    x = coords[..., 0].reshape(-1).astype(np.int64) + 1
    y = coords[..., 1].reshape(-1).astype(np.int64) + 1

    def at(dy: int, dx: int) -> np.ndarray:
        return np.take_along_axis(lg, ((y + dy) * wp + (x + dx))[:, None], axis=1)[:, 0]

    c = at(0, 0)
    xp, xm, yp, ym = at(0, 1), at(0, -1), at(1, 0), at(-1, 0)
    dx = np.float32(0.5) * (xp - xm)
    dy = np.float32(0.5) * (yp - ym)
    dxx = xp - 2 * c + xm
    dyy = yp - 2 * c + ym
    dxy = np.float32(0.5) * (at(1, 1) - xp - yp + 2 * c - xm - ym + at(-1, -1))
    grad = np.stack([dx, dy], axis=-1).astype(np.float64)
    hess = np.stack([np.stack([dxx, dxy], -1), np.stack([dxy, dyy], -1)], -2).astype(np.float64)
    det = dxx * dyy - dxy * dxy
    singular = det == 0
    hess[singular] = np.eye(2)
    with np.errstate(invalid="ignore"):
        off = -np.linalg.solve(hess, grad[..., None])[..., 0]
    off[singular] = 0.0
    return off.reshape(n, k, 2)


def decode_heatmaps(
    heatmaps: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    kind: DecodeKind = "stip",
) -> Decoded:
    """Official ``get_final_preds`` (``hrnet``: POST_PROCESS; ``stip``: REFINE + POST_PROCESS).

    Args:
        heatmaps: (N, K, H, W) float32 (already flip-averaged when the flip test is on).
        center: (N, 2) crop centres, frame pixels.
        scale: (N, 2) crop sizes / 200 (only ``scale[:, 0]`` is used, as official).
        kind: ``hrnet`` or ``stip``.

    Returns:
        :class:`Decoded` with frame-pixel coordinates and scores.

    Raises:
        ValueError: unknown ``kind`` or a heatmap batch that is not 4-D.
    """
    heatmaps = np.asarray(heatmaps, dtype=np.float32)
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {heatmaps.shape}")
    n, _, h, w = heatmaps.shape
    coords, maxvals = argmax_coords(heatmaps)
    if kind == "hrnet":
        hm = quarter_offset(heatmaps, coords).astype(np.float64)
    elif kind == "stip":
        hm = coords.astype(np.float64) + refine_offsets(heatmaps, coords)
    else:
        raise ValueError(f"unknown decode kind '{kind}' (use 'hrnet' or 'stip')")
    if n == 0:
        return Decoded(np.zeros_like(hm), maxvals, hm)
    mats = affine_matrices(center, scale, (w, h), inverse=True)
    out = apply_affine(hm, mats)
    if kind == "hrnet":  # the official function writes the mapped points into a float32 array
        out = out.astype(np.float32).astype(np.float64)
    return Decoded(out, maxvals, hm)
