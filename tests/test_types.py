"""Result types: Detections checks its shapes once, where it is made, and names them."""

from __future__ import annotations

import numpy as np
import pytest

from stip_rt.errors import DataError
from stip_rt.types import Detections


@pytest.mark.parametrize(
    ("boxes", "scores", "message"),
    [
        (np.zeros(4, np.float32), np.ones(1, np.float32), r"boxes must be \(N, 4\), got \(4,\)"),
        (np.zeros((2, 5), np.float32), np.ones(2, np.float32), r"boxes must be \(N, 4\), got \(2, 5\)"),
        (np.zeros((2, 4), np.float32), np.ones(1, np.float32), r"scores must be \(N,\) = \(2,\) .* got \(1,\)"),
        (np.zeros((2, 4), np.float32), np.ones(3, np.float32), r"for 2 boxes, got \(3,\)"),
        (np.zeros((2, 4), np.float32), np.ones((2, 2), np.float32), r"for 2 boxes, got \(2, 2\)"),
        ([["a", 1, 2, 3]], [1.0], "boxes must be a numeric array"),
        ([[1, 2, 3, 4], [1, 2]], [1.0, 1.0], "boxes must be a numeric array"),
    ],
    ids=["one-box-flat", "five-columns", "fewer-scores", "more-scores", "2d-scores", "strings", "ragged"],
)
def test_bad_shapes_are_one_data_error_naming_them(boxes: object, scores: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        Detections(boxes, scores)  # type: ignore[arg-type]


def test_lists_and_other_dtypes_become_float32_arrays() -> None:
    d = Detections([[1, 2, 3, 4]], [0.5])  # type: ignore[arg-type]
    assert d.boxes.shape == (1, 4) and d.boxes.dtype == np.float32 and d.scores.dtype == np.float32
    assert len(d) == 1
    boxes = np.ones((3, 4), np.float32)
    assert Detections(boxes, np.ones(3, np.float32)).boxes is boxes  # float32 input: no copy
    empty = Detections(np.zeros(0), [])  # type: ignore[arg-type]
    assert empty.boxes.shape == (0, 4) and empty.scores.shape == (0,)


def test_boxes_no_crop_can_be_cut_from_are_legal_data() -> None:
    d = Detections(np.array([[5, 5, 5, 5], [9, 9, 1, 1], [np.nan, 0, 1, 1]], np.float32), np.ones(3, np.float32))
    assert len(d) == 3  # the pose estimator and the tracker skip them
