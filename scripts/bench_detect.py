"""Benchmark the person detector: backends side by side, and detecting every frame vs every Nth.

Part 1: frames/s of RTMDet (random weights: the cost does not depend on them) at each input size,
PyTorch eager vs ONNX Runtime on the CPU (and PyTorch fp32 / fp16 on CUDA when there is a GPU),
batch 1 and batch 4, with the ratio of the two CPU backends.

Part 2: end-to-end CPU cost per frame of decode + detection stage on a real video (default the
OpenCV sample ``vtest.avi``): the detector on every frame vs :class:`DetectEveryN` (boxes from the
previous frame's tracks in between; here the tracks are the previous boxes, box-only), with the
ratio.

Usage: ``python scripts/bench_detect.py [--model rtmdet-tiny] [--sizes 640 416] [--frames 100]``
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch

from stip_rt.detect.config import RTMDetDetectorConfig
from stip_rt.detect.factory import create_detector
from stip_rt.detect.interval import DetectEveryN
from stip_rt.types import Detections, Tracks

REPO = Path(__file__).resolve().parents[1]
# Random weights score every point ~0.5, so all would enter NMS; 50 candidates per frame is what a
# trained detector gives it on a crowded frame, so the figures are network + pre/post-processing.
NMS_PRE = 50
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "opencv_samples" / "vtest.avi"


def _fps(det: object, frames: list[np.ndarray], batch: int, repeats: int) -> float:
    batches = [frames[i : i + batch] for i in range(0, len(frames) - batch + 1, batch)]
    det.detect(batches[0])  # warm-up (and lazy init)
    det.detect(batches[0])
    t0 = time.perf_counter()
    n = 0
    for r in range(repeats):
        b = batches[r % len(batches)]
        det.detect(b)
        n += len(b)
    return n / (time.perf_counter() - t0)


def _read_frames(video: Path, count: int) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == count:
                break
    return out


def _as_tracks(d: Detections) -> Tracks:
    n = len(d)
    return Tracks(np.arange(1, n + 1), d.boxes, d.scores, None, d.scores, np.arange(n))


def _stream(video: Path, det: object, count: int) -> float:
    """Seconds per frame for decode + detection stage over the first ``count`` frames."""
    import av

    previous: Tracks | None = None
    t0 = time.perf_counter()
    n = 0
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            img = frame.to_ndarray(format="bgr24")
            if isinstance(det, DetectEveryN):
                (d,) = det.detect([img], [i], previous)
            else:
                (d,) = det.detect([img], [i])
            previous = _as_tracks(d)
            n += 1
            if n == count:
                break
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="rtmdet-tiny")
    ap.add_argument("--sizes", type=int, nargs="+", default=[640, 416])
    ap.add_argument("--repeats", type=int, default=10, help="timed batches per measurement")
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--frames", type=int, default=100, help="video frames for part 2")
    ap.add_argument("--every", type=int, default=5)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import onnxruntime

    print(
        f"# {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, model {args.model} (random weights)"
    )
    frames = _read_frames(args.video, 8)

    print("\n## detector frames/s (higher is better)")
    print(
        "| input | batch | torch cpu | onnxruntime cpu | ort / torch |"
        + (" torch cuda fp32 | torch cuda fp16 |" if torch.cuda.is_available() else "")
    )
    for size in args.sizes:
        cfg = RTMDetDetectorConfig(input_size=size, nms_pre=NMS_PRE)
        dets = {
            "torch": create_detector(args.model, "cpu", backend="torch", config=cfg, random_weights=True),
            "ort": create_detector(args.model, "cpu", backend="onnxruntime", config=cfg, random_weights=True),
        }
        if torch.cuda.is_available():
            for prec in ("fp32", "fp16"):
                dets[prec] = create_detector(
                    args.model, "cuda", backend="torch", precision=prec, config=cfg, random_weights=True
                )
        for batch in (1, 4):
            fps = {k: _fps(d, frames, batch, args.repeats) for k, d in dets.items()}
            row = f"| {size} | {batch} | {fps['torch']:.1f} | {fps['ort']:.1f} | {fps['ort'] / fps['torch']:.2f} |"
            if torch.cuda.is_available():
                row += f" {fps['fp32']:.1f} | {fps['fp16']:.1f} |"
            print(row, flush=True)

    print(f"\n## decode + detection per frame on {args.video.name}, first {args.frames} frames (CPU, 640)")
    cfg = RTMDetDetectorConfig(nms_pre=NMS_PRE)
    base = create_detector(args.model, "cpu", backend="onnxruntime", config=cfg, random_weights=True)
    every = DetectEveryN(base, every=args.every)
    t1 = _stream(args.video, base, args.frames)
    tn = _stream(args.video, every, args.frames)
    print("| detection | ms/frame | frames/s |")
    print(f"| every frame | {t1 * 1e3:.1f} | {1 / t1:.1f} |")
    print(f"| every {args.every}th frame | {tn * 1e3:.1f} | {1 / tn:.1f} |")
    print(f"ratio every-frame / every-{args.every}: {t1 / tn:.2f}x")


if __name__ == "__main__":
    main()
