"""Pixels to metres: a scale, a homography fitted to four points (exact on them), and degenerate inputs refused."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from stip_rt.analysis.ground import fit_homography, load_homography, scale_map
from stip_rt.errors import ConfigError

IMAGE = [[100.0, 400.0], [540.0, 400.0], [420.0, 200.0], [220.0, 200.0]]  # a trapezoid: a floor in perspective
GROUND = [[0.0, 0.0], [4.0, 0.0], [4.0, 6.0], [0.0, 6.0]]


def test_scale() -> None:
    g = scale_map(0.01)
    assert g(np.array([[100.0, 250.0]])) == pytest.approx(np.array([[1.0, 2.5]]))
    assert g.is_scale


@pytest.mark.parametrize("bad", [0, -0.01, float("nan"), float("inf")])
def test_bad_scale(bad: float) -> None:
    with pytest.raises(ConfigError, match="scale"):
        scale_map(bad)


def test_homography_maps_the_points_and_the_space_between() -> None:
    g = fit_homography(np.array(IMAGE), np.array(GROUND))
    assert g(np.array(IMAGE)) == pytest.approx(np.array(GROUND), abs=1e-6)
    # the image point halfway between the near corners is the ground point halfway between them
    assert g(np.array([320.0, 400.0])) == pytest.approx([2.0, 0.0], abs=1e-6)
    # an independent check with OpenCV's perspectiveTransform
    pts = np.array([[[300.0, 300.0]]])
    assert g(pts[0]) == pytest.approx(cv2.perspectiveTransform(pts, g.matrix)[0], abs=1e-9)
    assert np.isnan(g(np.array([[np.nan, 1.0]]))).all()


def test_points_beyond_the_horizon_are_nan() -> None:
    g = fit_homography(np.array(IMAGE), np.array(GROUND))
    horizon_y = next(y for y in np.arange(200, -2000, -1.0) if not np.isfinite(g(np.array([320.0, y]))).all())
    assert horizon_y < 200
    assert np.isfinite(g(np.array([320.0, horizon_y + 5]))).all()
    assert np.isnan(g(np.array([320.0, horizon_y - 50]))).all()


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_file(tmp_path: Path, suffix: str) -> None:
    p = tmp_path / f"ground{suffix}"
    p.write_text(json.dumps({"image_points": IMAGE, "ground_points": GROUND}))
    g = load_homography(p)
    assert g(np.array(IMAGE)) == pytest.approx(np.array(GROUND), abs=1e-6)
    assert str(p) in g.source


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "file not found"),
        ("[1, 2]", "expected a mapping"),
        ("image_points: [[0, 0]]\n", "expected a mapping"),
        ('{"image_points": [], "ground_points": [], "extra": 1}', "unknown key"),
        (json.dumps({"image_points": IMAGE[:3], "ground_points": GROUND[:3]}), "at least 4"),
        (json.dumps({"image_points": IMAGE, "ground_points": GROUND[:3]}), "4 image_points but 3"),
        (json.dumps({"image_points": [[0, 0], [1, 1], [2, 2], [3, 3]], "ground_points": GROUND}), "one line"),
        (json.dumps({"image_points": [[0, 0], [100, 0], [200, 0], [50, 80]], "ground_points": GROUND}), "1, 2 and 3"),
        (json.dumps({"image_points": IMAGE, "ground_points": [[0, 0]] * 4}), "coincide"),
        (json.dumps({"image_points": "abc", "ground_points": GROUND}), "pairs"),
        ("image_points: [", "cannot read"),
    ],
)
def test_bad_file_names_the_file(tmp_path: Path, content: str | None, match: str) -> None:
    p = tmp_path / "h.yaml"
    if content is not None:
        p.write_text(content)
    with pytest.raises(ConfigError, match=match) as e:
        load_homography(p)
    assert str(p) in str(e.value)
