"""The pose stage against its network: where a frame's time goes, and the decode old vs new.

For each people count, on frames of ``vtest.avi`` (768×576) with N synthetic person boxes, times
per frame (median of ``--repeats``; synchronised wall time on CUDA):

* ``crop``: boxes → normalised crop batch (OpenCV on the CPU, one ``grid_sample`` on CUDA); on
  CUDA also ``crop(h)``, the host's part of it (until ``crop`` returns, before the sync): close to
  ``crop`` means the host is the cost (uploads, launches), far below it the GPU;
* ``network``: ``backend.infer`` on the crops and their mirrors (flip test, one batch);
* ``decode``: flip average + decode + person scores + finite flags on the heatmaps' device (the
  stage's own :func:`~stip_rt.pose.decode_graph.pack_poses`);
* ``download``: the (N, K, 3) keypoints and (N,) scores to the host (the stage's one sync);
* ``stage``: :meth:`PoseEstimator.estimate` end to end, and ``stage / network``;
* on CUDA also ``graph dec`` (flip average + decode + scores replayed from a CUDA graph per bucket
  of people, :class:`~stip_rt.pose.decode_graph.DecodeGraphs`, with the download) and ``stage(g)``
  (the stage with it, ``decode_graphs=True``), and ``stage(g) / network``.

Then the decode itself, today's against the former one on the same flip-averaged heatmaps, timed
alternately in one loop: the former numpy + OpenCV decode (``tests/pose/reference_decode.py``,
loaded by path; on CUDA it includes copying the heatmaps to the host, as the stage used to) vs
:meth:`PoseEstimator.decode` (the stage's decode + rescoring + the keypoint download).

The last line is ``pose_stage: overhead_ratio=<stage/network> people=8 device=<device>``.

Goals (issue 13): decode ≥ 10× faster than the former numpy decode at 8 people on the CPU;
stage ≤ 1.3× the network on the GPU. Random weights (speed does not depend on them). ``--light``
keeps W32's widths and the real input and heatmap sizes (so crop and decode work is unchanged)
but builds one module per stage and one block per branch: a cheaper network for CPU runs.

    python scripts/bench_pose_stage.py [--device cpu|cuda] [--people 1,8,32] [--model stip-w32-coco-256x192]
        [--backend torch] [--precision fp32] [--light] [--repeats 5] [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from stip_rt.models import build_model, load_spec
from stip_rt.pose.crops import affine_matrices
from stip_rt.pose.decode_graph import pack_poses
from stip_rt.pose.estimator import PoseEstimator
from stip_rt.pose.flip import flip_average
from stip_rt.runtime.factory import create_backend
from stip_rt.runtime.profile import synchronize, timed_call
from stip_rt.runtime.transfer import to_device
from stip_rt.types import Detections

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO.parent / "shared" / "data" / "opencv_samples" / "vtest.avi"


def _reference_decode():
    """The former numpy decode, kept in the tests as the independent reference."""
    spec = importlib.util.spec_from_file_location("reference_decode", REPO / "tests" / "pose" / "reference_decode.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _timed_host(device: str, fn: Callable[..., object], *args: object) -> tuple[float, float, object]:
    """(host seconds until ``fn`` returns, seconds until the device is done, result), synchronised before."""
    synchronize(device)
    t0 = time.perf_counter()
    out = fn(*args)
    host = time.perf_counter() - t0
    synchronize(device)
    return host, time.perf_counter() - t0, out


def _device_decode(est: PoseEstimator, raw: torch.Tensor, crops, scores: np.ndarray) -> torch.Tensor:
    """The stage's post-processing before its download: :func:`pack_poses` with the estimator's settings
    (flip average, decode, person scores and finite flags on the heatmaps' device)."""
    dev = raw.device
    h, w = raw.shape[2:]
    mats = to_device(affine_matrices(crops.center, crops.scale, (w, h), inverse=True), dev)
    flip = to_device(np.asarray(est.schema.flip_index(), np.int64), dev) if est.flip_test else None
    box = to_device(np.asarray(scores, np.float32), dev)
    return pack_poses(raw, len(scores), mats, box, flip, est.spec.decode, est.score_from, est.in_vis_thre)


def _old_decode(ref, hm: torch.Tensor, crops, kind: str) -> object:
    return ref.decode_heatmaps(hm.cpu().numpy(), crops.center, crops.scale, kind)


def _frames(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"{path}: no frames could be read")
    return frames


def _people(n: int, rng: np.random.Generator, w: int, h: int) -> Detections:
    bw = rng.uniform(30, 90, n)
    bh = np.minimum(bw * rng.uniform(2.0, 3.0, n), h - 2)
    x = rng.uniform(0, w - bw)
    y = rng.uniform(0, h - bh)
    boxes = np.stack([x, y, x + bw, y + bh], axis=1).astype(np.float32)
    return Detections(boxes, rng.uniform(0.5, 1.0, n).astype(np.float32))


def bench(
    est: PoseEstimator, frames: list[np.ndarray], n: int, repeats: int, ref, est_g: PoseEstimator | None = None
) -> dict[str, float]:
    """Median milliseconds per frame of every part, for ``n`` people per frame (``est_g``: with decode graphs)."""
    dev = str(est.backend.device)
    rng = np.random.default_rng(n)
    dets = [_people(n, rng, f.shape[1], f.shape[0]) for f in frames]
    est(frames[0], dets[0])  # warm-up (CUDA graphs, allocator) for this batch size
    if est_g is not None:
        est_g(frames[0], dets[0])  # captures the decode graph of this bucket
    names = ("crop", "crop_host", "network", "decode", "download", "stage", "old", "new", "graph", "stage_g")
    parts: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):
        frame, det = frames[r % len(frames)], dets[r % len(frames)]
        host, t, crops = _timed_host(dev, est.crop, frame, det.boxes)
        parts["crop"].append(t)
        parts["crop_host"].append(host)
        batch = torch.cat([crops.batch, crops.batch.flip(3)]) if est.flip_test else crops.batch
        t, raw = timed_call(dev, est.backend.infer, batch)
        parts["network"].append(t)
        t, packed = timed_call(dev, _device_decode, est, raw, crops, det.scores)
        n = len(det.scores)
        hm = flip_average(raw[:n], raw[n:], est.schema.flip_index()) if est.flip_test else raw  # for the decodes
        parts["decode"].append(t)
        t, _ = timed_call(dev, packed.cpu)
        parts["download"].append(t)
        t, _ = timed_call(dev, est.estimate, frame, det)
        parts["stage"].append(t)
        if est_g is not None:
            t, _ = timed_call(dev, est_g._decode, raw, crops.center, crops.scale, det.scores, est_g.flip_test)
            parts["graph"].append(t)
            t, _ = timed_call(dev, est_g.estimate, frame, det)
            parts["stage_g"].append(t)
        for _ in range(5):  # the decode, former vs today's, on the same heatmaps, alternately
            t, _ = timed_call(dev, _old_decode, ref, hm, crops, est.spec.decode)
            parts["old"].append(t)
            t, _ = timed_call(dev, est.decode, hm, crops.center, crops.scale, det.scores)
            parts["new"].append(t)
    out = {k: 1e3 * statistics.median(v) if v else float("nan") for k, v in parts.items()}
    return out | {"old_min": 1e3 * min(parts["old"]), "new_min": 1e3 * min(parts["new"])}


