"""Person crops: box → (center, scale), the official affine matrices, batched warps, normalisation.

Conventions follow the official HRNet/STIP test protocol (STIP_SPEC §4):

* ``scale`` is the padded box size divided by ``PIXEL_STD`` = 200 (a legacy of the MPII code);
* the box is padded to the model aspect ratio (w/h = 0.75 for 256×192) and then enlarged ×1.25;
* the crop is an affine warp that maps the box centre to the crop centre and the padded box
  width to the crop width (isotropic, no half-pixel correction), bilinear, zero border;
* the crop is converted BGR → RGB and normalised with the ImageNet mean/std.

Two warps give the same crops within interpolation tolerance: OpenCV ``warpAffine`` per box
(:func:`crop_boxes_cv2`, CPU) and one ``grid_sample`` over all boxes on a frame uploaded once
(:func:`crop_boxes_torch`, any device; the CUDA path).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..geometry import PIXEL_STD, boxes_to_center_scale  # noqa: F401  (re-exported: the crop form of a box)
from ..models import IMAGENET_MEAN, IMAGENET_STD
from ..runtime.transfer import to_device


def affine_matrices(
    center: np.ndarray,
    scale: np.ndarray,
    output_size: tuple[int, int],
    rotation: np.ndarray | float = 0.0,
    inverse: bool = False,
) -> np.ndarray:
    """Official ``get_affine_transform`` for many crops at once.

    The three point pairs are built in float32 exactly as the official code does and the
    2×3 matrix is solved in float64 (as ``cv2.getAffineTransform``), so the result equals
    the official matrix to float64 rounding.

    Args:
        center: (N, 2) crop centres, frame pixels.
        scale: (N, 2) crop sizes / 200; only ``scale[:, 0]`` sets the size (isotropic).
        output_size: (width, height) of the destination (crop or heatmap) in pixels.
        rotation: degrees, scalar or (N,).
        inverse: False: frame → crop; True: crop → frame.

    Returns:
        (N, 2, 3) float64 affine matrices.
    """
    center = np.asarray(center, np.float32).reshape(-1, 2)
    scale = np.asarray(scale, np.float32).reshape(-1, 2)
    n = center.shape[0]
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    src_w = (scale[:, 0] * np.float32(PIXEL_STD)).astype(np.float64)
    rot = np.broadcast_to(np.asarray(rotation, np.float64) * np.pi / 180.0, (n,))
    sn, cs = np.sin(rot), np.cos(rot)
    # get_dir([0, -src_w/2], rot)
    sp = src_w * -0.5
    src_dir = np.stack([-sp * sn, sp * cs], axis=1)
    src = np.zeros((n, 3, 2), np.float32)
    dst = np.zeros((n, 3, 2), np.float32)
    src[:, 0] = center
    src[:, 1] = center.astype(np.float64) + src_dir
    dst[:, 0] = (dst_w * 0.5, dst_h * 0.5)
    dst[:, 1] = np.array([dst_w * 0.5, dst_h * 0.5]) + np.array([0.0, dst_w * -0.5], np.float32)
    for pts in (src, dst):  # get_3rd_point, in float32
        d = pts[:, 0] - pts[:, 1]
        pts[:, 2] = pts[:, 1] + np.stack([-d[:, 1], d[:, 0]], axis=1)
    a, b = (dst, src) if inverse else (src, dst)
    lhs = np.concatenate([a.astype(np.float64), np.ones((n, 3, 1))], axis=2)  # (N, 3, 3)
    sol = np.linalg.solve(lhs, b.astype(np.float64))  # (N, 3, 2): lhs @ M^T = b
    return np.ascontiguousarray(np.transpose(sol, (0, 2, 1)))


def apply_affine(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Apply per-crop affine matrices to points.

    Args:
        points: (N, K, 2) points (x, y).
        matrices: (N, 2, 3) float64.

    Returns:
        (N, K, 2) float64 transformed points.
    """
    p = np.asarray(points, np.float64)
    return np.einsum("nij,nkj->nki", matrices[:, :, :2], p) + matrices[:, None, :, 2]


