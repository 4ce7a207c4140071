"""End-to-end throughput of the threaded pipeline on ``vtest.avi``, and how well its stages overlap.

For each ``--batch-frames`` value the whole pipeline runs over the same frames of the video
(decode included) and prints frames/s, the mean milliseconds per frame of every stage, and

    overlap = frames/s × slowest-stage seconds per frame

which is ≈ 1 when the stages overlap perfectly (the pipeline runs at the speed of its slowest
stage) and 1 / (number of equally slow stages) when they run one after another. Per-stage times
are busy times measured inside the pipeline; on a machine with fewer cores than busy stages they
are inflated by contention, which pushes the ratio towards 1: compare with the plain loop.
``pose frames/call`` shows how many frames shared one pose-network call (cross-frame batching,
``RunConfig.pose.batch_frames``; 1.00 means the pipeline did not batch across frames).

Then a plain loop (every stage one after the other on one thread, one frame at a time) over the
same frames as the sequential reference, and optionally a live replay (``--live-fps``): frames
replayed in real time by a capture thread that keeps only the newest, with capture-to-result
latency against ``one frame interval + inference time``.

Detections: the MOT ground truth of the sequence (PETS09-S2L1, default: the detect stage costs
~0) or a detector network on every frame (``--detector rtmdet-tiny``). With
``--detector-weights random`` the network's boxes are meaningless (100 empty or non-finite boxes
per frame that the tracker drops, and a pose stage working on junk): the network still runs on
every frame (its whole ``detect()``: letterbox, upload, network, top-k/NMS, host copy) for its
cost, but the pose stage and tracker get the ground-truth boxes of that frame (``--detections``),
in the pipeline, the plain loop and the live replay alike. Before the pipeline runs, the detector
alone is timed per part (preprocess, network, postprocess) on ~30 frames.

Usage::

    python scripts/bench_pipeline.py [--device cpu|cuda] [--backend torch] [--frames 60]
        [--model stip-w32-coco-256x192|none|FILE.json] [--detector rtmdet-tiny] [--batch-frames 1,4]
        [--stage-streams]

``--stage-streams`` runs the last ``--batch-frames`` setting once more with ``runtime.stage_streams``
(on CUDA the detect and pose threads queue their work on a stream each) and prints
``RATIO fps stage_streams / shared stream``.

Last line: ``bench_pipeline: fps=<x> overlap=<x> batch_frames=<n> ...`` for the last setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stip_rt.detect.base import Detector
from stip_rt.detect.config import IntervalConfig
from stip_rt.detect.files import read_detections_file
from stip_rt.detect.interval import every_n
from stip_rt.io.source_config import SourceConfig
from stip_rt.pipeline import Pipeline
from stip_rt.pipeline_build import build_parts, describe_run
from stip_rt.pipeline_stats import PipelineStats, format_stats
from stip_rt.run_config import DetectConfig, OutputsConfig, PoseConfig, RunConfig, RuntimeConfig
from stip_rt.runtime.profile import synchronize
from stip_rt.track.config import OneEuroConfig, TrackerConfig
from stip_rt.types import Detections, Frame, Poses, SourceInfo
from stip_rt.weights import checkpoint_arg

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# ---------------------------------------------------------------- configuration (RunConfig, or the older flat one)


def make_config(
    args: argparse.Namespace, batch_frames: int, max_frames: int | None, stage_streams: bool = False
) -> RunConfig:
    """The run's settings as a :class:`RunConfig`."""
    random_pose = args.weights == "random"
    return RunConfig(
        source=SourceConfig(uri=args.video, max_frames=max_frames),
        detect=DetectConfig(
            model=args.detector or "rtmdet-tiny",
            weights=args.detector_weights,
            detections=None if args.detector else args.detections,
            interval=IntervalConfig(every=args.det_every),
        ),
        pose=PoseConfig(model=args.model, weights=args.weights, batch_frames=batch_frames),
        runtime=RuntimeConfig(
            backend=args.backend, device=args.device, precision=args.precision, stage_streams=stage_streams
        ),
        # random weights give person scores near 0: let every person through so tracking does real work
        track=TrackerConfig(
            high_score=0.0 if random_pose else 0.5,
            low_score=0.0 if random_pose else 0.1,
            new_track_score=0.0 if random_pose else 0.6,
            smoothing=OneEuroConfig(enabled=False),
        ),
        outputs=OutputsConfig(),
    )


