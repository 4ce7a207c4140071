"""Rescoring and OKS-NMS (the official fixture check is in test_pose_decode)."""

from __future__ import annotations

import numpy as np
import torch

from stip_rt.pose.postprocess import oks_matrix, oks_nms, rescore
from stip_rt.schemas import COCO17, CROWDPOSE14


def test_rescore_mean_above_threshold_strictly() -> None:
    kp = np.array([[0.9, 0.5, 0.21, 0.1], [0.1, 0.19, 0.0, 0.15]], np.float32)
    out = rescore(np.array([0.8, 0.9]), kp)
    f = kp.astype(np.float64)
    np.testing.assert_allclose(out, [0.8 * (f[0, 0] + f[0, 1] + f[0, 2]) / 3, 0.0], rtol=1e-12)
    # float32(0.2) = 0.2000000030 is above 0.2 when compared in float64, as the official run (numpy 1.26) did
    assert rescore(np.array([1.0]), np.float32([[0.2, 0.0]]))[0] > 0


def _person(x: float, y: float, k: int = 17) -> np.ndarray:
    rng = np.random.default_rng(int(x * 7 + y))
    pts = np.stack([x + rng.random(k) * 50, y + rng.random(k) * 100, np.full(k, 0.9)], axis=1)
    return pts.astype(np.float32)


def test_nms_keeps_best_of_duplicates_and_distinct_people() -> None:
    a = _person(100, 100)
    near = a.copy()
    near[:, :2] += 0.5
    far = _person(400, 100)
    kps = np.stack([a, near, far])
    keep = oks_nms(kps, np.array([0.5, 0.7, 0.6]), np.full(3, 5000.0), COCO17.sigmas_array(for_nms=True))
    assert keep.tolist() == [1, 2]  # highest first; the near-duplicate of 1 is gone


def test_oks_matrix_symmetric_with_unit_diagonal() -> None:
    kps = np.stack([_person(100, 100), _person(130, 90), _person(400, 300)])
    oks = oks_matrix(kps, np.array([4000.0, 5000.0, 6000.0]), COCO17.sigmas_array())
    np.testing.assert_allclose(np.diag(oks), 1.0)
    np.testing.assert_allclose(oks, oks.T)
    assert oks[0, 2] < 1e-6 < oks[0, 1] < 1


def test_crowdpose_nms_sigmas_differ_from_metric_for_head_and_neck() -> None:
    a = _person(100, 100, 14)
    b = a.copy()
    b[12:, :2] += 6.0  # head and neck moved
    kps, areas = np.stack([a, b]), np.array([3000.0, 3000.0])
    nms = oks_matrix(kps, areas, CROWDPOSE14.sigmas_array(for_nms=True))[0, 1]
    metric = oks_matrix(kps, areas, CROWDPOSE14.sigmas_array())[0, 1]
    assert nms < metric  # smaller head/neck sigmas (.35) in the official NMS


def test_nms_empty() -> None:
    assert oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0), COCO17.sigmas_array()).shape == (0,)


def test_rescore_on_tensors_equals_numpy() -> None:
    rng = np.random.default_rng(2)
    kp = rng.random((6, 17), dtype=np.float32)
    kp[2] = 0.1  # nobody above the threshold
    box = rng.random(6)
    want = rescore(box, kp)
    got = rescore(torch.from_numpy(box.astype(np.float32)), torch.from_numpy(kp))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-7)
    assert got[2] == 0 and isinstance(want, np.ndarray)
