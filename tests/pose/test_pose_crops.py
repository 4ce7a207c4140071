"""Crops: official box → (center, scale), affine matrices, OpenCV vs grid_sample warps."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stip_rt.pose.crops import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    affine_matrices,
    apply_affine,
    boxes_to_center_scale,
    crop_boxes_cv2,
    crop_boxes_torch,
)


def test_box_to_center_scale_pads_to_aspect_then_125() -> None:
    boxes = np.array([[10, 20, 110, 70], [0, 0, 30, 200], [5, 5, 80, 105]], np.float32)  # wide, tall, exactly 3:4
    center, scale = boxes_to_center_scale(boxes)
    np.testing.assert_allclose(center, [[60, 45], [15, 100], [42.5, 55]])
    np.testing.assert_allclose(scale, np.array([[100, 100 / 0.75], [150, 200], [75, 100]]) / 200 * 1.25, rtol=1e-6)
    assert center.dtype == scale.dtype == np.float32
    _, unpadded = boxes_to_center_scale(boxes, padding=1.0)
    np.testing.assert_allclose(unpadded * 1.25, scale, rtol=1e-6)


def test_affine_maps_box_centre_and_width_and_inverts() -> None:
    center = np.array([[100.0, 200.0], [30.5, 40.25]], np.float32)
    scale = np.array([[1.2, 1.6], [0.3, 0.4]], np.float32)
    fwd = affine_matrices(center, scale, (192, 256))
    inv = affine_matrices(center, scale, (192, 256), inverse=True)
    # the centre goes to the crop centre, and scale·200 px of width to 192 px
    np.testing.assert_allclose(apply_affine(center[:, None], fwd)[:, 0], [[96, 128], [96, 128]], atol=1e-9)
    np.testing.assert_allclose(fwd[:, 0, 0], 192 / (scale[:, 0] * 200), rtol=1e-6)
    np.testing.assert_allclose(fwd[:, 1, 1], fwd[:, 0, 0])  # isotropic: only scale[:, 0] counts
    pts = np.random.default_rng(0).random((2, 5, 2)) * 300
    np.testing.assert_allclose(apply_affine(apply_affine(pts, fwd), inv), pts, atol=1e-9)
    # equals OpenCV's own solve on the same three points
    src = np.float32([center[0], center[0] + [0, -120], center[0] + [-120, -120]])
    dst = np.float32([[96, 128], [96, 32], [0, 32]])
    np.testing.assert_allclose(fwd[0], cv2.getAffineTransform(src, dst), atol=1e-4)  # 1.2·200 is 239.99998 in f32


@pytest.fixture(scope="module")
def frame(data_dir: Path) -> np.ndarray:
    img = cv2.imread(str(data_dir / "coco_val2017_keypoints" / "images" / "000000000785.jpg"))
    assert img is not None
    return img


BOXES = np.array([[277, 45, 502, 379], [-40, -30, 90, 200], [600, 300, 700, 460], [100, 100, 101, 140]], np.float32)


def test_cv2_crop_is_normalised_rgb(frame: np.ndarray) -> None:
    center, scale = boxes_to_center_scale(BOXES[:1])
    out = crop_boxes_cv2(frame, center, scale, (256, 192))
    assert out.shape == (1, 3, 256, 192) and out.dtype == torch.float32
    m = affine_matrices(center, scale, (192, 256))[0]
    raw = cv2.cvtColor(cv2.warpAffine(frame, m, (192, 256), flags=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    expect = (raw / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expect, atol=1e-5)


def _compare(a: torch.Tensor, b: torch.Tensor) -> None:
    d = (a - b).abs()
    # OpenCV interpolates uint8 in fixed point: ≤ ~1-2 grey levels (≈ 0.035 after /std) at most
    assert d.max().item() < 0.05, d.max().item()
    assert d.mean().item() < 0.005, d.mean().item()


def test_grid_sample_crop_matches_cv2(frame: np.ndarray) -> None:
    center, scale = boxes_to_center_scale(BOXES)
    a = crop_boxes_cv2(frame, center, scale, (256, 192))
    b = crop_boxes_torch(frame, center, scale, (256, 192))
    assert b.shape == a.shape == (4, 3, 256, 192)
    _compare(a, b)
    # a box partly outside the frame: zero (= -mean/std) padding in both
    assert torch.allclose(a[1, :, 0, 0], b[1, :, 0, 0], atol=1e-5)


def test_zero_boxes() -> None:
    img = np.zeros((32, 32, 3), np.uint8)
    z = np.zeros((0, 2), np.float32)
    assert crop_boxes_cv2(img, z, z, (64, 48)).shape == (0, 3, 64, 48)
    assert crop_boxes_torch(img, z, z, (64, 48)).shape == (0, 3, 64, 48)


@pytest.mark.gpu
def test_cuda_crop_matches_cv2(frame: np.ndarray) -> None:
    center, scale = boxes_to_center_scale(BOXES)
    a = crop_boxes_cv2(frame, center, scale, (256, 192))
    b = crop_boxes_torch(frame, center, scale, (256, 192), device="cuda")
    assert b.is_cuda
    _compare(a, b.cpu())
