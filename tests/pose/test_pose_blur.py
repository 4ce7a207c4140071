"""The STIP refinement's blur (stip_rt.pose.blur): OpenCV's own numbers, by torch and through OpenCV,
and the statistics the refinement reads."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from stip_rt.pose import blur
from stip_rt.pose.blur import blur_stats, gaussian_blur7, reflect101_index


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (3, 4), (4, 5), (7, 9), (33, 26)])
def test_blur_is_opencv_gaussian_7x7(size: tuple[int, int]) -> None:
    h, w = size
    maps = np.random.default_rng(h * w).random((5, h, w), dtype=np.float32)
    want = np.stack([np.asarray(cv2.GaussianBlur(m, (7, 7), 0)).reshape(h, w) for m in maps])
    np.testing.assert_array_equal(gaussian_blur7(_t(maps), "opencv").numpy(), want)
    np.testing.assert_allclose(gaussian_blur7(_t(maps), "torch").numpy(), want, rtol=0, atol=3e-7)


def test_blur_of_official_fixture_maps_is_exact(fixtures_dir: Path) -> None:
    path = fixtures_dir / "official_decode" / "decode_stip.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    maps = np.load(path)["heatmaps"].reshape(-1, 128, 96)[:40]  # multiples of 2^-8: every sum is exact
    want = np.stack([cv2.GaussianBlur(m, (7, 7), 0) for m in maps])
    np.testing.assert_array_equal(gaussian_blur7(_t(maps), "torch").numpy(), want)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 10])
def test_reflect101_index_is_opencv_border_interpolate(size: int) -> None:
    got = reflect101_index(size, 3, "cpu").tolist()
    assert got == [cv2.borderInterpolate(i, size, cv2.BORDER_REFLECT_101) for i in range(-3, size + 3)]


def _stats_one_by_one(maps: np.ndarray, y: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, ...]:
    """Minimum, maximum and edge-clamped 3×3 patch of each map blurred on its own by OpenCV."""
    lo, hi, patch = [], [], []
    h, w = maps.shape[1:]
    for m, yy, xx in zip(maps, y, x):
        b = np.asarray(cv2.GaussianBlur(m, (7, 7), 0)).reshape(h, w)
        lo.append(b.min())
        hi.append(b.max())
        rows, cols = np.clip(yy + np.arange(-1, 2), 0, h - 1), np.clip(xx + np.arange(-1, 2), 0, w - 1)
        patch.append(b[rows[:, None], cols[None, :]])
    return np.array(lo), np.array(hi), np.stack(patch)


@pytest.mark.parametrize("impl", ["opencv", "torch"])
def test_blur_stats_equal_each_map_blurred_alone_across_chunks(impl: str, monkeypatch) -> None:
    """The statistics of 23 maps, through OpenCV in chunks of 7 (the last one short) or by torch, equal
    OpenCV's blur of each map on its own (the torch blur within float rounding)."""
    monkeypatch.setattr(blur, "_CPU_CHUNK", 7)
    rng = np.random.default_rng(3)
    maps = rng.random((23, 12, 9), dtype=np.float32)
    y, x = rng.integers(0, 12, 23), rng.integers(0, 9, 23)
    y[0], x[0], y[1], x[1] = 0, 0, 11, 8  # patches clamped at both corners
    got = blur_stats(_t(maps), _t(x), _t(y), impl)
    want = _stats_one_by_one(maps, y, x)
    for g, w in zip(got, want):
        if impl == "opencv":
            np.testing.assert_array_equal(g.numpy(), w)
        else:
            np.testing.assert_allclose(g.numpy(), w, rtol=0, atol=3e-7)


def test_opencv_blur_needs_cpu_maps_and_known_impl() -> None:
    maps = torch.zeros(2, 8, 8, device="meta")
    with pytest.raises(ValueError, match="impl 'opencv' needs CPU maps, got meta"):
        gaussian_blur7(maps, "opencv")
    with pytest.raises(ValueError, match="unknown impl 'fast'"):
        gaussian_blur7(torch.zeros(2, 8, 8), "fast")  # type: ignore[arg-type]
