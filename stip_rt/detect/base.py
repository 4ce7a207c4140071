"""The one interface every person detector implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import DataError
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


def check_frames(frames: Sequence[np.ndarray], name: str) -> None:
    """Refuse, before any state changes, what :meth:`Detector.detect` cannot take: one image instead of
    a sequence of them (iterating it would give its rows), or a frame that is not (H, W, 3) with H, W > 0.

    Args:
        frames: what the caller passed as ``frames``.
        name: the detector's name, for the message.

    Raises:
        DataError: naming the detector and the shape it got.
    """
    if isinstance(frames, np.ndarray) and frames.ndim != 4:
        raise DataError(
            f"detector {name}: detect() takes a sequence of images; got one {frames.shape} array (pass [image])"
        )
    for i, frame in enumerate(frames):
        shape = getattr(frame, "shape", None)
        if shape is None or len(shape) != 3 or shape[2] != 3 or 0 in shape[:2]:
            got = type(frame).__name__ if shape is None else f"shape {tuple(shape)}"
            raise DataError(f"detector {name}: detect() frames[{i}] must be an (H, W, 3) image, H, W > 0; got {got}")
