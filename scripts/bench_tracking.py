#!/usr/bin/env python
"""Frames per second of ``Tracker.update`` with 5, 20 and 100 people on one CPU core.

Synthetic scene: people walk at constant speed with jittered boxes and COCO-17 keypoints (score 0.9),
10 % of people missed per frame. Each setting is timed over 300 frames, best of 5 runs, in CPU time
of this process (``time.process_time``, BLAS limited to one thread), so that other jobs sharing the
machine inflate the figures as little as possible. Also compares, in the same run, the stacked Kalman
steps the tracker uses (on the state arrays of its track table) with filterpy's per-track
``predict``/``update`` (a ratio).

Usage: python scripts/bench_tracking.py [--frames 300] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from stip_rt.schemas import COCO17  # noqa: E402
from stip_rt.track.config import KalmanConfig, OneEuroConfig, TrackerConfig  # noqa: E402
from stip_rt.track.kalman import (  # noqa: E402
    initiate,
    predict,
    reference_filter,
    reference_predict,
    reference_update,
    update,
)
from stip_rt.track.tracker import Tracker  # noqa: E402
from stip_rt.types import Poses  # noqa: E402


def scene(n: int, frames: int, seed: int = 0) -> list[Poses]:
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, [3000, 2000], (n, 2))
    vel = rng.normal(0, 3, (n, 2))
    size = rng.uniform([30, 80], [80, 200], (n, 2))
    layout = rng.uniform(0, 1, (n, 17, 2))
    out = []
    for f in range(frames):
        keep = rng.random(n) > 0.1
        c = (start + vel * f)[keep] + rng.normal(0, 1, (keep.sum(), 2))
        s = size[keep]
        boxes = np.concatenate([c, c + s], 1).astype(np.float32)
        kp = np.concatenate([c[:, None] + layout[keep] * s[:, None], np.full((keep.sum(), 17, 1), 0.9)], 2)
        sc = rng.uniform(0.3, 1.0, keep.sum()).astype(np.float32)
        out.append(Poses(boxes, sc, kp.astype(np.float32), sc))
    return out


def fps_of(cfg: TrackerConfig, frames: list[Poses], repeats: int, box_only: bool) -> float:
    if box_only:
        frames = [Poses(p.boxes, p.box_scores, None, p.scores) for p in frames]
    best = float("inf")
    for _ in range(repeats):
        tr = Tracker(cfg, fps=30.0, schema=COCO17)
        t0 = time.process_time()
        for i, p in enumerate(frames):
            tr.update(p, i)
        best = min(best, time.process_time() - t0)
    return len(frames) / best


def kalman_ratio(n: int, steps: int = 200, repeats: int = 5) -> tuple[float, float]:
    """µs per frame for predict + update of n tracks: filterpy per track vs the stacked steps."""
    cfg = KalmanConfig()
    boxes = np.array([[60.0 * i, 0, 60.0 * i + 50, 120] for i in range(n)])
    per_track = stacked = float("inf")
    for _ in range(repeats):
        x, p = initiate(boxes, cfg)
        filters = [reference_filter(xi, pi) for xi, pi in zip(x, p)]
        t0 = time.process_time()
        for _ in range(steps):
            for kf, box in zip(filters, boxes):
                reference_predict(kf, cfg)
                reference_update(kf, box, cfg)
        per_track = min(per_track, (time.process_time() - t0) / steps)
        t0 = time.process_time()
        for _ in range(steps):
            x, p = predict(x, p, cfg)
            x, p = update(x, p, boxes, cfg)
        stacked = min(stacked, (time.process_time() - t0) / steps)
    return per_track * 1e6, stacked * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"python {platform.python_version()}, numpy {np.__version__}, one core, {platform.processor() or '?'}")
    configs = {
        "default (IoU+OKS, One-Euro)": (TrackerConfig(), False),
        "IoU+OKS, no smoothing": (TrackerConfig(smoothing=OneEuroConfig(enabled=False)), False),
        "box-only input": (TrackerConfig(), True),
    }
    print(f"{'people':>6}  " + "".join(f"{k:>30}" for k in configs) + "   (frames/s of Tracker.update)")
    for n in (5, 20, 100):
        frames = scene(n, args.frames)
        row = [fps_of(cfg, frames, args.repeats, box_only) for cfg, box_only in configs.values()]
        print(f"{n:>6}  " + "".join(f"{v:>30,.0f}" for v in row))
    for n in (20, 100):
        per_track, stacked = kalman_ratio(n)
        print(
            f"Kalman predict+update, {n} tracks: filterpy per track {per_track:,.0f} µs, stacked {stacked:,.0f} µs "
            f"({per_track / stacked:.1f}x)"
        )


if __name__ == "__main__":
    main()
