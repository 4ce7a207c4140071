"""Decoding: official fixtures (through scripts/check_decode.py), behaviour on crafted maps, and the
torch decode against the former numpy + OpenCV decode (tests/pose/reference_decode.py) on random maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import reference_decode as ref
import torch
from load_script import load_script

from stip_rt.pose.decode import (
    argmax_coords,
    decode_heatmaps,
    finite_per_crop,
    first_max_index,
    quarter_offset,
    refine_offsets,
)

check_decode = load_script("check_decode")


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


@pytest.mark.gpu
def test_matches_official_on_cuda(fixtures_dir: Path) -> None:
    failed = [c.name for c in check_decode.run_checks(fixtures_dir / "official_decode", "cuda") if not c.ok]
    assert not failed


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


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def test_argmax_first_max_and_nonpositive_maps() -> None:
    hm = np.zeros((1, 3, 8, 6), np.float32)
    hm[0, 0, 2, 3] = hm[0, 0, 5, 1] = 0.7  # tie: first in row-major order wins
    hm[0, 1] = -1.0
    hm[0, 1, 4, 4] = -0.5  # all negative: coordinates zeroed
    coords, maxvals = argmax_coords(_t(hm))
    np.testing.assert_array_equal(coords[0].numpy(), [[3, 2], [0, 0], [0, 0]])
    np.testing.assert_array_equal(maxvals[0].numpy(), np.float32([0.7, -0.5, 0.0]))
    assert coords.dtype == maxvals.dtype == torch.float32


def test_argmax_ties_in_one_row_and_nan_like_numpy() -> None:
    hm = np.zeros((1, 3, 8, 6), np.float32)
    hm[0, 0, 4, [5, 2, 3]] = 0.5  # same row: the first column wins
    hm[0, 0, 6, 0] = 0.5
    hm[0, 1, 3, 2] = 0.9
    hm[0, 1, [5, 2], [4, 5]] = np.nan  # numpy's argmax stops at the first NaN
    hm[0, 2, 7, 5] = 0.3  # last pixel
    coords, maxvals = argmax_coords(_t(hm))
    want_c, want_m = ref.argmax_coords(hm)
    np.testing.assert_array_equal(coords.numpy(), want_c)
    np.testing.assert_array_equal(maxvals.numpy(), want_m)  # NaN where numpy gives NaN
    np.testing.assert_array_equal(coords[0].numpy(), [[2, 4], [0, 0], [5, 7]])


def test_first_max_index_numpy_and_torch_ways_agree() -> None:
    """The CPU (numpy) and device (torch) ways give the same first maximum, ties and NaN included."""
    rng = np.random.default_rng(3)
    maps = rng.integers(0, 4, (64, 8 * 6)).astype(np.float32)  # many ties
    maps[5, [7, 30]] = np.nan
    maps[9] = -2.0
    maps[11, -1] = 9.0
    flat = torch.from_numpy(maps)
    got_np = first_max_index(flat, 6, "numpy")
    got_torch = first_max_index(flat, 6, "torch")
    np.testing.assert_array_equal(got_np.numpy(), maps.argmax(axis=1))
    np.testing.assert_array_equal(got_torch.numpy(), maps.argmax(axis=1))
    assert got_np[5] == 7 and got_np[9] == 0 and got_np[11] == 47


def test_finite_per_crop_flags_nan_and_both_infinities() -> None:
    hm = np.zeros((5, 3, 8, 6), np.float32)
    hm[1, 2, 7, 5] = np.nan
    hm[2, 0, 0, 0] = np.inf
    hm[3, 1, 4, 2] = -np.inf
    hm[4] = 3e38  # large but finite
    want = [True, False, False, False, True]
    assert finite_per_crop(_t(hm)).tolist() == want
    assert finite_per_crop(_t(hm)[:, :, ::2]).tolist() == [True, True, False, False, True]  # strided: row 7 dropped
    assert finite_per_crop(_t(hm[:0])).shape == (0,)


def test_quarter_offset_direction_and_border() -> None:
    hm = np.zeros((1, 2, 16, 12), np.float32)
    hm[0, 0] = _blob(16, 12, 5.3, 8.0)  # larger neighbour on the right, tie vertically
    hm[0, 1] = _blob(16, 12, 1.2, 8.0)  # argmax in column 1: no step (official 1 < x)
    coords, _ = argmax_coords(_t(hm))
    out = quarter_offset(_t(hm), coords).numpy()
    np.testing.assert_allclose(out[0, 0], [5.25, 8.0])
    np.testing.assert_allclose(out[0, 1], coords[0, 1].numpy())


def test_stip_refinement_is_subpixel() -> None:
    true = np.array([[30.37, 41.71], [50.8, 70.2], [12.5, 100.1]])
    hm = np.stack([_blob(128, 96, x, y, 3.0) for x, y in true])[None]
    center = np.array([[48.0, 64.0]], np.float32)
    scale = np.array([[96 / 200, 128 / 200]], np.float32)  # identity crop: image px = heatmap px
    stip = decode_heatmaps(hm, center, scale, "stip")
    hrnet = decode_heatmaps(hm, center, scale, "hrnet")
    err_stip = np.abs(stip.coords[0].numpy() - true).max()
    err_hrnet = np.abs(hrnet.coords[0].numpy() - true).max()
    assert err_stip < 0.1 < err_hrnet


def test_zero_map_gives_nan_like_official_and_empty_batch() -> None:
    hm = np.zeros((1, 1, 16, 12), np.float32)
    c, s = np.zeros((1, 2), np.float32), np.ones((1, 2), np.float32)
    assert torch.isnan(decode_heatmaps(hm, c, s, "stip").coords).all()
    assert not torch.isnan(decode_heatmaps(hm, c, s, "hrnet").coords).any()
    empty = decode_heatmaps(np.zeros((0, 17, 64, 48), np.float32), np.zeros((0, 2)), np.zeros((0, 2)), "stip")
    assert empty.coords.shape == (0, 17, 2) and empty.maxvals.shape == (0, 17)


def test_unknown_kind_and_bad_shape() -> None:
    hm = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="unknown decode kind"):
        decode_heatmaps(hm, np.zeros((1, 2)), np.ones((1, 2)), "dark")
    with pytest.raises(ValueError, match=r"\(N, K, H, W\)"):
        decode_heatmaps(hm[0], np.zeros((1, 2)), np.ones((1, 2)), "stip")
    with pytest.raises(ValueError, match="unknown impl 'fft'"):  # the decode's blur argument is checked
        decode_heatmaps(np.zeros((1, 1, 8, 8), np.float32), np.zeros((1, 2)), np.ones((1, 2)), "stip", blur="fft")


def test_many_crops_decode_like_one_at_a_time() -> None:
    rng = np.random.default_rng(1)
    hm = rng.random((12, 17, 32, 24), dtype=np.float32)  # 204 maps: one OpenCV call on a tall image
    c, s = rng.random((12, 2)).astype(np.float32) * 100, np.ones((12, 2), np.float32)
    full = decode_heatmaps(hm, c, s, "stip").coords
    parts = torch.cat([decode_heatmaps(hm[i : i + 1], c[i : i + 1], s[i : i + 1], "stip").coords for i in range(12)])
    torch.testing.assert_close(full, parts, rtol=0, atol=0)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 4), (64, 48)])
def test_cpu_one_pass_equals_the_steps_one_by_one(size: tuple[int, int]) -> None:
    """The CPU STIP decode's single pass (argmax, finite flags, blur statistics chunk by chunk) gives
    exactly what first_max_index, finite_per_crop and the chunked OpenCV blur give one after the other."""
    h, w = size
    rng = np.random.default_rng(5)
    hm = _realistic(rng, 5, 17, h, w) if h > 4 else rng.normal(0.2, 0.3, (5, 17, h, w)).astype(np.float32)
    hm[0, 0] = 0.0  # all zero
    hm[1, 3] = -np.abs(hm[1, 3]) - 0.01  # max ≤ 0: patch at (0, 0)
    hm[2, 5].flat[-1] = np.nan  # NaN is the maximum
    hm[3, 16].flat[0] = -np.inf
    hm[4, 0].flat[-1] = 3e38  # large but finite
    hm[4, 1] = np.finfo(np.float32).max  # finite, but its blur overflows to inf: checked value by value
    c, s = rng.uniform(50, 500, (5, 2)).astype(np.float32), rng.uniform(0.3, 2.0, (5, 2)).astype(np.float32)
    got = decode_heatmaps(_t(hm), c, s, "stip", blur="opencv")  # 85 maps, one OpenCV call
    coords, maxvals = argmax_coords(_t(hm))
    want = coords.double() + refine_offsets(_t(hm), coords, maxvals, "opencv")
    torch.testing.assert_close(got.hm_coords, want, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(got.argmax, coords, rtol=0, atol=0)
    torch.testing.assert_close(got.maxvals, maxvals, rtol=0, atol=0, equal_nan=True)
    assert got.finite.tolist() == finite_per_crop(_t(hm)).tolist() == [True, True, False, False, True]
    torch_way = decode_heatmaps(_t(hm), c, s, "stip", blur="torch")  # the step-by-step way of the GPU
    assert torch_way.finite.tolist() == got.finite.tolist()


# -- the torch decode against the reference numpy decode ------------------------------------------------------------


def _realistic(rng: np.random.Generator, n: int, k: int, h: int, w: int) -> np.ndarray:
    """Heatmap-like maps: a blob anywhere (also on and just outside the border) plus small noise."""
    out = np.empty((n, k, h, w), np.float32)
    for i in range(n):
        for j in range(k):
            cx, cy = rng.uniform(-1.5, w + 0.5), rng.uniform(-1.5, h + 0.5)
            out[i, j] = rng.uniform(0.05, 0.95) * _blob(h, w, cx, cy, rng.uniform(1.5, 3.0))
    out += rng.normal(0, 0.003, out.shape).astype(np.float32)
    return out


@pytest.mark.parametrize("kind", ["stip", "hrnet"])
@pytest.mark.parametrize("blur", ["opencv", "torch"])
def test_matches_reference_decode_on_random_maps(kind: str, blur: str) -> None:
    rng = np.random.default_rng(7)
    hm = _realistic(rng, 6, 17, 64, 48)
    hm[0, 0] = 0.0  # all zero: NaN for stip
    hm[0, 1] = -np.abs(hm[0, 1]) - 0.01  # negative: (0, 0), offset 0
    hm[0, 2, 0, 0] = 2.0  # peak in a corner
    hm[0, 3, 63, 20] = 2.0  # peak on the bottom row
    hm[0, 4, 10, 47] = 2.0  # peak on the last column
    center = rng.uniform(50, 500, (6, 2)).astype(np.float32)
    scale = rng.uniform(0.3, 2.0, (6, 2)).astype(np.float32)
    got = decode_heatmaps(_t(hm), center, scale, kind, blur=blur)
    want = ref.decode_heatmaps(hm, center, scale, kind)
    np.testing.assert_array_equal(got.maxvals.numpy(), want.maxvals)
    np.testing.assert_array_equal(got.argmax.numpy(), ref.argmax_coords(hm)[0])
    # stip: float32 log rounding (see decode.py; measured 5e-6 px here); frame px: up to ~8 px per heatmap px,
    # and hrnet's float32 output may round the other way (float32 ulp at 500 px = 3e-5)
    hm_tol, px_tol = (0.0, 1e-4) if kind == "hrnet" else (2e-5, 2e-4)
    np.testing.assert_allclose(got.hm_coords.numpy(), want.hm_coords, rtol=0, atol=hm_tol)
    np.testing.assert_allclose(got.coords.numpy(), want.coords, rtol=0, atol=px_tol)
    assert got.coords.dtype == got.hm_coords.dtype == torch.float64
    if kind == "stip":
        assert torch.isnan(got.hm_coords[0, 0]).all() and (got.hm_coords[0, 1] == 0).all()


def test_singular_hessians_give_zero_offset_like_reference() -> None:
    h, w = 32, 24
    hm = np.zeros((1, 3, h, w), np.float32)
    hm[0, 0] = 0.5  # flat around the argmax (0, 0): every derivative 0
    hm[0, 0, h - 1, w - 1] = 0.25  # far dip, so the blurred map is not constant
    hm[0, 1] = _blob(h, w, 10.3, 0.0)[0]  # a ridge: varies along x only → dyy = dxy = 0 → det 0
    hm[0, 2] = -0.3 - 0.1 * _blob(h, w, 12.0, 9.0)  # negative map: clipped to 0.001 everywhere, det 0
    coords, maxvals = argmax_coords(_t(hm))
    off = refine_offsets(_t(hm), coords, maxvals).numpy()
    want = ref.refine_offsets(hm, coords.numpy())
    np.testing.assert_array_equal(off[0, 0], [0.0, 0.0])
    np.testing.assert_array_equal(off[0, 2], [0.0, 0.0])
    assert off[0, 1, 1] == 0.0 and off[0, 1, 0] == 0.0  # singular although dx ≠ 0: no step at all
    np.testing.assert_array_equal(off, want)


def test_nan_in_heatmap_like_reference() -> None:
    rng = np.random.default_rng(3)
    hm = _realistic(rng, 1, 3, 32, 24)
    hm[0, 1, 5, 7] = np.nan
    c, s = np.full((1, 2), 50, np.float32), np.ones((1, 2), np.float32)
    got = decode_heatmaps(hm, c, s, "stip")
    want = ref.decode_heatmaps(hm, c, s, "stip")
    np.testing.assert_array_equal(np.isnan(got.hm_coords.numpy()), np.isnan(want.hm_coords))
    np.testing.assert_array_equal(np.isnan(got.maxvals.numpy()), np.isnan(want.maxvals))
    assert np.isnan(want.hm_coords[0, 1]).all() and not np.isnan(want.hm_coords[0, [0, 2]]).any()


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["stip", "hrnet"])
def test_cuda_decode_matches_cpu(kind: str) -> None:
    hm = _realistic(np.random.default_rng(5), 8, 17, 64, 48)
    c, s = np.full((8, 2), 300, np.float32), np.ones((8, 2), np.float32)
    cpu = decode_heatmaps(_t(hm), c, s, kind)
    gpu = decode_heatmaps(_t(hm).cuda(), c, s, kind)
    assert gpu.coords.is_cuda
    torch.testing.assert_close(gpu.maxvals.cpu(), cpu.maxvals, rtol=0, atol=0)
    torch.testing.assert_close(gpu.coords.cpu(), cpu.coords, rtol=0, atol=1e-4)
