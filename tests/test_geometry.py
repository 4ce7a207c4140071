"""stip_rt.geometry: IoU, GIoU, OKS and the box forms, against hand-checked values and plain loops."""

from __future__ import annotations

import numpy as np
import pytest

from stip_rt import geometry
from stip_rt.geometry import (
    box_areas,
    boxes_to_center_scale,
    cxcywh_to_xyxy,
    giou_matrix,
    iou_matrix,
    oks,
    oks_matrix,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from stip_rt.pose.postprocess import oks_matrix as nms_oks_matrix
from stip_rt.schemas import COCO17


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 100, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 50, (n, 2))], 1)


def test_box_forms_round_trip():
    b = np.array([[10.0, 20.0, 60.0, 140.0]])
    np.testing.assert_allclose(xyxy_to_cxcywh(b), [[35, 80, 50, 120]])
    np.testing.assert_allclose(cxcywh_to_xyxy(xyxy_to_cxcywh(b)), b)
    np.testing.assert_allclose(xyxy_to_xywh(b), [[10, 20, 50, 120]])
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(b)), b)
    np.testing.assert_allclose(box_areas(b), [6000.0])
    # extra state columns are ignored; sizes below min_size are raised to it
    np.testing.assert_allclose(cxcywh_to_xyxy(np.array([[5.0, 5, -2, 4, 9, 9]]), min_size=1.0), [[4.5, 3, 5.5, 7]])


def test_boxes_to_center_scale_hand_checked():
    center, scale = boxes_to_center_scale(np.array([[0.0, 0.0, 30.0, 100.0]]), aspect_ratio=0.75, padding=1.25)
    np.testing.assert_allclose(center, [[15, 50]])
    np.testing.assert_allclose(scale, [[75 * 1.25 / 200, 100 * 1.25 / 200]], rtol=1e-6)  # widened to 0.75
    assert center.dtype == scale.dtype == np.float32


def test_iou_hand_checked():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0.0, 1.0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_giou_hand_checked():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[20, 0, 30, 10]])  # hull 30x10, union 200
    np.testing.assert_allclose(giou_matrix(a, b), [[0 - (300 - 200) / 300]])
    assert giou_matrix(a, np.zeros((0, 4))).shape == (1, 0)


def test_iou_and_giou_match_pairwise_loop():
    rng = np.random.default_rng(1)
    a = _random_boxes(rng, 7)
    b = a[::-1] + rng.normal(0, 5, a.shape)
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
    m, g = iou_matrix(a, b), giou_matrix(a, b)
    for i in range(7):
        for j in range(7):
            iw = max(0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
            ih = max(0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
            u = np.prod(a[i, 2:] - a[i, :2]) + np.prod(b[j, 2:] - b[j, :2]) - iw * ih
            hull = (max(a[i, 2], b[j, 2]) - min(a[i, 0], b[j, 0])) * (max(a[i, 3], b[j, 3]) - min(a[i, 1], b[j, 1]))
            assert m[i, j] == pytest.approx(iw * ih / u)
            assert g[i, j] == pytest.approx(iw * ih / u - (hull - u) / hull)


def test_torch_iou_equals_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a, b = _random_boxes(rng, 9), _random_boxes(rng, 5)
    got = geometry.iou_matrix_torch(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, iou_matrix(a, b), rtol=1e-12, atol=1e-15)


def test_oks_hand_checked():
    sig = COCO17.sigmas_array()
    a = np.zeros((1, 17, 3))
    a[..., 2] = 1
    b = a.copy()
    b[0, 0, 0] = 3.0  # nose 3 px off, area 100
    b[0, 1:, 2] = 0.1  # every other joint below min_score on one side
    e = 9.0 / (2 * 100 * (2 * sig[0]) ** 2)
    np.testing.assert_allclose(oks_matrix(a, b, np.array([100.0]), sig, 0.3), [[np.exp(-e)]])
    # every joint counts without min_score: 16 exact joints and the nose
    np.testing.assert_allclose(oks_matrix(a, b, np.array([100.0]), sig), [[(16 + np.exp(-e)) / 17]])
    b[0, 0, 2] = 0.0
    assert np.isnan(oks_matrix(a, b, np.array([100.0]), sig, 0.3)[0, 0])  # no usable joint


def test_oks_matrix_matches_pairwise_loop_and_pairs():
    rng = np.random.default_rng(4)
    sig = COCO17.sigmas_array()
    a = np.concatenate([rng.uniform(0, 200, (4, 17, 2)), rng.uniform(0, 1, (4, 17, 1))], 2)
    b = np.concatenate([rng.uniform(0, 200, (3, 17, 2)), rng.uniform(0, 1, (3, 17, 1))], 2)
    areas = rng.uniform(2000, 9000, 3)
    m = oks_matrix(a, b, areas, sig, 0.3)
    for i in range(4):
        for j in range(3):
            use = (a[i, :, 2] >= 0.3) & (b[j, :, 2] >= 0.3)
            d2 = ((a[i, :, :2] - b[j, :, :2]) ** 2).sum(1)
            ref = np.exp(-d2 / (2 * areas[j] * (2 * sig) ** 2))[use].mean() if use.any() else np.nan
            np.testing.assert_allclose(m[i, j], ref, rtol=1e-12)
    np.testing.assert_allclose(oks(a[:, None], b[None], areas[None], sig, 0.3), m, rtol=0, atol=0)


def _official_oks_iou(g, d, a_g, a_d, sigmas):
    """HRNet ``nms.oks_iou`` (in_vis_thre None), verbatim but for names."""
    vars = (sigmas * 2) ** 2
    xg, yg = g[0::3], g[1::3]
    ious = np.zeros(d.shape[0])
    for n_d in range(d.shape[0]):
        xd, yd = d[n_d, 0::3], d[n_d, 1::3]
        dx, dy = xd - xg, yd - yg
        e = (dx**2 + dy**2) / vars / ((a_g + a_d[n_d]) / 2 + np.spacing(1)) / 2
        ious[n_d] = np.sum(np.exp(-e)) / e.shape[0] if e.shape[0] != 0 else 0.0
    return ious


def test_nms_oks_is_the_official_oks_iou():
    rng = np.random.default_rng(5)
    kps = np.concatenate([rng.uniform(0, 300, (5, 17, 2)), rng.uniform(0, 1, (5, 17, 1))], 2).astype(np.float32)
    areas = rng.uniform(3000, 8000, 5)
    sig = COCO17.sigmas_array(for_nms=True)
    got = nms_oks_matrix(kps, areas, sig)
    flat = kps.reshape(5, -1)
    for i in range(5):
        np.testing.assert_allclose(got[i], _official_oks_iou(flat[i], flat, areas[i], areas, sig), rtol=1e-12, atol=0)
