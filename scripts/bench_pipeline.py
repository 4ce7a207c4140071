"""Throughput of the threaded pipeline vs each stage alone, and live capture-to-result latency.

On ``vtest.avi`` (PETS09-S2L1, 768×576, 7 fps nominal), with the same parts:

1. each stage alone, sequentially over the same frames (decode; detect; pose; track; sinks);
2. all stages in one plain loop (what a simple script does);
3. the threaded pipeline;

and prints ``pipeline / slowest stage`` (goal ≥ 0.9: the threads overlap, so the pipeline runs at
the speed of its slowest stage) and ``pipeline / plain loop``. Then a live run: the frames are
replayed at a fixed rate (default: the video's 7 fps) by a paced source that keeps only the newest
frame, and capture-to-result latency is compared with ``one frame interval + inference time``.

Default models: boxes from the MOT ground truth of the sequence (a file "detector", so the figures
do not depend on detector weights) and a random-weight pose model; pass ``--detector rtmdet-tiny
--detector-weights random`` to include a real detector network.

Usage::

    python scripts/bench_pipeline.py [--frames 60] [--model stip-w32-coco-256x192] [--live-fps 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from stip_rt.pipeline import Pipeline, PipelineParts
from stip_rt.pipeline_build import build_parts, describe_run
from stip_rt.pipeline_stats import PipelineStats, format_stats
from stip_rt.run_config import RunConfig
from stip_rt.run_load import load_run_config
from stip_rt.types import Frame, Poses, SourceInfo

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class _ListSource:
    """Frames already decoded (so that a stage-alone run measures only that stage)."""

    def __init__(self, frames: list[Frame], info: SourceInfo) -> None:
        self.frames, self.info, self.dropped = frames, info, 0

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def close(self) -> None:
        pass


class PacedSource:
    """A live stand-in: a capture thread produces the frames at ``fps`` in real time; the consumer
    gets only the newest one (older ones are dropped and counted), like a camera."""

    def __init__(self, frames: list[Frame], info: SourceInfo, fps: float) -> None:
        self.info = dataclasses.replace(info, fps=fps, live=True, frame_count=None)
        self.frames, self.fps, self.dropped = frames, fps, 0
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._done = False
        self._stop = threading.Event()
        self.captured: dict[int, float] = {}  # frame index → wall time of capture

    def _capture(self) -> None:
        t0 = time.perf_counter()
        for i, f in enumerate(self.frames):
            delay = t0 + i / self.fps - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                break
            with self._cond:
                if self._latest is not None:
                    self.dropped += 1
                self._latest = Frame(i, i / self.fps, f.image)
                self.captured[i] = time.perf_counter()
                self._cond.notify()
        with self._cond:
            self._done = True
            self._cond.notify()

    def __iter__(self) -> Iterator[Frame]:
        t = threading.Thread(target=self._capture, name="paced-capture", daemon=True)
        t.start()
        try:
            while True:
                with self._cond:
                    while self._latest is None and not self._done:
                        self._cond.wait()
                    if self._latest is None:
                        return
                    frame, self._latest = self._latest, None
                yield frame
        finally:
            self._stop.set()
            t.join()

    def close(self) -> None:
        self._stop.set()


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def stage_alone(parts: PipelineParts, frames: list[Frame], det_every: int) -> dict[str, float]:
    """Frames per second of each stage run alone over ``frames`` (sequential, same objects)."""
    rates: dict[str, float] = {}
    t = time.perf_counter()
    dets = [parts.detector.detect([f.image], [f.index])[0] for f in frames[::det_every]]
    rates["detect"] = _rate(len(dets), time.perf_counter() - t) * det_every
    dets = [dets[i // det_every] for i in range(len(frames))]
    t = time.perf_counter()
    poses = [parts.estimator(f.image, d) if parts.estimator else Poses.from_detections(d) for f, d in zip(frames, dets)]
    rates["pose"] = _rate(len(frames), time.perf_counter() - t)
    t = time.perf_counter()
    for f, p in zip(frames, poses):
        parts.tracker.update(p, f.index)
    rates["track"] = _rate(len(frames), time.perf_counter() - t)
    return rates


def warm_up(parts: PipelineParts, frame: Frame) -> None:
    """First inference of a fresh session is slow: run detector and pose once (the tracker untouched)."""
    dets = parts.detector.detect([frame.image], [frame.index])[0]
    if parts.estimator is not None:
        parts.estimator(frame.image, dets)


def throughput(
    config: RunConfig, frames: list[Frame], decode_fps: float, det_every: int
) -> tuple[dict[str, float], float, PipelineStats]:
    """Each stage alone, a plain loop, and the threaded pipeline over the same frames."""
    # 1. each stage alone
    parts = build_parts(config)
    parts.source.close()
    warm_up(parts, frames[0])
    rates = {"decode": decode_fps, **stage_alone(parts, frames, det_every)}

    # 2. plain loop: all stages one after the other, no threads
    parts = build_parts(config)
    parts.source.close()
    warm_up(parts, frames[0])
    t = time.perf_counter()
    last = None
    for i, f in enumerate(frames):
        if i % det_every == 0 or last is None:
            d = parts.detector.detect([f.image], [f.index])[0]
        else:
            assert parts.boxes_from_tracks is not None
            d = parts.boxes_from_tracks(last)
        p = parts.estimator(f.image, d) if parts.estimator else Poses.from_detections(d)
        last = parts.tracker.update(p, f.index)
    loop_fps = _rate(len(frames), time.perf_counter() - t)

    # 3. the threaded pipeline, from the file (decode included, as in the stage-alone figures)
    parts = build_parts(config)
    warm_up(parts, frames[0])
    stats = Pipeline(config, parts=parts).run()
    return rates, loop_fps, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=str(DATA / "opencv_samples" / "vtest.avi"))
    ap.add_argument("--detections", default=str(DATA / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"))
    ap.add_argument("--detector", default=None, help="use a detector network instead of --detections")
    ap.add_argument("--detector-weights", default="random")
    ap.add_argument("--model", default="stip-w32-coco-256x192", help="pose model ('none' for box-only)")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--det-every", type=int, default=1)
    ap.add_argument("--live-fps", type=float, default=7.0, help="replay rate of the live run (0: skip it)")
    ap.add_argument("--live-only", action="store_true", help="skip the throughput part")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = load_run_config(
        source=args.video,
        pose=args.model,
        weights=args.weights,
        detector=args.detector or "rtmdet-tiny",
        detector_weights=args.detector_weights,
        detections=None if args.detector else args.detections,
        det_every=args.det_every,
        max_frames=args.frames,
        smooth=False,
        # random weights give person scores near 0: let every person through so tracking does real work
        track={"high_score": 0, "low_score": 0, "new_track_score": 0} if args.weights == "random" else None,
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    # 0. decode alone (and keep the frames for the stage-alone runs)
    parts = build_parts(config)
    print(describe_run(parts.run))
    t = time.perf_counter()
    frames = list(parts.source)
    decode_fps = _rate(len(frames), time.perf_counter() - t)
    parts.source.close()

    if args.live_only:
        rates: dict[str, float] = {}
    else:
        rates, loop_fps, stats = throughput(config, frames, decode_fps, args.det_every)
        slowest = min(rates, key=lambda k: rates[k])
        print("\nstage alone (frames/s): " + ", ".join(f"{k} {v:.2f}" for k, v in rates.items()))
        print(f"plain loop: {loop_fps:.2f} fps;  threaded pipeline: {stats.fps:.2f} fps ({stats.frames} frames)")
        print(format_stats(stats))
        print(f"RATIO pipeline / slowest stage ({slowest}) = {stats.fps / rates[slowest]:.3f}  (goal >= 0.9)")
        print(f"RATIO pipeline / plain loop = {stats.fps / loop_fps:.3f}")

    if args.live_fps > 0:
        parts = build_parts(dataclasses.replace(config, source=dataclasses.replace(config.source, max_frames=None)))
        parts.source.close()
        warm_up(parts, frames[0])
        paced = PacedSource(frames, parts.source.info, args.live_fps)
        live = dataclasses.replace(parts, source=paced, run=dataclasses.replace(parts.run, source=paced.info))
        # true capture-to-result latency: from the capture thread's clock to the result callback
        latencies: list[float] = []
        pipe = Pipeline(
            config, parts=live, on_result=lambda r: latencies.append(time.perf_counter() - paced.captured[r.index])
        )
        lstats = pipe.run()
        infer_ms = sum(lstats.stage_ms.get(k, 0.0) for k in ("detect", "pose", "track"))
        bound = 1e3 / args.live_fps + infer_ms
        lat = {"p50": 1e3 * float(np.percentile(latencies, 50)), "p95": 1e3 * float(np.percentile(latencies, 95))}
        print(f"\nlive replay at {args.live_fps:g} fps: {lstats.frames} results, {lstats.dropped} dropped")
        print(format_stats(lstats, live=True))
        print(
            f"capture-to-result latency p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms; bound = frame interval "
            f"{1e3 / args.live_fps:.0f} ms + inference {infer_ms:.0f} ms = {bound:.0f} ms"
        )
        print(f"RATIO latency p95 / bound = {lat['p95'] / bound:.3f}  (goal <= 1)")


if __name__ == "__main__":
    main()
