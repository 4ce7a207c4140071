"""to_device: host arrays onto a device without blocking (a view on the CPU, a pinned copy on CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stip_rt.runtime.transfer import to_device


def test_on_the_cpu_a_contiguous_array_is_shared_and_a_strided_one_copied() -> None:
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    t = to_device(a, "cpu")
    assert t.dtype == torch.float64 and t.shape == (3, 4) and t.data_ptr() == a.ctypes.data
    strided = a[:, ::2]
    s = to_device(strided, torch.device("cpu"))
    assert s.is_contiguous() and s.tolist() == strided.tolist()
    assert to_device(np.zeros((2, 3), np.uint8), "cpu").dtype == torch.uint8


@pytest.mark.gpu
def test_on_cuda_the_copy_is_queued_and_equal() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (576, 768, 3), dtype=np.uint8)
    t = to_device(frame[:, ::-1], "cuda")  # a strided view too
    assert t.is_cuda and t.dtype == torch.uint8
    np.testing.assert_array_equal(t.cpu().numpy(), frame[:, ::-1])
