"""Synthetic runs and results for the io tests (imported by them as ``io_fakes``)."""

from __future__ import annotations

import numpy as np

from stip_rt.schemas import COCO17
from stip_rt.types import FrameResult, RunInfo, SourceInfo, Tracks


def make_tracks(frame: int, n: int, *, keypoints: bool = True, rng: np.random.Generator | None = None) -> Tracks:
    """``n`` people with ids 1..n moving right by 2 px per frame; keypoints inside their boxes."""
    rng = rng or np.random.default_rng(frame)
    x = 20.0 + 90.0 * np.arange(n) + 2.0 * frame
    boxes = np.stack([x, np.full(n, 30.0), x + 60.0, np.full(n, 200.0)], 1).astype(np.float32)
    kps = None
    if keypoints:
        k = COCO17.num_keypoints
        xy = boxes[:, None, :2] + rng.uniform(0, 1, (n, k, 2)) * (boxes[:, None, 2:] - boxes[:, None, :2])
        kps = np.concatenate([xy, rng.uniform(0.0, 1.0, (n, k, 1))], -1).astype(np.float32)
    return Tracks(
        ids=np.arange(1, n + 1, dtype=np.int64),
        boxes=boxes,
        box_scores=np.linspace(0.9, 0.5, n, dtype=np.float32) if n else np.zeros(0, np.float32),
        keypoints=kps,
        scores=np.linspace(0.8, 0.4, n, dtype=np.float32) if n else np.zeros(0, np.float32),
        det_index=np.arange(n, dtype=np.int64),
    )


def make_results(count: int, *, keypoints: bool = True, image: bool = False, size=(320, 240)) -> list[FrameResult]:
    """``count`` frames at 10 fps with 0, 1, 2, 3, 0, 1 ... people."""
    w, h = size
    out = []
    for i in range(count):
        img = np.full((h, w, 3), 40 + 10 * (i % 10), np.uint8) if image else None
        out.append(FrameResult(i, i / 10.0, make_tracks(i, i % 4, keypoints=keypoints), {}, img))
    return out


def make_run(*, keypoints: bool = True, size=(320, 240), fps: float = 10.0, count: int | None = 6) -> RunInfo:
    return RunInfo(
        source=SourceInfo("clip.mp4", size[0], size[1], fps, count, False),
        schema=COCO17 if keypoints else None,
        pose_model="stip-w32-coco-256x192",
        detector="rtmdet-tiny",
        backend="torch cpu fp32",
    )
