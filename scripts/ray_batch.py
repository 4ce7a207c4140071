"""Scale ``stip-rt batch`` past one machine with Ray: one task per video.

Each task calls :func:`stip_rt.batch.process_video` — the same unit of work ``stip-rt batch``
runs in its process pool — so outputs, resumability (``done.json`` written last) and the
per-video failure handling are identical. Ray schedules the tasks over the cluster's nodes and
GPUs (``--gpus-per-task 1`` makes Ray pick a GPU and set ``CUDA_VISIBLE_DEVICES`` for it).
``--out-dir`` must be storage every node can write (NFS, a mounted bucket...).

Ray is not a dependency of stip-rt: ``pip install "ray[default]"``. Without a cluster address
the script starts a local Ray instance (``ray.init()``), which is also how to try it on a laptop::

    python scripts/ray_batch.py '/data/videos/*.mp4' --out-dir /shared/results --format jsonl,csv \\
        --model hrnet-w32-coco-256x192 --address auto --gpus-per-task 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stip_rt.batch import FORMATS, VideoResult, find_videos, format_table, output_names, process_video
from stip_rt.run_load import load_run_config


def main(argv: list[str] | None = None) -> int:
    try:
        import ray
    except ImportError:
        print('ray_batch.py needs Ray: pip install "ray[default]"', file=sys.stderr)
        return 2
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", help="folder of videos, glob, or one video (as seen from every node)")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--format", default="jsonl", help=f"comma-separated: {', '.join(FORMATS)}")
    ap.add_argument("--model", default="auto")
    ap.add_argument("--weights")
    ap.add_argument("--detector", default="rtmdet-tiny")
    ap.add_argument("--detector-weights")
    ap.add_argument("--detections", help="one detections file for all videos (tests/demos)")
    ap.add_argument("--max-frames", type=int)
    ap.add_argument("--address", help="Ray cluster address ('auto' for a running cluster; default: local)")
    ap.add_argument("--gpus-per-task", type=float, default=0.0)
    ap.add_argument("--cpus-per-task", type=float, default=1.0)
    args = ap.parse_args(argv)

    videos = find_videos(args.inputs)
    names = output_names(videos)
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    config = load_run_config(
        pose=args.model,
        weights=args.weights,
        detector=args.detector,
        detector_weights=args.detector_weights,
        detections=args.detections,
        max_frames=args.max_frames,
        device="cuda" if args.gpus_per_task > 0 else "cpu",
    )
    ray.init(address=args.address)
    task = ray.remote(num_cpus=args.cpus_per_task, num_gpus=args.gpus_per_task)(process_video)
    refs = [task.remote(str(v), str(Path(args.out_dir) / names[v]), config, formats) for v in videos]
    results: list[VideoResult] = []
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        r = ray.get(done[0])
        print(f"{r.status:8s} {r.source}", file=sys.stderr)
        results.append(r)
    order = {str(v): i for i, v in enumerate(videos)}
    results.sort(key=lambda r: order[r.source])
    print(format_table(results))
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
