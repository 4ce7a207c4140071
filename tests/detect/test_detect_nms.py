"""Vectorised NMS against a plain greedy loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stip_rt.detect.nms import KEEP_STEPS, batched_nms, greedy_keep, nms, settle, suppression
from stip_rt.geometry import iou_matrix_torch


def _greedy(boxes: np.ndarray, scores: np.ndarray, thr: float, groups: np.ndarray | None = None) -> list[int]:
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    for i in order:
        ok = True
        for j in keep:
            if groups is not None and groups[i] != groups[j]:
                continue
            x1, y1 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            x2, y2 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            a = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            b = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            if inter / (a + b - inter) > thr:
                ok = False
                break
        if ok:
            keep.append(int(i))
    return keep


def _random_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    xy = rng.uniform(0, 200, (n, 2))
    wh = rng.uniform(10, 80, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32), rng.uniform(0, 1, n).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("thr", [0.3, 0.65])
def test_nms_equals_greedy_reference(seed, thr):
    boxes, scores = _random_boxes(np.random.default_rng(seed), 300)
    got = nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).tolist()
    assert got == _greedy(boxes, scores, thr)


def test_chains_of_suppression_are_resolved_exactly():
    # A suppresses B, B would suppress C, but B is gone so C survives: the classic greedy subtlety.
    boxes = torch.tensor([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.4).tolist() == [0, 2]


def test_groups_are_independent():
    rng = np.random.default_rng(7)
    boxes, scores = _random_boxes(rng, 200)
    groups = rng.integers(0, 4, 200)
    got = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), 0.5).tolist()
    assert got == _greedy(boxes, scores, 0.5, groups)
    # identical boxes in two groups both survive
    same = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=torch.float32)
    assert sorted(nms(same, torch.tensor([0.5, 0.6]), 0.5, torch.tensor([0, 1])).tolist()) == [0, 1]


def test_empty_and_degenerate_boxes():
    assert nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).shape == (0,)
    iou = iou_matrix_torch(torch.zeros((2, 4)), torch.zeros((1, 4)))
    assert torch.equal(iou, torch.zeros((2, 1)))


@pytest.mark.parametrize("steps", [KEEP_STEPS, 1])
def test_fixed_shape_rows_equal_the_greedy_reference(steps: int) -> None:
    """Rows of score-sorted boxes with a valid prefix (a detector's top-k above its threshold):
    settled rows are already exact; the others become exact with settle()."""
    rng = np.random.default_rng(11)
    rows, valid, want = [], [], []
    for count in (120, 60, 0, 1):
        boxes, scores = _random_boxes(rng, 120)
        order = np.argsort(-scores, kind="stable")
        boxes, scores = boxes[order], scores[order]
        rows.append(boxes)
        valid.append(np.arange(120) < count)
        want.append(sorted(_greedy(boxes[:count], scores[:count], 0.5)))
    b, v = torch.from_numpy(np.stack(rows)), torch.from_numpy(np.stack(valid))
    over = suppression(b, 0.5)
    keep, settled = greedy_keep(over, v, steps)
    for i in range(len(want)):
        if settled[i]:
            assert torch.nonzero(keep[i]).flatten().tolist() == want[i]
    if steps == 1:
        assert not settled.all()  # random scenes have chains of two or more
    final = settle(over, keep, v)
    assert [torch.nonzero(k).flatten().tolist() for k in final] == want


@pytest.mark.gpu
def test_cuda_matches_cpu():
    boxes, scores = _random_boxes(np.random.default_rng(3), 500)
    b, s = torch.from_numpy(boxes), torch.from_numpy(scores)
    assert nms(b.cuda(), s.cuda(), 0.5).cpu().tolist() == nms(b, s, 0.5).tolist()
