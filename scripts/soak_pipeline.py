"""Soak test: the pipeline on looped input for N minutes; memory growth and thread leaks.

By default it runs what a long user run runs: the pose network (``--model``, random weights,
``--backend`` auto = ONNX Runtime on the CPU) on the boxes of the MOT ground truth, and writes an
annotated video (``--video``, a temp file unless given) and, with ``--out``, a JSONL file. The
input video is reopened with :func:`stip_rt.io.sources.open_source` every time it ends (frame
indices keep counting up, as from a camera), and every ``--restart-s`` seconds the whole pipeline
is stopped and started again (the viewer's start/stop; the outputs are rewritten), so both a long
run and repeated runs are covered. The stage objects (models, backend session) are built once and
reused by every restart, as the viewer does.

Resident memory (``/proc/self/statm``) and the thread count are sampled every ``--sample-s``
seconds (``--samples FILE`` writes them as CSV); growth is measured after a warm-up
(``--warm-up-s``, default the first 10 % of the time, at least 10 s) as the highest sample of the
second half of the rest over the highest of its first half (the allocator's saw-tooth makes two
single samples unreliable), and also as MB per hour from a least-squares line through the samples
after warm-up. Goals: growth < ``--max-growth`` %, no ``stip-rt-*`` or source thread left after
each stop, thread count back to where it started, open file descriptors after the last run no more than after the first.
``--tracemalloc N`` also prints the N Python allocation sites that grew most
after warm-up (Python-level leaks; native memory such as ONNX Runtime's does not show there).

Usage::

    python scripts/soak_pipeline.py                       # 30 min, pose network + annotated video
    python scripts/soak_pipeline.py --minutes 4 --ort-mem-pattern   # ONNX Runtime's default (grows)
    python scripts/soak_pipeline.py --model none --no-video --minutes 0.5  # box-only, fast

Exit code 1 when a goal is missed (the slow test runs a short box-only version).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from stip_rt.detect.base import Detector
from stip_rt.io.sinks import open_sink
from stip_rt.io.sources import open_source
from stip_rt.pipeline import Pipeline
from stip_rt.pipeline_build import build_parts
from stip_rt.run_load import load_run_config
from stip_rt.types import Detections, Frame, SourceInfo

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """Resident memory of this process in MB (2**20 bytes)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


def os_threads() -> int:
    """Threads of this process as the OS counts them (Python's and native pools: ONNX Runtime, torch, FFmpeg)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))


def open_fds() -> int:
    """Open file descriptors of this process (a leaked file, socket or pipe per run shows here)."""
    return len(os.listdir("/proc/self/fd"))


class LoopSource:
    """Plays ``path`` again and again until ``deadline``; indices and times keep increasing."""

    def __init__(self, path: str, deadline: float, start_index: int = 0) -> None:
        first = open_source(path)
        self.info: SourceInfo = dataclasses.replace(first.info, frame_count=None)
        first.close()
        self.path, self.deadline, self.dropped = path, deadline, 0
        self._current = None
        self._closed = False
        self.next_index = start_index

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


def _ort_mem_pattern(parts: object, on: bool) -> None:
    """Rebuild the pose network's ONNX Runtime session with the memory pattern on (A/B of the fix)."""
    backend = getattr(getattr(parts, "estimator", None), "backend", None)
    if backend is None or getattr(backend, "name", "") != "onnxruntime":
        raise SystemExit("--ort-mem-pattern needs the pose network on the onnxruntime backend")
    from stip_rt.runtime.onnxruntime_backend import OnnxRuntimeBackend

    config = dataclasses.replace(backend.config, mem_pattern=on)
    fresh = OnnxRuntimeBackend(backend.path, backend.device, backend.precision, config)
    parts.estimator.backend = fresh  # type: ignore[attr-defined]


def _slope_mb_per_h(samples: list[tuple[float, float, int]], after: float) -> float:
    pts = [(t, r) for t, r, _ in samples if t >= after]
    if len(pts) < 3:
        return float("nan")
    t, r = np.array(pts).T
    return float(np.polyfit(t / 3600.0, r, 1)[0])


