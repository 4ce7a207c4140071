"""Flip test: flip back, swap pairs, one-column shift (the fixture check is in test_pose_decode)."""

from __future__ import annotations

import numpy as np
import torch

from stip_rt.pose.flip import flip_average, flip_back
from stip_rt.schemas import COCO17, CROWDPOSE14


def _mirror(hm: torch.Tensor, perm: np.ndarray) -> torch.Tensor:
    """What a perfectly mirror-equivariant network returns for the mirrored crop."""
    return hm.flip(3)[:, torch.as_tensor(perm)]


def test_flip_back_undoes_mirror_without_shift() -> None:
    hm = torch.rand(3, 17, 16, 12)
    perm = COCO17.flip_index()
    torch.testing.assert_close(flip_back(_mirror(hm, perm), perm, shift=False), hm)


def test_shift_moves_one_column_right_keeping_column_zero() -> None:
    hm = torch.rand(2, 14, 8, 6)
    perm = CROWDPOSE14.flip_index()
    back = flip_back(_mirror(hm, perm), perm, shift=True)
    torch.testing.assert_close(back[..., 1:], hm[..., :-1])
    torch.testing.assert_close(back[..., 0], hm[..., 0])


def test_average_is_float32_mean() -> None:
    a, b = torch.rand(1, 17, 8, 6), torch.rand(1, 17, 8, 6)
    perm = COCO17.flip_index()
    out = flip_average(a, b, perm)
    torch.testing.assert_close(out, (a + flip_back(b, perm)) * 0.5)
    assert out.dtype == torch.float32
    # left and right wrist swap places: channel 9 of the result comes from channel 10 of b
    torch.testing.assert_close(flip_back(b, perm, shift=False)[:, 9], b[:, 10].flip(2))
