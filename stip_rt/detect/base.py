"""The one interface every person detector implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..types import Detections


@runtime_checkable
class Detector(Protocol):
    """Finds people in frames.

    Attributes:
        name: detector id for run summaries and file headers (e.g. ``rtmdet-tiny``, ``file:dets.json``).
    """

    name: str

    def detect(self, frames: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> list[Detections]:
        """Detect people, batched over frames.

        Args:
            frames: images (H, W, 3) uint8 BGR.
            indices: 0-based frame numbers of ``frames`` in their source (detections read from
                files use them; networks ignore them).

        Returns:
            One :class:`Detections` per frame, person class only, boxes in frame pixels.
        """
        ...
