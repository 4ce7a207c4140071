"""The similarity mix and the gated assignment (the geometry itself: tests/test_geometry.py)."""

from __future__ import annotations

import numpy as np
import pytest

from stip_rt.geometry import giou_matrix, iou_matrix
from stip_rt.track import assignment
from stip_rt.track.costs import BOX_SIMILARITIES, buffered_iou, combined_similarity


def test_box_similarities_by_name():
    assert {"iou": iou_matrix, "giou": giou_matrix} == BOX_SIMILARITIES


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


def test_assign_does_not_trade_a_good_match_for_more_matches():
    # Row 0 (gate 0.2) could take column 0 only; row 1 (a lost track, gate 0.05) takes column 0 well or
    # column 1 (a false positive) barely. Two matches (0.25 + 0.07) are worth less than one (0.79).
    sim = np.array([[0.25, np.nan], [0.79, 0.07]])
    matches, free_r, free_c = assignment.assign(sim, np.array([[0.2], [0.05]]))
    assert matches.tolist() == [[1, 0]]
    assert free_r.tolist() == [0] and free_c.tolist() == [1]


def test_assign_with_negative_gates_still_matches_negative_similarities():
    m, _, _ = assignment.assign(np.array([[-0.3]]), -0.5)  # GIoU: the floor is the lowest gate
    assert m.tolist() == [[0, 0]]


def test_solvers_agree():
    pytest.importorskip("lap")  # optional solver (the track-eval extra); its result is still checked below
    rng = np.random.default_rng(3)
    sim = rng.random((12, 15))
    cost = np.where(sim >= 0.3, 1 - sim, 1e6)
    r1, c1 = assignment.SOLVERS["scipy"](cost)
    r2, c2 = assignment.SOLVERS["lap"](cost)
    assert cost[r1, c1].sum() == pytest.approx(cost[r2, c2].sum())
    assert assignment.SOLVER_NAME in assignment.SOLVERS


def test_buffered_iou_grows_both_boxes_by_the_rows_scale() -> None:
    a = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    b = np.array([[10.0, 0.0, 20.0, 10.0], [2.0, 0.0, 12.0, 10.0]])
    got = buffered_iou(a, b, np.array([0.0, 0.5]))
    np.testing.assert_allclose(got[0], iou_matrix(a[:1], b)[0])  # scale 0: plain IoU
    # row 1 grown by 5 px on every side: [-5, -5, 15, 15] vs [5, -5, 25, 15] → 200 / 600
    np.testing.assert_allclose(got[1], [1 / 3, 18 * 20 / (2 * 400 - 18 * 20)])