def profile_stage(est: PoseEstimator, frame: np.ndarray, det: Detections) -> None:
    """torch.profiler's ops of one warmed-up ``est.estimate`` by host (self CPU) time: where the host time goes."""
    from torch.profiler import ProfilerActivity, profile

    est(frame, det)
    cuda = str(est.backend.device).startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        est(frame, det)
    events = prof.key_averages()
    ops = sum(e.count for e in events if e.key.startswith("aten::"))
    print(f"profile of one stage, 8 people: {ops} aten op calls")
    print(events.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=40))
    with profile(activities=activities) as prof:  # the crop alone (uploads, grid_sample): the part to explain
        est.crop(frame, det.boxes)
        synchronize(str(est.backend.device))
    print("profile of one crop, 8 people:")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40))


def light(spec):
    """The same widths, input and heatmap sizes, with one module per stage and one block per branch."""
    net = spec.net
    hrnet = getattr(net, "hrnet", net)  # STIPNet wraps its HRNet config; an HRNet spec is one
    if not hasattr(hrnet, "num_modules"):
        raise SystemExit(f"--light: {spec.name} has no HRNet backbone")
    hrnet = dataclasses.replace(hrnet, num_modules=(1, 1, 1), num_blocks=1, stem_blocks=1)
    net = dataclasses.replace(net, hrnet=hrnet) if hasattr(net, "hrnet") else hrnet
    return dataclasses.replace(spec, name=spec.name + "-light", net=net)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--people", default="1,8,32", help="comma-separated people per frame (8 is always run)")
    parser.add_argument("--model", default="stip-w32-coco-256x192", help="zoo name or model YAML")
    parser.add_argument("--backend", default="torch", help="torch, cuda-fast, onnxruntime, ...")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--light", action="store_true", help="1 module per stage, 1 block per branch (see above)")
    parser.add_argument("--no-flip", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="timed frames per people count (median)")
    parser.add_argument("--frames", type=int, default=8, help="distinct vtest.avi frames to cycle through")
    parser.add_argument("--threads", type=int, default=None, help="torch and OpenCV CPU threads (default: theirs)")
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--profile", action="store_true", help="print the top ops of one 8-person stage")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    people = sorted({int(p) for p in args.people.split(",") if p.strip()} | {8})
    spec = load_spec(args.model)
    if args.light:
        spec = light(spec)
    torch.manual_seed(0)
    net = build_model(spec).eval()
    backend = create_backend(net, backend=args.backend, device=args.device, precision=args.precision)
    est = PoseEstimator(backend, spec, flip_test=not args.no_flip)
    cuda = str(backend.device).startswith("cuda")
    est_g = PoseEstimator(backend, spec, flip_test=not args.no_flip, decode_graphs=True) if cuda else None
    frames = _frames(args.video, args.frames)
    ref = _reference_decode()
    dev = str(backend.device)
    gpu = torch.cuda.get_device_name(torch.device(dev)) if dev.startswith("cuda") else ""
    print(
        f"{spec.name} ({spec.arch}, input {spec.input_size}, heatmap {spec.heatmap_size}, decode {spec.decode}), "
        f"backend {args.backend} on {dev} {gpu} {args.precision}, flip test {'on' if est.flip_test else 'off'}, "
        f"{args.video.name} {frames[0].shape[1]}x{frames[0].shape[0]}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print("ms per frame (median):")
    print(
        f"{'people':>6} {'crop':>8} {'network':>8} {'decode':>8} {'download':>8} {'stage':>8} {'stage/net':>9} "
        f"{'old dec':>8} {'new dec':>8} {'old/new':>7} {'(min)':>6}"
        + (f" {'graph dec':>9} {'stage(g)':>8} {'(g)/net':>7} {'crop(h)':>7}" if cuda else "")
    )
    results = {}
    for n in people:
        r = results[n] = bench(est, frames, n, args.repeats, ref, est_g)
        print(
            f"{n:>6} {r['crop']:>8.2f} {r['network']:>8.2f} {r['decode']:>8.2f} {r['download']:>8.2f} "
            f"{r['stage']:>8.2f} {r['stage'] / r['network']:>8.2f}x {r['old']:>8.2f} {r['new']:>8.2f} "
            f"{r['old'] / r['new']:>6.1f}x {r['old_min'] / r['new_min']:>5.1f}x"
            + (
                f" {r['graph']:>9.2f} {r['stage_g']:>8.2f} {r['stage_g'] / r['network']:>6.2f}x {r['crop_host']:>7.2f}"
                if cuda
                else ""
            )
        )
        sys.stdout.flush()
    print(
        "old dec = former numpy decode (tests/pose/reference_decode.py"
        + (", incl. heatmaps to host)" if dev.startswith("cuda") else ")")
        + "; new dec = device decode + rescoring + keypoints to host; (min) = ratio of the fastest runs"
    )
    print("goals at 8 people: CPU old/new ≥ 10x; GPU stage/net ≤ 1.3x, decode ≤ 0.5 ms")
    if args.profile:
        profile_stage(est, frames[0], _people(8, np.random.default_rng(8), frames[0].shape[1], frames[0].shape[0]))
    r8 = results[8]
    graphs = f" overhead_ratio_decode_graphs={r8['stage_g'] / r8['network']:.2f}" if cuda else ""
    print(f"pose_stage: overhead_ratio={r8['stage'] / r8['network']:.2f}{graphs} people=8 device={dev}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
