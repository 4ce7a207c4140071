"""Vectorised IoU / GIoU / OKS and the gated assignment."""

from __future__ import annotations

import numpy as np
import pytest

from stip_rt.schemas import COCO17
from stip_rt.track import assignment
from stip_rt.track.costs import BOX_SIMILARITIES, combined_similarity, giou_matrix, iou_matrix, oks_matrix


def test_iou_hand_checked():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0.0, 1.0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_giou_hand_checked():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[20, 0, 30, 10]])  # hull 30x10, union 200
    np.testing.assert_allclose(giou_matrix(a, b), [[0 - (300 - 200) / 300]])
    assert set(BOX_SIMILARITIES) == {"iou", "giou"}


def test_iou_matches_pairwise_loop():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (7, 2))
    a = np.concatenate([xy, xy + rng.uniform(1, 50, (7, 2))], 1)
    b = a[::-1] + rng.normal(0, 5, a.shape)
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
    m = iou_matrix(a, b)
    for i in range(7):
        for j in range(7):
            iw = max(0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
            ih = max(0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
            u = np.prod(a[i, 2:] - a[i, :2]) + np.prod(b[j, 2:] - b[j, :2]) - iw * ih
            assert m[i, j] == pytest.approx(iw * ih / u)


def test_oks_hand_checked():
    sig = COCO17.sigmas_array()
    a = np.zeros((1, 17, 3))
    a[..., 2] = 1
    b = a.copy()
    b[0, 0, 0] = 3.0  # nose 3 px off, area 100
    b[0, 1:, 2] = 0.1  # every other joint below min_score on one side
    e = 9.0 / (2 * 100 * (2 * sig[0]) ** 2)
    np.testing.assert_allclose(oks_matrix(a, b, np.array([100.0]), sig, 0.3), [[np.exp(-e)]])
    b[0, 0, 2] = 0.0
    assert np.isnan(oks_matrix(a, b, np.array([100.0]), sig, 0.3)[0, 0])  # no usable joint


def test_combined_falls_back_to_box_where_oks_undefined():
    box = np.array([[0.5, 0.2]])
    oks = np.array([[1.0, np.nan]])
    np.testing.assert_allclose(combined_similarity(box, oks, 0.5), [[0.75, 0.2]])
    np.testing.assert_allclose(combined_similarity(box, None, 0.5), box)


def test_assign_gates_and_maximises():
    sim = np.array([[0.9, 0.8], [0.85, 0.1], [0.05, 0.1]])
    matches, free_r, free_c = assignment.assign(sim, 0.2)
    assert sorted(matches.tolist()) == [[0, 1], [1, 0]]  # 0.8 + 0.85 beats 0.9 + 0.1
    assert free_r.tolist() == [2] and free_c.tolist() == []
    m, fr, fc = assignment.assign(np.array([[np.nan, 0.1]]), 0.2)
    assert len(m) == 0 and fr.tolist() == [0] and fc.tolist() == [0, 1]
    m, _, _ = assignment.assign(np.array([[0.9]]), 0.2, gate_on=np.array([[0.1]]))
    assert len(m) == 0  # the gate applies to gate_on


def test_solvers_agree():
    rng = np.random.default_rng(3)
    sim = rng.random((12, 15))
    cost = np.where(sim >= 0.3, 1 - sim, 1e6)
    r1, c1 = assignment.SOLVERS["scipy"](cost)
    r2, c2 = assignment.SOLVERS["lap"](cost)
    assert cost[r1, c1].sum() == pytest.approx(cost[r2, c2].sum())
    assert assignment.SOLVER_NAME in assignment.SOLVERS
