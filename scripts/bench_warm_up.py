"""What a live run's warm-up costs at its start, against the first call it spares (no warm-up).

A live run makes its networks' slow first calls while it is built (``pipeline_build.warm_up``): the
pose estimator once on one person, then, with ``cuda-fast``, a CUDA graph for every batch bucket
(1 to 64 crops). Without it, each bucket is captured the first time a frame holds that many people,
in the middle of the run, and a live source drops the frames that arrive meanwhile. For a fresh
pose estimator each way (random weights, a black frame of ``--size``), this prints

* ``warm-up``: :meth:`PoseEstimator.warm_up` (the start-up delay a live run now has);
* ``first call``: the first :meth:`PoseEstimator.estimate` of ``--people`` people without a warm-up
  (one frame's stall mid-run, per new bucket), and the same call after the warm-up;

then ``RATIO warm-up / first call`` (how many such stalls the start-up delay is worth) and, as its
last line, ``warm_up: seconds=<x> first_call=<x> after=<x> backend=<name> device=<device>``.

    python scripts/bench_warm_up.py [--device cpu|cuda] [--backend torch|cuda-fast]
        [--model stip-w32-coco-256x192] [--people 3] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from stip_rt.models import build_model, load_spec
from stip_rt.pose.estimator import PoseEstimator
from stip_rt.runtime.factory import create_backend
from stip_rt.runtime.profile import timed_call
from stip_rt.types import Detections


def _estimator(args: argparse.Namespace) -> PoseEstimator:
    torch.manual_seed(0)
    spec = load_spec(args.model)
    net = build_model(spec).eval()
    backend = create_backend(net, backend=args.backend, device=args.device, precision=args.precision)
    return PoseEstimator(backend, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backend", default=None, help="default: cuda-fast on CUDA, torch on the CPU")
    parser.add_argument("--precision", default=None, help="default: fp16 on CUDA, fp32 on the CPU")
    parser.add_argument("--model", default="stip-w32-coco-256x192")
    parser.add_argument("--people", type=int, default=3, help="people in the first frame without a warm-up")
    parser.add_argument("--size", default="1280x720", help="frame size WxH")
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.backend = args.backend or ("cuda-fast" if cuda else "torch")
    args.precision = args.precision or ("fp16" if cuda else "fp32")
    if args.people < 1:
        parser.error(f"--people {args.people}: give 1 or more")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size {args.size!r}: give WxH, e.g. 1280x720")
    frame = np.zeros((h, w, 3), np.uint8)
    xs = np.linspace(0, w * 0.8, args.people)
    boxes = np.stack([xs, np.full_like(xs, h * 0.2), xs + w * 0.15, np.full_like(xs, h * 0.9)], 1).astype(np.float32)
    people = Detections(boxes, np.ones(args.people, np.float32))

    lazy = _estimator(args)  # no warm-up: the first frame with these people pays the first call
    first, _ = timed_call(args.device, lazy.estimate, frame, people)
    warm = _estimator(args)
    warm_up, _ = timed_call(args.device, warm.warm_up, w, h)
    after, _ = timed_call(args.device, warm.estimate, frame, people)
    gpu = torch.cuda.get_device_name(torch.device(args.device)) if cuda else ""
    print(f"{args.model}, backend {args.backend} {args.precision} on {args.device} {gpu}, torch {torch.__version__}")
    print(f"warm-up (one person, then every bucket the backend captures): {warm_up:.3f} s")
    print(f"first call, {args.people} people, no warm-up: {first:.3f} s; the same after the warm-up: {after:.3f} s")
    print(f"RATIO warm-up / first call = {warm_up / first:.2f}")
    print(
        f"warm_up: seconds={warm_up:.3f} first_call={first:.3f} after={after:.3f} "
        f"backend={args.backend} device={args.device}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
