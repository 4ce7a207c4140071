"""``stip-rt batch DIR_OR_GLOB --out-dir DIR``: track many videos; resumable, goes on after failures.

Examples::

    stip-rt batch videos/ --out-dir results/ --format jsonl,csv
    stip-rt batch 'clips/*.mp4' --out-dir results/ --jobs 4 --devices cuda:0 cuda:1 cuda:0 cuda:1
"""

from __future__ import annotations

import argparse
import sys

from ..batch import FORMATS, find_videos, format_table, run_batch
from .run_options import RUN_DESTS, add_run_options, config_from_args


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, (*RUN_DESTS, "max_frames"))
    if args.print_config:
        from ..run_load import config_yaml

        print(config_yaml(config), end="")
        return 0
    videos = find_videos(args.inputs)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    print(f"{len(videos)} videos → {args.out_dir}", file=sys.stderr)
    results = run_batch(
        videos,
        args.out_dir,
        config,
        formats,
        annotate=args.video,
        jobs=args.jobs,
        devices=args.devices or (),
        on_result=lambda r: print(f"{r.status:8s} {r.source}", file=sys.stderr),
    )
    print(format_table(results))
    return 1 if any(r.status == "failed" for r in results) else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "batch",
        help="track many videos (resumable; several processes/GPUs)",
        description=(__doc__ or "").replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("inputs", metavar="DIR_OR_GLOB", help="folder of videos, glob pattern, or one video")
    p.add_argument("-O", "--out-dir", required=True, help="output root: one sub-folder per video")
    p.add_argument(
        "-f", "--format", default="jsonl", help=f"comma-separated output formats: {', '.join(FORMATS)} (default: jsonl)"
    )
    p.add_argument("--video", action="store_true", help="also write an annotated video per input")
    p.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default: 1)")
    p.add_argument("-N", "--max-frames", type=int, metavar="N", help="only the first N frames of each video")
    p.add_argument(
        "--devices",
        nargs="+",
        metavar="DEV",
        help="devices handed to the workers in turn, e.g. cuda:0 cuda:1 (default: --device)",
    )
    add_run_options(p)
    p.set_defaults(func=run)
