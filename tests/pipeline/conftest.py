"""Pipeline tests run torch on one thread: on a shared 2-core CI machine several torch thread
pools (detect, pose, other test processes) oversubscribe the cores and slow tiny models ~10×."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def vtest(data_dir: Path) -> Path:
    """OpenCV's sample video (PETS09-S2L1's frames), 768×576, 795 frames."""
    return data_dir / "opencv_samples" / "vtest.avi"


@pytest.fixture(scope="module")
def pets_gt(data_dir: Path) -> Path:
    """The MOT15 ground truth of ``vtest``."""
    return data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
