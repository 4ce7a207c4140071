"""Pipeline tests run torch on one thread: on a shared 2-core CI machine several torch thread
pools (detect, pose, other test processes) oversubscribe the cores and slow tiny models ~10×."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
