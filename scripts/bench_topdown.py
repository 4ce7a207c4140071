"""Top-down pose speed: where a frame's time goes, and batched crops vs a per-crop loop.

For 1, 8 and 32 people in a 1080p frame, times (a) crop + normalise, (b) the network,
(c) flip-average + decode, each as a share of the frame; then the same people through the
same network one crop at a time (as rtmlib does) and prints loop time / batched time.

    python scripts/bench_topdown.py [--model stip-w32-coco-256x192] [--people 1 8 32] [--device cpu]

Goals (issue 4): on CPU at 8 people, everything except the network ≤ 10 % of the frame time;
batched ≥ 1.3× the loop. The model has random weights (speed does not depend on them).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from stip_rt.models import build_model
from stip_rt.pose.estimator import PoseEstimator
from stip_rt.pose.flip import flip_average
from stip_rt.runtime.profile import synchronize
from stip_rt.types import Detections


def _best(fn: Callable[[], object], repeats: int, device: str) -> float:
    """Median seconds of ``repeats`` runs (the caller warms up once per people count)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _people(n: int, rng: np.random.Generator, w: int = 1920, h: int = 1080) -> Detections:
    bw = rng.uniform(80, 260, n)
    bh = bw * rng.uniform(1.6, 2.6, n)
    x = rng.uniform(0, w - bw)
    y = rng.uniform(0, h - np.minimum(bh, h - 1))
    boxes = np.stack([x, y, x + bw, np.minimum(y + bh, h)], axis=1).astype(np.float32)
    return Detections(boxes, rng.uniform(0.5, 1.0, n).astype(np.float32))


def bench(
    est: PoseEstimator, frame: np.ndarray, dets: Detections, repeats: int, loop: bool = True, loop_max: int = 1 << 30
) -> dict[str, float]:
    """Seconds per frame for each part, the batched total and (optionally) the per-crop loop."""
    dev = est.backend.device
    crops = est.crop(frame, dets.boxes)
    n = len(dets)
    batch = torch.cat([crops.batch, crops.batch.flip(3)]) if est.flip_test else crops.batch
    raw = est.backend.infer(batch)  # also the warm-up for this batch size
    est(frame, Detections(dets.boxes[:1], dets.scores[:1]))  # warm-up of the batch-of-one path

    def post() -> None:  # flip average, decode and scores on the device, keypoints to the host
        hm = flip_average(raw[:n], raw[n:], est.schema.flip_index()) if est.flip_test else raw
        est.decode(hm, crops.center, crops.scale, dets.scores)

    out = {
        "crop": _best(lambda: est.crop(frame, dets.boxes), repeats, dev),
        "network": _best(lambda: est.backend.infer(batch), repeats, dev),
        "decode": _best(post, repeats, dev),
        "frame": _best(lambda: est(frame, dets), repeats, dev),
    }
    if loop and n <= loop_max:
        singles = [Detections(dets.boxes[i : i + 1], dets.scores[i : i + 1]) for i in range(n)]
        out["loop"] = _best(lambda: [est(frame, d) for d in singles], repeats, dev)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="stip-w32-coco-256x192", help="zoo name or model YAML")
    parser.add_argument("--people", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per measurement (median)")
    parser.add_argument("--no-flip", action="store_true")
    parser.add_argument("--loop-max", type=int, default=32, help="time the per-crop loop only up to this many people")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(args.model)
    est = PoseEstimator.from_model(model, args.device, args.precision, flip_test=not args.no_flip)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    print(
        f"{args.model} ({est.spec.arch}, input {est.spec.input_size}, heatmap {est.spec.heatmap_size}), "
        f"flip test {'on' if est.flip_test else 'off'}, {args.device} {args.precision}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print(
        f"{'people':>6} {'frame s':>8} {'crop %':>7} {'net %':>7} {'decode %':>8} {'non-net %':>9} "
        f"{'loop s':>8} {'loop/batched':>12}"
    )
    for n in args.people:
        r = bench(est, frame, _people(n, rng), args.repeats, loop_max=args.loop_max)
        parts = r["crop"] + r["network"] + r["decode"]
        share = {k: 100 * r[k] / parts for k in ("crop", "network", "decode")}
        loop = f"{r['loop']:>8.3f} {r['loop'] / r['frame']:>11.2f}x" if "loop" in r else f"{'-':>8} {'-':>12}"
        print(
            f"{n:>6} {r['frame']:>8.3f} {share['crop']:>7.1f} {share['network']:>7.1f} {share['decode']:>8.1f} "
            f"{share['crop'] + share['decode']:>9.1f} {loop}"
        )
        sys.stdout.flush()
    print("goals at 8 people on CPU: non-net ≤ 10 %, loop time / batched time ≥ 1.3x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
