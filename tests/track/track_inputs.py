"""Tracker inputs built in a line: people as :class:`Poses`, boxes by their left edge."""

from __future__ import annotations

import numpy as np

from stip_rt.types import Poses


def poses(boxes, scores=None, kpts=None) -> Poses:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    s = np.full(len(b), 0.9, np.float32) if scores is None else np.asarray(scores, np.float32)
    return Poses(b, s, None if kpts is None else np.asarray(kpts, np.float32), s)


def box(x, y=100.0, w=50.0, h=120.0):
    return [x, y, x + w, y + h]
