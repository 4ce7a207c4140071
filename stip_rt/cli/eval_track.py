"""``stip-rt eval-track``: score tracking results against ground truth (MOT boxes or PoseTrack keypoints)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DataError


def _mot_pairs(gt: Path, res: Path) -> dict:
    """name → (gt, results): a gt.txt and a results file, or a MOT folder and a folder of <seq>.txt."""
    from ..io.mot import read_mot

    if gt.is_file():
        if not res.is_file():
            raise DataError(f"results {res}: expected a file, like --gt {gt}")
        return {
            gt.parent.parent.name if gt.parent.name == "gt" else gt.stem: (read_mot(gt, min_score=1), read_mot(res))
        }
    if not gt.is_dir():
        raise DataError(f"ground truth {gt}: not found")
    seqs = sorted(p.parent.parent for p in gt.glob("*/gt/gt.txt"))
    if not seqs:
        raise DataError(f"ground truth {gt}: no <sequence>/gt/gt.txt inside")
    if not res.is_dir():
        raise DataError(f"results {res}: expected a folder of <sequence>.txt files, like --gt {gt}")
    out = {}
    for s in seqs:
        r = res / f"{s.name}.txt"
        if not r.is_file():
            raise DataError(f"results {res}: no {s.name}.txt for sequence {s.name}")
        out[s.name] = (read_mot(s / "gt/gt.txt", min_score=1), read_mot(r))
    return out


def run(args: argparse.Namespace) -> int:
    if args.format == "posetrack":
        from ..eval.posetrack import evaluate_posetrack, load_posetrack

        gt, names = load_posetrack(args.gt)
        pred, _ = load_posetrack(args.results, images_from=gt, joint_scores=True)
        m = evaluate_posetrack(gt, pred, names, min_score=args.min_score)
        print(
            f"PoseTrack keypoint MOTA {100 * m.mota:.1f}  precision {100 * m.precision:.1f}  "
            f"recall {100 * m.recall:.1f}  IDSW {m.idsw}  ({m.num_frames} labelled frames, {m.num_gt} GT joints)"
        )
        for name, v in m.mota_per_joint.items():
            print(f"  {name:<16}{100 * v:6.1f}")
        return 0
    from ..eval.mot_metrics import evaluate_mot, format_table

    print(format_table(evaluate_mot(_mot_pairs(args.gt, args.results), iou_threshold=args.iou)))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-track",
        help="tracking metrics: MOTA, IDF1, HOTA (MOT) or keypoint MOTA (PoseTrack)",
        description="Score tracking results. MOT: --gt a gt.txt (or a folder of <seq>/gt/gt.txt) "
        "and --results a results file (or a folder of <seq>.txt). PoseTrack: --gt and "
        "--results PoseTrack18 JSON files or folders.",
    )
    p.add_argument("--gt", type=Path, required=True, help="ground truth file or folder")
    p.add_argument("--results", type=Path, required=True, help="tracker results file or folder")
    p.add_argument("--format", choices=["mot", "posetrack"], default="mot", help="input format (default: mot)")
    p.add_argument("--iou", type=float, default=0.5, help="MOT: minimum IoU for a match (default 0.5)")
    p.add_argument(
        "--min-score",
        type=float,
        default=0.0,
        help="PoseTrack: drop predicted joints with a score at or below this (default 0)",
    )
    p.set_defaults(func=run)
