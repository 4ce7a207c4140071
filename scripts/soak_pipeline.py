"""Soak test: the pipeline on looped input for N minutes; memory growth and thread leaks.

The input video is reopened with :func:`stip_rt.io.sources.open_source` every time it ends (frame
indices keep counting up, as from a camera), and every ``--restart-s`` seconds the whole pipeline
is stopped and started again (the viewer's start/stop), so both a long run and repeated runs are
covered. Resident memory (``/proc/self/statm``) is sampled every few seconds; growth is measured
from the end of a warm-up (first 10 % of the time, at least 10 s) to the end. Goals: growth < 5 %,
no ``stip-rt-*`` or source thread left after each stop, thread count back to where it started.

Usage::

    python scripts/soak_pipeline.py --minutes 30 [--model none] [--out /tmp/soak.jsonl]

Exit code 1 when a goal is missed (the slow test runs a short version).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from stip_rt.detect.base import Detector
from stip_rt.io.sources import open_source
from stip_rt.pipeline import Pipeline
from stip_rt.pipeline_build import build_parts
from stip_rt.run_load import load_run_config
from stip_rt.types import Detections, Frame, SourceInfo

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident memory of this process in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


class LoopSource:
    """Plays ``path`` again and again until ``deadline``; indices and times keep increasing."""

    def __init__(self, path: str, deadline: float) -> None:
        first = open_source(path)
        self.info: SourceInfo = dataclasses.replace(first.info, frame_count=None)
        first.close()
        self.path, self.deadline, self.dropped = path, deadline, 0
        self._current = None
        self._closed = False
        self.next_index = 0

    def __iter__(self) -> Iterator[Frame]:
        while not self._closed and time.monotonic() < self.deadline:
            self._current = open_source(self.path)
            try:
                for f in self._current:
                    if self._closed or time.monotonic() >= self.deadline:
                        return
                    i = self.next_index
                    self.next_index += 1
                    yield Frame(i, i / self.info.fps, f.image)
            finally:
                self._current.close()

    def close(self) -> None:
        self._closed = True
        if self._current is not None:
            self._current.close()


class LoopedDetections:
    """Detections of one pass of the video, for frame indices that keep counting past its end."""

    def __init__(self, detector: Detector, frames: int) -> None:
        self.detector, self.frames, self.name = detector, frames, detector.name

    def detect(self, images: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> list[Detections]:
        return self.detector.detect(images, [i % self.frames for i in (indices or [])])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=str(DATA / "opencv_samples" / "vtest.avi"))
    ap.add_argument("--detections", default=str(DATA / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"))
    ap.add_argument("--model", default="none", help="pose model (default: box-only, to loop fast)")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--restart-s", type=float, default=60.0, help="stop and restart the pipeline this often")
    ap.add_argument("--out", help="also write a JSONL file (rotated at each restart)")
    ap.add_argument("--max-growth", type=float, default=5.0, help="allowed memory growth in percent")
    args = ap.parse_args(argv)

    total_s = args.minutes * 60
    end = time.monotonic() + total_s
    warm_until = time.monotonic() + max(10.0, 0.1 * total_s)
    config = load_run_config(source=args.video, pose=args.model, weights=args.weights, detections=args.detections)
    threads_before = threading.active_count()
    samples: list[tuple[float, float]] = []
    rss_warm: float | None = None
    frames = runs = 0
    leaks: list[str] = []
    t0 = time.monotonic()
    while time.monotonic() < end:
        parts = build_parts(config)
        parts.source.close()
        loop = LoopSource(args.video, min(end, time.monotonic() + args.restart_s))
        # the MOT detections cover one pass of the video: map looped indices back into it
        looped = LoopedDetections(parts.detector, parts.run.source.frame_count or 1)
        parts = dataclasses.replace(
            parts, source=loop, detector=looped, run=dataclasses.replace(parts.run, source=loop.info)
        )
        sinks = []
        if args.out:
            from stip_rt.io.sinks import open_sink

            sinks.append(open_sink(args.out))
        pipeline = Pipeline(config, sinks, parts=parts)
        next_sample = time.monotonic()
        for _ in pipeline:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - t0, rss_mb()))
                next_sample = now + 5.0
                if rss_warm is None and now >= warm_until:
                    rss_warm = samples[-1][1]
        frames += pipeline.stats().frames
        runs += 1
        left = [t.name for t in threading.enumerate() if t.name.startswith(("stip-rt-", "source:"))]
        if left:
            leaks.append(f"run {runs}: {left}")
    rss_end = rss_mb()
    rss_warm = rss_warm if rss_warm is not None else (samples[0][1] if samples else rss_end)
    growth = 100.0 * (rss_end - rss_warm) / rss_warm
    threads_after = threading.active_count()
    print(f"{args.minutes:g} min, {runs} runs, {frames} frames ({frames / max(time.monotonic() - t0, 1e-9):.1f} fps)")
    print(
        f"RSS after warm-up {rss_warm:.1f} MB, at the end {rss_end:.1f} MB: growth {growth:+.2f} % "
        f"(goal < {args.max_growth:g} %)"
    )
    print(f"threads before {threads_before}, after {threads_after}; leaked: {leaks or 'none'}")
    ok = growth < args.max_growth and not leaks and threads_after <= threads_before
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