@functools.lru_cache(maxsize=16)
def _mean_std(
    mean: tuple[float, ...], std: tuple[float, ...], dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 3, 1, 1) mean and std tensors, uploaded once per device."""
    m = to_device(np.asarray(mean, np.float64), device).to(dtype).view(1, 3, 1, 1)
    s = to_device(np.asarray(std, np.float64), device).to(dtype).view(1, 3, 1, 1)
    return m, s


def _normalise(batch_rgb01: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    m, s = _mean_std(tuple(mean), tuple(std), batch_rgb01.dtype, batch_rgb01.device)
    return (batch_rgb01 - m) / s


def crop_boxes_cv2(
    frame: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    input_size: tuple[int, int],
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """All crops of a frame with OpenCV ``warpAffine`` (the official CPU warp), normalised.

    Args:
        frame: (H, W, 3) uint8 BGR.
        center, scale: (N, 2) from :func:`boxes_to_center_scale`.
        input_size: model input (height, width), e.g. (256, 192).
        mean, std: RGB normalisation on [0, 1] values.

    Returns:
        (N, 3, h, w) float32 CPU tensor, RGB, normalised.
    """
    h, w = input_size
    mats = affine_matrices(center, scale, (w, h))
    crops = np.empty((len(mats), h, w, 3), np.uint8)
    for i, m in enumerate(mats):
        cv2.warpAffine(frame, m, (w, h), dst=crops[i], flags=cv2.INTER_LINEAR)
    t = torch.from_numpy(crops).permute(0, 3, 1, 2).flip(1).float().div_(255.0)
    return _normalise(t, mean, std).contiguous()


def crop_boxes_torch(
    frame: np.ndarray | torch.Tensor,
    center: np.ndarray,
    scale: np.ndarray,
    input_size: tuple[int, int],
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """All crops of a frame as one ``grid_sample`` on a frame uploaded once (the CUDA path).

    The sampling grid of every crop is the official inverse affine evaluated at the crop's
    integer pixel centres, so it reproduces ``cv2.warpAffine`` (bilinear, zero border) up to
    OpenCV's fixed-point interpolation (≤ 1 grey level, about 0.02 after normalisation).
    A numpy frame goes to a CUDA device once, as uint8 through pinned memory without blocking
    (:func:`to_device`); nothing here waits for the GPU.

    Args:
        frame: (H, W, 3) uint8 BGR, numpy or a tensor already on ``device``.
        center, scale: (N, 2) from :func:`boxes_to_center_scale`.
        input_size: model input (height, width).
        mean, std: RGB normalisation on [0, 1] values.
        device: where the warp runs.

    Returns:
        (N, 3, h, w) float32 tensor on ``device``, RGB, normalised.
    """
    h, w = input_size
    dev = torch.device(device)
    n = int(np.asarray(center).reshape(-1, 2).shape[0])
    if n == 0:
        return torch.zeros((0, 3, h, w), dtype=torch.float32, device=dev)
    img = frame.to(dev) if isinstance(frame, torch.Tensor) else to_device(frame, dev)
    fh, fw = int(img.shape[0]), int(img.shape[1])
    inv = affine_matrices(center, scale, (w, h), inverse=True)  # crop → frame, (N, 2, 3)
    # align_corners=True: -1 ↔ pixel 0, +1 ↔ pixel W-1 (pixel centres); fold that into the matrix
    norm = np.array([[2.0 / max(fw - 1, 1), 0.0, -1.0], [0.0, 2.0 / max(fh - 1, 1), -1.0], [0.0, 0.0, 1.0]])
    theta = norm[None, :2, :2] @ inv
    theta[:, :, 2] += norm[None, :2, 2]
    t = to_device(theta.astype(np.float32), dev)[:, None, None]  # (N, 1, 1, 2, 3)
    ys = torch.arange(h, device=dev, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w)
    # crop pixel centres through the matrices, elementwise (a matmul could run in TF32 on CUDA)
    gx = t[..., 0, 0] * xs + t[..., 0, 1] * ys + t[..., 0, 2]
    gy = t[..., 1, 0] * xs + t[..., 1, 1] * ys + t[..., 1, 2]
    grid = torch.stack([gx, gy], dim=-1)  # (N, h, w, 2)
    src = img.permute(2, 0, 1).flip(0).unsqueeze(0).float()  # (1, 3, H, W) RGB
    # all crops stacked along the height of one grid: one op, no copy of the frame per box
    out = F.grid_sample(
        src, grid.reshape(1, n * h, w, 2), mode="bilinear", padding_mode="zeros", align_corners=True
    )  # (1, 3, N*h, w)
    out = out.view(3, n, h, w).permute(1, 0, 2, 3).div(255.0)
    return _normalise(out, mean, std).contiguous()