def _growth(
    samples: list[tuple[float, float, int]], after: float, rss_warm: float, rss_end: float
) -> tuple[float, str]:
    """Memory growth in percent after the warm-up, and how it was measured.

    The resident size saw-tooths by several percent while the pipeline runs (the allocator's arenas
    fill and are trimmed), so two single samples (after the warm-up, at the end) can land on a trough
    and a crest: a 1-minute box-only run read +9 % that way with its peaks flat. With 4 samples or
    more after the warm-up, the growth is the peak of the second half of them over the peak of the
    first half (a leak raises the crests); else the two samples.
    """
    post = [r for t, r, _ in samples if t >= after]
    if len(post) < 4:
        return 100.0 * (rss_end - rss_warm) / rss_warm, "end over warm-up"
    half = len(post) // 2
    first, second = max(post[:half]), max(post[half:])
    text = f"peak {first:.1f} MB in the first half after warm-up, {second:.1f} MB in the second"
    return 100.0 * (second - first) / first, text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video-in", default=str(DATA / "opencv_samples" / "vtest.avi"), help="looped input")
    ap.add_argument("--detections", default=str(DATA / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"))
    ap.add_argument("--model", default="hrnet-w32-coco-256x192", help="pose model ('none': box-only)")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--backend", default="auto", help="pose backend (auto: ONNX Runtime on the CPU)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="run config override")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--restart-s", type=float, default=60.0, help="stop and restart the pipeline this often")
    ap.add_argument("--video", help="annotated video written by every run (default: a temp file)")
    ap.add_argument("--no-video", action="store_true", help="no annotated video")
    ap.add_argument("--out", help="also write a JSONL file (rewritten at each restart)")
    ap.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--samples", help="write the (seconds, RSS MB, OS threads) samples as CSV")
    ap.add_argument("--ort-mem-pattern", action="store_true", help="ONNX Runtime's memory pattern on (old default)")
    ap.add_argument("--tracemalloc", type=int, default=0, metavar="N", help="print the N Python sites that grew most")
    ap.add_argument("--max-growth", type=float, default=5.0, help="allowed memory growth in percent")
    ap.add_argument("--warm-up-s", type=float, help="seconds before growth is measured (default 10 %% of the run, 10+)")
    ap.add_argument("--no-trim", action="store_true", help="glibc as it is, without stip-rt's trimming (compare)")
    args = ap.parse_args(argv)
    if not args.no_trim:
        from stip_rt.malloc import start_trimming

        print(f"glibc's free memory trimmed every few seconds (as `stip-rt` does): {start_trimming()}")

    total_s = args.minutes * 60
    t0 = time.monotonic()
    end = t0 + total_s
    warm_s = args.warm_up_s if args.warm_up_s is not None else max(10.0, 0.1 * total_s)
    if not 0 <= warm_s < total_s:
        ap.error(f"--warm-up-s {warm_s:g}: give 0 or more, less than the run ({total_s:g} s)")
    tmp = tempfile.TemporaryDirectory(prefix="soak-")
    video = None if args.no_video else (args.video or str(Path(tmp.name) / "soak.mp4"))
    config = load_run_config(
        overrides=args.set,
        source=args.video_in,
        pose=args.model,
        weights=args.weights,
        detections=args.detections,
        backend=args.backend,
    )
    threads_before, os_before, fds_before = threading.active_count(), os_threads(), open_fds()
    parts = build_parts(config)
    parts.source.close()
    if args.ort_mem_pattern:
        _ort_mem_pattern(parts, True)
    # the MOT detections cover one pass of the video: map looped indices back into it
    looped = LoopedDetections(parts.detector, parts.run.source.frame_count or 1)
    print(f"model {parts.run.pose_model} | backend {parts.run.backend} | video {video or 'none'}", flush=True)
    if args.tracemalloc:
        tracemalloc.start(8)
    samples: list[tuple[float, float, int]] = []
    rss_warm: float | None = None
    snap_warm = None
    frames = runs = 0
    leaks: list[str] = []
    fds_per_run: list[int] = []
    next_sample = t0
    while time.monotonic() < end:
        loop = LoopSource(args.video_in, min(end, time.monotonic() + args.restart_s), frames)
        run_parts = dataclasses.replace(
            parts, source=loop, detector=looped, run=dataclasses.replace(parts.run, source=loop.info)
        )
        sinks = [open_sink(p) for p in (args.out, video) if p]
        pipeline = Pipeline(config, sinks, parts=run_parts)
        for _ in pipeline:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - t0, rss_mb(), os_threads()))
                next_sample = now + args.sample_s
                if rss_warm is None and now - t0 >= warm_s:
                    rss_warm = samples[-1][1]
                    snap_warm = tracemalloc.take_snapshot() if args.tracemalloc else None
        frames += pipeline.stats().frames
        runs += 1
        fds_per_run.append(open_fds())
        left = [t.name for t in threading.enumerate() if t.name.startswith(("stip-rt-", "source:"))]
        if left:
            leaks.append(f"run {runs}: {left}")
    rss_end = rss_mb()
    samples.append((time.monotonic() - t0, rss_end, os_threads()))
    rss_warm = rss_warm if rss_warm is not None else samples[0][1]
    growth, growth_text = _growth(samples, warm_s, rss_warm, rss_end)
    threads_after = threading.active_count()
    elapsed = time.monotonic() - t0
    os_after = os_threads()
    warm_threads = [n for t, _, n in samples if t >= warm_s] or [os_after]
    print(f"{elapsed / 60:.1f} min, {runs} runs, {frames} frames ({frames / max(elapsed, 1e-9):.2f} fps)")
    print(
        f"RSS after warm-up ({warm_s:.0f} s) {rss_warm:.1f} MB, at the end {rss_end:.1f} MB; {growth_text}: "
        f"growth {growth:+.2f} % "
        f"(goal < {args.max_growth:g} %); trend after warm-up {_slope_mb_per_h(samples, warm_s):+.1f} MB/h; "
        f"min/max after warm-up {min(r for t, r, _ in samples if t >= warm_s):.1f}/"
        f"{max(r for t, r, _ in samples if t >= warm_s):.1f} MB"
    )
    print(
        f"Python threads before {threads_before}, after {threads_after}; leaked: {leaks or 'none'}; OS threads "
        f"before {os_before}, while running after warm-up {min(warm_threads)}-{max(warm_threads)}, after {os_after}"
    )
    print(f"open files before {fds_before}, after each run: min {min(fds_per_run)} max {max(fds_per_run)}, "
          f"after the last {fds_per_run[-1]}")
    if args.samples:
        with open(args.samples, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["seconds", "rss_mb", "threads"])
            w.writerows((f"{t:.1f}", f"{r:.1f}", n) for t, r, n in samples)
    if snap_warm is not None:
        stats = tracemalloc.take_snapshot().compare_to(snap_warm, "traceback")
        for s in stats[: args.tracemalloc]:
            print(f"  {s.size_diff / 2**20:+.2f} MB in {s.count_diff:+d} blocks: {s.traceback.format()[-1].strip()}")
    tmp.cleanup()
    fd_leak = fds_per_run[-1] > fds_per_run[0]  # the first run opens what stays open (models, logs)
    ok = growth < args.max_growth and not leaks and threads_after <= threads_before and not fd_leak
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
