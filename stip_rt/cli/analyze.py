"""``stip-rt analyze``: movement quantities (CSV), a per-track summary (CSV) and plots from a tracks file."""

from __future__ import annotations

import argparse
from pathlib import Path

# movement() keyword → the flag that sets it, so that errors name what the user typed
FLAGS = {"scale": "--scale", "fps": "--fps", "kpt_threshold": "--kpt-threshold", "cutoff_hz": "--cutoff",
         "kpt_cutoff_hz": "--kpt-cutoff", "max_gap": "--max-gap"}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from ..analysis.kinematics import check_options
    from ..analysis.report import write_analysis
    from ..analysis.summary import longest_table

    options = {"scale": args.scale, "fps": args.fps, "kpt_threshold": args.kpt_threshold, "cutoff_hz": args.cutoff,
               "kpt_cutoff_hz": args.kpt_cutoff, "max_gap": args.max_gap}  # fmt: skip
    check_options(FLAGS, **options)
    written = write_analysis(
        args.tracks,
        args.out,
        plots=args.plots,
        homography=args.homography,
        smooth=args.smooth == "butterworth",
        anchor=args.anchor,
        **options,
    )
    angles = [p for k, p in written.items() if k.startswith("angles/")]
    for name, path in written.items():
        if not name.startswith("angles/"):
            print(f"{name:<13}{path}")
    if angles:
        print(f"{'angles':<13}{angles[0].parent}/ ({len(angles)} track{'s' * (len(angles) > 1)})")
    if "summary" in written:
        import pandas as pd

        smoothed = "smoothed" if args.smooth == "butterworth" else "raw"
        table = longest_table(pd.read_csv(written["summary"]))
        print(f"\n{table}\n(speeds from the {smoothed} columns; all tracks and columns in {written['summary'].name})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="movement CSV (position, speed, joint angles), per-track summary CSV and plots from a tracks file",
        description=(
            "stip-rt analyze TRACKS: per-frame, per-track positions, speeds, accelerations, joint angles and "
            "keypoints (movement.csv; units in the column names, see docs/analysis.md), one row per track\n"
            "(summary.csv: duration, distance, speeds, joint-angle ranges) and PNG plots."
        ),
        epilog="Example: stip-rt analyze tracks.jsonl --homography ground.yaml --out analysis/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("tracks", metavar="TRACKS", help="a .jsonl or .json tracks file written by stip-rt track")
    p.add_argument("-o", "--out", metavar="DIR", type=Path, required=True, help="output folder")
    metres = p.add_mutually_exclusive_group()
    metres.add_argument("--scale", metavar="M_PER_PX", type=float, help="metres per pixel (uniform scale)")
    metres.add_argument(
        "--homography",
        metavar="FILE",
        type=Path,
        help="JSON/YAML with 4+ image_points (px) and ground_points (m): positions on the ground",
    )
    p.add_argument(
        "--kpt-threshold", metavar="T", type=float, default=0.3, help="keypoints scored below T are NaN (default 0.3)"
    )
    p.add_argument(
        "--smooth",
        choices=("butterworth", "none"),
        default="butterworth",
        help="smoothed columns: zero-phase Butterworth low-pass, or none (default butterworth)",
    )
    p.add_argument("--cutoff", metavar="HZ", type=float, default=2.0, help="position low-pass cutoff (default 2 Hz)")
    p.add_argument(
        "--kpt-cutoff",
        metavar="HZ",
        type=float,
        default=6.0,
        help="keypoint (joint angle) low-pass cutoff (default 6 Hz)",
    )
    p.add_argument("--max-gap", metavar="N", type=int, default=10, help="fill gaps of up to N frames (default 10)")
    p.add_argument(
        "--anchor",
        choices=("box", "hips"),
        default="box",
        help="a person's position: box bottom centre (feet, default) or hip midpoint",
    )
    p.add_argument(
        "--fps",
        type=float,
        help="frame rate to use instead of the file's: times become frame / FPS (default: the file's frame times)",
    )
    p.add_argument("--no-plots", dest="plots", action="store_false", help="write the CSVs only")
    p.set_defaults(func=run)