# ---------------------------------------------------------------- helpers


class CountingEstimator:
    """Wraps the pose estimator and counts frames per call (cross-frame batching shows as > 1)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.backend = getattr(inner, "backend", None)  # the pipeline gives a GPU stage its stream by it
        self.calls = 0
        self.frames = 0

    def __call__(self, image: np.ndarray, detections: Detections) -> Poses:
        self.calls += 1
        self.frames += 1
        return self.inner(image, detections)

    def estimate_frames(self, frames: Sequence[np.ndarray], detections: Sequence[Detections]) -> list[Poses]:
        self.calls += 1
        self.frames += len(frames)
        batched = getattr(self.inner, "estimate_frames", None)
        if batched is not None:
            return list(batched(frames, detections))
        return [self.inner(f, d) for f, d in zip(frames, detections)]

    @property
    def frames_per_call(self) -> float:
        return self.frames / self.calls if self.calls else 0.0


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


class CostOnlyDetector:
    """Runs ``network`` on every frame for its cost, but answers with the boxes of ``boxes``.

    For a detector with random weights: its boxes are meaningless, its time is real. The
    network's full ``detect()`` runs (its result is dropped), then ``boxes`` (e.g. the ground
    truth of the sequence) gives the detections the pose stage and tracker get.

    Args:
        network: the detector whose cost is measured; its name is this detector's name.
        boxes: the detector whose detections are handed on (frame indices are passed to it).
    """

    def __init__(self, network: Detector, boxes: Detector) -> None:
        self.network = network
        self.boxes = boxes
        self.name = network.name
        self.backend = getattr(network, "backend", None)  # the pipeline gives a GPU stage its stream by it
        self.network_calls = 0

    def detect(self, frames: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> list[Detections]:
        """The network on ``frames`` (result dropped), then the detections of ``boxes`` for them."""
        self.network.detect(frames, indices)
        self.network_calls += 1
        return self.boxes.detect(frames, indices)


def random_detector(args: argparse.Namespace) -> bool:
    """True when a detector network runs with random weights (its boxes are meaningless)."""
    return bool(args.detector) and checkpoint_arg(args.detector_weights)[0]


def with_gt_boxes(parts: Any, args: argparse.Namespace) -> Any:
    """``parts`` with its detector wrapped in a :class:`CostOnlyDetector` over ``--detections``
    when the detector network has random weights; unchanged otherwise."""
    if not random_detector(args):
        return parts
    return dataclasses.replace(parts, detector=CostOnlyDetector(parts.detector, read_detections_file(args.detections)))


def detector_breakdown(detector: Any, frames: list[Frame], repeats: int = 30, warm: int = 5) -> str:
    """One line: median ms per frame of the detector's preprocess, network and postprocess (batch 1).

    On CUDA every part is closed by ``torch.cuda.synchronize`` so that its time is its own.
    Needs an :class:`~stip_rt.detect.rtmdet.RTMDetDetector` (``preprocess``, ``backend.infer``,
    ``postprocess``); other detectors get a line saying so.
    """
    if not all(hasattr(detector, a) for a in ("preprocess", "backend", "postprocess")):
        return f"detector {detector.name}: no per-part breakdown (not a network detector)"
    device = torch.device(detector.backend.device)
    for f in frames[:warm]:
        detector.detect([f.image], [f.index])
    times: list[tuple[float, float, float]] = []
    for i in range(repeats):
        f = frames[(warm + i) % len(frames)]
        synchronize(device)
        t0 = time.perf_counter()
        x, geometry = detector.preprocess([f.image])
        synchronize(device)
        t1 = time.perf_counter()
        out = detector.backend.infer(x)
        synchronize(device)
        t2 = time.perf_counter()
        detector.postprocess(out.float(), geometry)
        synchronize(device)
        t3 = time.perf_counter()
        times.append((t1 - t0, t2 - t1, t3 - t2))
    pre, net, post = (1e3 * float(np.median(c)) for c in zip(*times))
    return (
        f"detector {detector.name} on {device}: preprocess {pre:.1f} ms, network {net:.1f} ms, "
        f"postprocess {post:.1f} ms (median of {repeats} frames, batch 1)"
    )


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def warm_up(parts: Any, frames: list[Frame], batch_frames: int) -> None:
    """First inference of a fresh session (and of a new batch shape) is slow: run each once."""
    dets = [parts.detector.detect([f.image], [f.index])[0] for f in frames[:batch_frames]]
    if parts.estimator is None:
        return
    parts.estimator(frames[0].image, dets[0])
    batched = getattr(parts.estimator, "estimate_frames", None)
    if batched is not None and batch_frames > 1:
        batched([f.image for f in frames[:batch_frames]], dets)


def overlap(stats: PipelineStats) -> tuple[str, float]:
    """(slowest stage, frames/s × its seconds per frame)."""
    slowest = max(stats.stage_ms, key=lambda k: stats.stage_ms[k])
    return slowest, stats.fps * stats.stage_ms[slowest] / 1e3


def run_pipeline(config: RunConfig, frames: list[Frame], args: argparse.Namespace) -> tuple[PipelineStats, float]:
    """The threaded pipeline from the file; returns its figures and pose frames per network call."""
    pconf = config
    parts = with_gt_boxes(build_parts(pconf), args)
    warm_up(parts, frames, config.pose.batch_frames)
    counter = CountingEstimator(parts.estimator) if parts.estimator is not None else None
    parts = dataclasses.replace(parts, estimator=counter)
    stats = Pipeline(pconf, parts=parts).run()
    return stats, counter.frames_per_call if counter is not None else 0.0  # 0: box-only, no pose calls


def plain_loop(config: RunConfig, frames: list[Frame], args: argparse.Namespace) -> float:
    """Frames/s of every stage one after the other on one thread (detect-every-N included)."""
    parts = with_gt_boxes(build_parts(config), args)
    parts.source.close()
    warm_up(parts, frames, 1)
    detector = every_n(parts.detector, config.detect.interval, to_boxes=parts.boxes_from_tracks)
    t = time.perf_counter()
    last = None
    for f in frames:
        (d,) = detector.detect([f.image], [f.index], last)
        p = parts.estimator(f.image, d) if parts.estimator else Poses.from_detections(d)
        last = parts.tracker.update(p, f.index)
    return _rate(len(frames), time.perf_counter() - t)


def live_replay(config: RunConfig, frames: list[Frame], fps: float, args: argparse.Namespace) -> None:
    cfg = dataclasses.replace(config, source=dataclasses.replace(config.source, max_frames=None))
    pconf = cfg
    parts = with_gt_boxes(build_parts(pconf), args)
    parts.source.close()
    warm_up(parts, frames, 1)
    paced = PacedSource(frames, parts.source.info, fps)
    live = dataclasses.replace(parts, source=paced, run=dataclasses.replace(parts.run, source=paced.info))
    # true capture-to-result latency: from the capture thread's clock to the result callback
    latencies: list[float] = []

    def on_result(r: Any) -> None:
        latencies.append(time.perf_counter() - paced.captured[r.index])

    pipe = Pipeline(pconf, parts=live, on_result=on_result)
    lstats = pipe.run()
    infer_ms = sum(lstats.stage_ms.get(k, 0.0) for k in ("detect", "pose", "track"))
    bound = 1e3 / fps + infer_ms
    p50, p95 = (1e3 * float(np.percentile(latencies, q)) for q in (50, 95))
    print(f"\nlive replay at {fps:g} fps: {lstats.frames} results, {lstats.dropped} dropped")
    print(format_stats(lstats, live=True))
    print(
        f"capture-to-result latency p50 {p50:.0f} ms, p95 {p95:.0f} ms; bound = frame interval "
        f"{1e3 / fps:.0f} ms + inference {infer_ms:.0f} ms = {bound:.0f} ms"
    )
    print(f"RATIO latency p95 / bound = {p95 / bound:.3f}  (goal <= 1)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", default=str(DATA / "opencv_samples" / "vtest.avi"))
    ap.add_argument("--detections", default=str(DATA / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"),
                    help="detections file used instead of a detector (default: the MOT ground truth)")  # fmt: skip
    ap.add_argument("--detector", default=None, help="run this detector network on every frame (e.g. rtmdet-tiny)")
    ap.add_argument("--detector-weights", default="random")
    ap.add_argument("--model", default="stip-w32-coco-256x192", help="pose model ('none' for box-only)")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, auto")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--det-every", type=int, default=1)
    ap.add_argument("--batch-frames", default="1,4", help="comma-separated pose.batch_frames values to compare")
    ap.add_argument("--no-loop", action="store_true", help="skip the plain-loop reference")
    ap.add_argument("--live-fps", type=float, default=0.0, help="also replay live at this rate (0: skip)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument(
        "--stage-streams",
        action="store_true",
        help="also run the last --batch-frames setting with runtime.stage_streams (CUDA: a stream per GPU stage)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch_frames.split(",")]

    base = make_config(args, batches[0], args.frames)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    parts = build_parts(base)  # decode once: frames for warm-up, the loop and the live replay
    print(describe_run(parts.run))
    frames = list(parts.source)
    parts.source.close()
    if args.detector:
        print(detector_breakdown(parts.detector, frames))
    if random_detector(args):
        print(
            f"detector {args.detector} has random weights: it runs on every frame for its cost; "
            f"the pose stage gets the ground-truth boxes ({Path(args.detections).name})"
        )

    results: dict[int, tuple[PipelineStats, float]] = {}
    for b in batches:
        stats, per_call = run_pipeline(make_config(args, b, args.frames), frames, args)
        results[b] = (stats, per_call)
        slowest, ratio = overlap(stats)
        ms = ", ".join(f"{k} {v:.1f}" for k, v in stats.stage_ms.items())
        print(f"\npipeline batch_frames={b}: {stats.fps:.2f} frames/s ({stats.frames} frames); ms/frame: {ms}")
        print(f"  slowest stage {slowest}; frames/s x slowest = {ratio:.3f} (1 = perfect overlap); "
              f"pose frames/call {per_call:.2f}")  # fmt: skip
    if len(batches) > 1:
        first, last = results[batches[0]][0], results[batches[-1]][0]
        print(f"RATIO fps batch_frames={batches[-1]} / batch_frames={batches[0]} = {last.fps / first.fps:.3f}")
    if args.stage_streams:  # the last setting again, the detect and pose threads on a CUDA stream each
        b = batches[-1]
        streams, per_call = run_pipeline(make_config(args, b, args.frames, stage_streams=True), frames, args)
        ms = ", ".join(f"{k} {v:.1f}" for k, v in streams.stage_ms.items())
        print(f"\npipeline batch_frames={b} stage_streams: {streams.fps:.2f} frames/s; ms/frame: {ms}")
        print(f"RATIO fps stage_streams / shared stream = {streams.fps / results[b][0].fps:.3f}")
    if not args.no_loop:
        loop_fps = plain_loop(base, frames, args)
        best = max(results.values(), key=lambda r: r[0].fps)[0]
        # the loop runs on frames already decoded: add the pipeline's decode time for a fair reference
        with_decode = 1.0 / (1.0 / loop_fps + best.stage_ms.get("decode", 0.0) / 1e3)
        print(
            f"plain loop: {loop_fps:.2f} frames/s on decoded frames, {with_decode:.2f} with decode; "
            f"RATIO best pipeline / plain loop with decode = {best.fps / with_decode:.3f}"
        )
    if args.live_fps > 0:
        live_replay(base, frames, args.live_fps, args)
    stats, per_call = results[batches[-1]]
    print(
        f"bench_pipeline: fps={stats.fps:.2f} overlap={overlap(stats)[1]:.3f} batch_frames={batches[-1]} "
        f"frames_per_call={per_call:.2f} device={args.device} backend={args.backend} model={args.model} "
        f"detections={'gt' if not args.detector else args.detector} "
        f"detector={args.detector or 'none'} boxes={'gt' if random_detector(args) or not args.detector else 'detector'}"
    )


if __name__ == "__main__":
    main()
