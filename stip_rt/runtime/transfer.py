"""Host arrays onto a device without blocking the host: the one upload every GPU stage uses."""

from __future__ import annotations

import numpy as np
import torch


def to_device(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """Host array → tensor on ``device`` without blocking the host on CUDA.

    On CUDA the array is staged in pinned (page-locked) memory and copied with
    ``non_blocking=True``: the copy is queued on the current stream, so kernels queued after it
    see the data and nothing waits for the GPU. torch's caching host allocator keeps the pinned
    block alive until the copy has finished.

    Args:
        array: any numpy array (not modified; the tensor does not alias it on CUDA).
        device: target device.

    Returns:
        Tensor with the array's dtype and shape on ``device`` (zero-copy view of a contiguous
        array on the CPU).
    """
    t = torch.from_numpy(np.ascontiguousarray(array))
    dev = torch.device(device)
    if dev.type == "cuda":
        return t.pin_memory().to(dev, non_blocking=True)
    return t.to(dev)
