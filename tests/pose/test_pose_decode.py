"""Decoding: official fixtures (through scripts/check_decode.py) and behaviour on crafted maps."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from stip_rt.pose.decode import argmax_coords, decode_heatmaps, quarter_offset

REPO = Path(__file__).resolve().parents[2]


def _load_check_script():
    spec = importlib.util.spec_from_file_location("check_decode", REPO / "scripts" / "check_decode.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


check_decode = _load_check_script()


@pytest.fixture(scope="module")
def official_checks(fixtures_dir: Path):
    folder = fixtures_dir / "official_decode"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    return {c.name: c for c in check_decode.run_checks(folder)}


def test_every_fixture_file_is_checked(official_checks) -> None:
    prefixes = {name.split(":")[0].split(" ")[0] for name in official_checks}
    assert prefixes == {"decode_hrnet", "decode_stip", "flip", "targets", "oks_nms"}
    assert len(official_checks) == 24


@pytest.mark.parametrize(
    "name",
    [
        "decode_hrnet: argmax_coords", "decode_hrnet: maxvals", "decode_hrnet: hm_coords (heatmap px)",
        "decode_hrnet: coords (image px)", "decode_hrnet: affine (official hm_coords → image px)",
        "decode_stip: argmax_coords", "decode_stip: maxvals", "decode_stip: hm_coords (heatmap px)",
        "decode_stip: refine_offsets", "decode_stip: coords (image px)",
        "decode_stip: affine (official hm_coords → image px)",
        "flip coco17: averaged", "flip coco17: preds x, y (image px)", "flip coco17: preds maxval",
        "flip crowdpose14: averaged", "flip crowdpose14: preds x, y (image px)", "flip crowdpose14: preds maxval",
        "oks_nms coco17: rescored (relative)", "oks_nms coco17: oks", "oks_nms coco17: keep",
    ],
)  # fmt: skip
def test_matches_official(official_checks, name: str) -> None:
    c = official_checks[name]
    assert c.ok, f"{name}: worst error {c.error} > {c.tolerance}"


def test_script_exit_codes(fixtures_dir: Path, tmp_path: Path, capsys) -> None:
    assert check_decode.main([str(fixtures_dir / "official_decode")]) == 0
    assert "24/24 checks passed" in capsys.readouterr().out
    assert check_decode.main([str(tmp_path)]) == 2
    # a corrupted copy fails
    z = dict(np.load(fixtures_dir / "official_decode" / "decode_hrnet.npz"))
    z["coords"] = z["coords"] + 0.01
    np.savez(tmp_path / "decode_hrnet.npz", **z)
    assert check_decode.main([str(tmp_path)]) == 1
    assert "FAIL decode_hrnet: coords" in capsys.readouterr().out


def _blob(h: int, w: int, cx: float, cy: float, sigma: float = 2.0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)).astype(np.float32)


def test_argmax_first_max_and_nonpositive_maps() -> None:
    hm = np.zeros((1, 3, 8, 6), np.float32)
    hm[0, 0, 2, 3] = hm[0, 0, 5, 1] = 0.7  # tie: first in row-major order wins
    hm[0, 1] = -1.0
    hm[0, 1, 4, 4] = -0.5  # all negative: coordinates zeroed
    coords, maxvals = argmax_coords(hm)
    np.testing.assert_array_equal(coords[0], [[3, 2], [0, 0], [0, 0]])
    np.testing.assert_array_equal(maxvals[0], np.float32([0.7, -0.5, 0.0]))


def test_quarter_offset_direction_and_border() -> None:
    hm = np.zeros((1, 2, 16, 12), np.float32)
    hm[0, 0] = _blob(16, 12, 5.3, 8.0)  # larger neighbour on the right, tie vertically
    hm[0, 1] = _blob(16, 12, 1.2, 8.0)  # argmax in column 1: no step (official 1 < x)
    coords, _ = argmax_coords(hm)
    out = quarter_offset(hm, coords)
    np.testing.assert_allclose(out[0, 0], [5.25, 8.0])
    np.testing.assert_allclose(out[0, 1], coords[0, 1])


def test_stip_refinement_is_subpixel() -> None:
    true = np.array([[30.37, 41.71], [50.8, 70.2], [12.5, 100.1]])
    hm = np.stack([_blob(128, 96, x, y, 3.0) for x, y in true])[None]
    center = np.array([[48.0, 64.0]], np.float32)
    scale = np.array([[96 / 200, 128 / 200]], np.float32)  # identity crop: image px = heatmap px
    stip = decode_heatmaps(hm, center, scale, "stip")
    hrnet = decode_heatmaps(hm, center, scale, "hrnet")
    err_stip = np.abs(stip.coords[0] - true).max()
    err_hrnet = np.abs(hrnet.coords[0] - true).max()
    assert err_stip < 0.1 < err_hrnet


def test_zero_map_gives_nan_like_official_and_empty_batch() -> None:
    hm = np.zeros((1, 1, 16, 12), np.float32)
    c, s = np.zeros((1, 2), np.float32), np.ones((1, 2), np.float32)
    assert np.isnan(decode_heatmaps(hm, c, s, "stip").coords).all()
    assert not np.isnan(decode_heatmaps(hm, c, s, "hrnet").coords).any()
    empty = decode_heatmaps(np.zeros((0, 17, 64, 48), np.float32), np.zeros((0, 2)), np.zeros((0, 2)), "stip")
    assert empty.coords.shape == (0, 17, 2) and empty.maxvals.shape == (0, 17)


def test_unknown_kind_and_bad_shape() -> None:
    hm = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="unknown decode kind"):
        decode_heatmaps(hm, np.zeros((1, 2)), np.ones((1, 2)), "dark")
    with pytest.raises(ValueError, match=r"\(N, K, H, W\)"):
        decode_heatmaps(hm[0], np.zeros((1, 2)), np.ones((1, 2)), "stip")


def test_many_crops_beyond_opencv_channel_cap() -> None:
    rng = np.random.default_rng(1)
    hm = rng.random((12, 17, 32, 24), dtype=np.float32)  # 204 maps > 128 channels per blur call
    c, s = rng.random((12, 2)).astype(np.float32) * 100, np.ones((12, 2), np.float32)
    full = decode_heatmaps(hm, c, s, "stip").coords
    parts = np.concatenate(
        [decode_heatmaps(hm[i : i + 1], c[i : i + 1], s[i : i + 1], "stip").coords for i in range(12)]
    )
    np.testing.assert_array_equal(full, parts)
