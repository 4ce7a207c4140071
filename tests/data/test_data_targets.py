"""Gaussian targets: official fixture (also in scripts/check_decode.py) and properties."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stip_rt.data.targets import generate_target


@pytest.mark.parametrize("tag,size,sigma", [("stip", (96, 128), 3), ("hrnet", (48, 64), 2)])
def test_equals_official_generate_target(fixtures_dir: Path, tag: str, size: tuple[int, int], sigma: int) -> None:
    z = np.load(fixtures_dir / "official_decode" / "targets.npz")
    target, weight = generate_target(z["joints"], z["joints_vis"], (192, 256), size, sigma)
    np.testing.assert_array_equal(target, z[f"target_{tag}"])
    np.testing.assert_array_equal(weight, z[f"target_weight_{tag}"])


def test_peak_window_visibility_and_outside() -> None:
    joints = np.array([[[40.0, 60.0, 0], [40.0, 60.0, 0], [-100.0, 60.0, 0], [-7.0, 60.0, 0]]])
    vis = np.array([[[1, 1, 0], [0, 0, 0], [1, 1, 0], [1, 1, 0]]], np.float64)
    t, w = generate_target(joints, vis, (192, 256), (96, 128), 3)
    assert t.shape == (1, 4, 128, 96) and w.shape == (1, 4, 1)
    assert t[0, 0, 30, 20] == 1.0 and t[0, 0].max() == 1.0  # centre int(x/2 + 0.5)
    assert np.count_nonzero(t[0, 0]) == 19 * 19  # (6σ+1)² window
    assert w[0, 1, 0] == 0 and not t[0, 1].any()  # invisible
    assert w[0, 2, 0] == 0 and not t[0, 2].any()  # window misses the map
    # x/2 + 0.5 = -3 → centre -3 (truncation), window columns -12..6 → 7 columns drawn, weight kept
    assert w[0, 3, 0] == 1 and np.count_nonzero(t[0, 3].any(axis=0)) == 7
