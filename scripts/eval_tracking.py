#!/usr/bin/env python
"""Compare trackers on MOT15 sequences with realistic synthetic detections made from ground truth.

For each sequence and seed, the ground-truth boxes (rows marked 1) become detections with missed ones in
bursts, jitter, low scores, false positives and synthesised keypoints; ``--mode hard``: more of each
(the model: scripts/mot_detections.py, which also makes the ground-truth and HOG detections below).

All trackers run on identical detections:
* ours (default config, keypoints given; results written the way the pipeline writes a file: through
  ``DelayedOutput``, so tracks start at their first matched frame), the same live (no back-fill),
  ours box-only (no keypoints given), ours with a 1 s lost buffer and no OKS (what this script used
  to call "ByteTrack-style"), and a greedy IoU tracker (mmpose / rtmlib);
* where the optional ``boxmot`` package can be imported (never a dependency of stip-rt): its
  ByteTrack, OC-SORT, BoT-SORT and OccluBoost, with their own defaults, without re-id and without
  camera-motion compensation (the cameras are static), ``frame_rate`` set where they take it.
  They get boxes and scores only.
Prints MOTA / IDF1 / HOTA / AssA / IDSW / FP / FN per tracker and sequence (mean over seeds 0..N-1),
then, where boxmot ran, one ``goal`` line per sequence: is ours ahead of every boxmot tracker in IDF1
and HOTA, with no more ID switches than ByteTrack (issue 16)? TUD-Campus is 71 frames, so one seed's
switch moves its means by a point; the default is 16 seeds.

Usage: python scripts/eval_tracking.py [--data ../shared/data/mot15] [--seeds 16] [--mode normal|hard|both]
       [--tracker NAME ...]   (repeatable; boxmot: run with a Python that has it, e.g. a separate venv)

Detect-every mode (``--det-every 1,2,3,5,10 [--coast-buffer 0,0.1,0.3,0.5] [--detections synthetic,hog,gt]
[--paired-vs B]``):
ours, box-only, with the detector run every N frames through the pipeline's own steps (``stip_rt.stages``:
``DetectEveryN``'s schedule and guide boxes, ``TrackStep`` coasting the frames between detections), every
frame scored (coasted rows count), for each N × coast buffer (``track.coast_buffer_per_s``: a value ``B/s`` is
B per coasted second, a plain ``B`` B per coasted frame, B × fps per second at the sequence's rate), on the
synthetic detections above
(``--mode``), on OpenCV's HOG people detector (computed once per sequence, cached in ``--hog-cache``,
default runs/hog; needs OpenCV 4's ``cv2.HOGDescriptor`` for that first run) and/or on the ground truth
itself (``gt``). Prints MOTA / IDF1 / HOTA / MOTP / IDSW / FP / FN / ids per row (docs/detection.md); with
``--paired-vs B``, then each buffer's seed-paired IDF1 / MOTA difference from buffer B on the synthetic rows.
"""

from __future__ import annotations

import argparse
import configparser
import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from mot_detections import HOG_UPSCALE, gt_detections, hog_detections, synthesise, video_of

from stip_rt.detect.config import IntervalConfig
from stip_rt.detect.interval import DetectEveryN, boxes_from_tracks
from stip_rt.eval.mot_metrics import evaluate_mot
from stip_rt.io.mot import MotSequence, read_mot
from stip_rt.schemas import COCO17
from stip_rt.stage_item import FrameItem
from stip_rt.stages import DetectStep, PoseStep, TrackStep
from stip_rt.track.backfill import DelayedOutput
from stip_rt.track.baselines import BoxmotTracker, GreedyIouTracker, boxmot_available, short_buffer_config
from stip_rt.track.config import TrackerConfig
from stip_rt.track.tracker import Tracker
from stip_rt.track_feedback import TrackFeedback
from stip_rt.types import Detections, Frame, Poses, Tracks

SEQUENCES = ("PETS09-S2L1", "TUD-Campus")


def run_tracker(tracker, frames: list[Poses], box_only: bool = False, backfill: bool = False) -> MotSequence:
    """Track ``frames`` (frame i of the list = MOT frame i + 1); with ``backfill`` through :class:`DelayedOutput`."""
    out: list[tuple[int, Tracks]] = []
    delayed = DelayedOutput(tracker) if backfill else None
    for i, p in enumerate(frames):
        q = Poses(p.boxes, p.box_scores, None, p.scores) if box_only else p
        if delayed is None:
            out.append((i, tracker.update(q, i)))
        else:
            out += delayed.update(q, i, payload=i)
    out += delayed.flush() if delayed is not None else []
    return to_mot(out)


def to_mot(rows: list[tuple[int, Tracks]]) -> MotSequence:
    """Tracker output as a MOT result: (0-based frame index, its tracks) → MOT frame index + 1, boxes xywh."""
    fr = [np.full(len(t), i + 1) for i, t in rows]
    boxes = [np.concatenate([t.boxes[:, :2], t.boxes[:, 2:] - t.boxes[:, :2]], 1) for _, t in rows]
    return MotSequence(
        np.concatenate(fr).astype(np.int64),
        np.concatenate([t.ids for _, t in rows]).astype(np.int64),
        np.concatenate(boxes).astype(np.float64),
        np.concatenate([t.scores for _, t in rows]).astype(np.float64),
    )


# name -> make(fps, (width, height)) -> (tracker, box_only, backfill)
Maker = Callable[[float, tuple[int, int]], tuple[object, bool, bool]]
TRACKERS: dict[str, Maker] = {
    "ours (IoU+OKS, Kalman)": lambda fps, size: (Tracker(fps=fps, schema=COCO17, frame_size=size), False, True),
    "ours live (no back-fill)": lambda fps, size: (Tracker(fps=fps, schema=COCO17, frame_size=size), False, False),
    "ours box-only": lambda fps, size: (Tracker(fps=fps, frame_size=size), True, True),
    "ours, 1 s buffer, no OKS": lambda fps, size: (Tracker(short_buffer_config(), fps=fps), True, True),
    "greedy IoU (mmpose/rtmlib)": lambda fps, size: (GreedyIouTracker(), True, False),
}
BOXMOT = ("ByteTrack", "OcSort", "BotSort", "OccluBoost")
if boxmot_available():
    for _name in BOXMOT:
        TRACKERS[f"boxmot {_name}"] = lambda fps, size, n=_name: (BoxmotTracker(n, fps, size), True, False)


def evaluate(data: Path, seeds: int, mode: str, names: list[str]) -> dict[tuple[str, str], list]:
    """Metrics per (sequence, tracker), one entry per seed."""
    table: dict[tuple[str, str], list] = {}
    for seq in SEQUENCES:
        info = configparser.ConfigParser()
        info.read(data / seq / "seqinfo.ini")
        fps = float(info["Sequence"]["frameRate"])
        w, h = int(info["Sequence"]["imWidth"]), int(info["Sequence"]["imHeight"])
        gt = read_mot(data / seq / "gt/gt.txt", min_score=1)
        for seed in range(seeds):
            frames = synthesise(gt, w, h, fps, seed, hard=mode == "hard")
            for name in names:
                tracker, box_only, backfill = TRACKERS[name](fps, (w, h))
                res = run_tracker(tracker, frames, box_only, backfill)
                m = evaluate_mot({seq: (gt, res)})[seq]
                table.setdefault((seq, name), []).append(m)
    return table


def print_table(table: dict[tuple[str, str], list], title: str) -> None:
    print(title)
    print(f"{'sequence':<13}{'tracker':<29}{'MOTA':>7}{'IDF1':>7}{'HOTA':>7}{'AssA':>7}{'IDSW':>7}{'FP':>7}{'FN':>7}")
    for (seq, name), ms in table.items():

        def mean(attr: str, ms=ms) -> float:
            return float(np.mean([getattr(m, attr) for m in ms]))

        print(
            f"{seq:<13}{name:<29}{100 * mean('mota'):7.1f}{100 * mean('idf1'):7.1f}{100 * mean('hota'):7.1f}"
            f"{100 * mean('assa'):7.1f}{mean('idsw'):7.1f}{mean('num_fp'):7.0f}{mean('num_misses'):7.0f}"
        )


def goal_lines(table: dict[tuple[str, str], list], mode: str, ours: str = "ours (IoU+OKS, Kalman)") -> list[str]:
    """Per sequence: ours vs every boxmot tracker that ran (IDF1 and HOTA ahead, IDSW ≤ ByteTrack's)."""
    out = []
    for seq in dict.fromkeys(s for s, _ in table):
        rivals = [n for n in (f"boxmot {b}" for b in BOXMOT) if (seq, n) in table]
        if (seq, ours) not in table or not rivals:
            continue

        def mean(name: str, attr: str, seq: str = seq) -> float:
            return float(np.mean([getattr(m, attr) for m in table[(seq, name)]]))

        misses = [f"{attr} vs {n}" for n in rivals for attr in ("idf1", "hota") if mean(ours, attr) <= mean(n, attr)]
        if (seq, "boxmot ByteTrack") in table and mean(ours, "idsw") > mean("boxmot ByteTrack", "idsw"):
            misses.append("IDSW vs boxmot ByteTrack")
        verdict = "met" if not misses else "NOT met (" + ", ".join(misses) + ")"
        out.append(f"goal {mode:<6} {seq:<13} ours ahead of {len(rivals)} boxmot trackers: {verdict}")
    return out


# --------------------------------------------------------------------------- detect every N (box-only)

# column → score key (fractions printed in %)
EVERY_COLUMNS = {
    "MOTA": "mota",
    "IDF1": "idf1",
    "HOTA": "hota",
    "MOTP": "motp",
    "IDSW": "idsw",
    "FP": "num_fp",
    "FN": "num_misses",
    "ids": "ids",
}
PERCENT = ("mota", "idf1", "hota", "motp")


class CachedDetector:
    """A :class:`~stip_rt.detect.base.Detector` whose detections are given: frame index → :class:`Detections`."""

    def __init__(self, dets: Sequence[Detections], name: str = "cached") -> None:
        self.dets = dets
        self.name = name

    def detect(self, frames: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> list[Detections]:
        assert indices is not None
        return [self.dets[i] for i in indices]


def track_every(
    dets: Sequence[Detections], every: int, coast_buffer_per_s: float, fps: float, size: tuple[int, int]
) -> MotSequence:
    """Box-only tracking of ``dets`` (frame i = MOT frame i + 1) with the detector run every ``every``
    frames, driven as ``stip-rt track --pose none --det-every N`` on a file drives it: the pipeline's
    own detect, pose and track steps (:mod:`stip_rt.stages`, as ``make_steps`` builds them, without
    threads), so :class:`DetectEveryN` schedules the detections and derives the guide boxes,
    :class:`TrackStep` coasts the frames without detection (``Tracker.coast``) and back-fills through
    :class:`DelayedOutput`. Every frame's output is returned, coasted rows included.

    Args:
        coast_buffer_per_s: ``track.coast_buffer_per_s`` (the rest of the tracker config: defaults).
        size: frame (width, height) px.
    """
    w, h = size
    to_boxes = functools.partial(boxes_from_tracks, config=IntervalConfig(every), width=w, height=h)
    schedule = DetectEveryN(CachedDetector(dets), every, to_boxes=to_boxes)
    feedback = TrackFeedback()
    tracker = Tracker(TrackerConfig(coast_buffer_per_s=coast_buffer_per_s), fps=fps, frame_size=size)
    detect, pose = DetectStep(schedule), PoseStep(None, schedule, feedback)
    track = TrackStep(tracker, feedback, guide=schedule.needs_tracks, coast_every=every)
    image = np.zeros((h, w, 3), np.uint8)  # never looked at: the detector's output is given
    items = []
    for i in range(len(dets)):
        item = FrameItem(i, Frame(i, i / fps, image), 0.0)
        detect(item)
        pose([item])
        items += track(item)
    items += track.flush()
    return to_mot([(it.frame.index, it.tracks) for it in items])


def per_second_buffer(buffer: str, fps: float) -> float:
    """A ``--coast-buffer`` value as ``track.coast_buffer_per_s``: ``B/s`` is B per coasted second, a plain ``B``
    B per coasted frame (the former ``track.coast_buffer``), so B × ``fps`` per second.

    Raises:
        ValueError: not a number (with an optional ``/s``), or below 0.
    """
    text = buffer.strip()
    per_s = text.endswith("/s")
    value = float(text[:-2] if per_s else text)
    if not value >= 0:
        raise ValueError(f"coast buffer {buffer!r} must be >= 0")
    return value if per_s else value * fps


def sequence_info(data: Path, seq: str) -> tuple[float, int, int, MotSequence]:
    """fps, width, height (seqinfo.ini) and the ground truth (rows marked 1) of a MOT15 sequence."""
    info = configparser.ConfigParser()
    info.read(data / seq / "seqinfo.ini")
    fps = float(info["Sequence"]["frameRate"])
    w, h = int(info["Sequence"]["imWidth"]), int(info["Sequence"]["imHeight"])
    return fps, w, h, read_mot(data / seq / "gt/gt.txt", min_score=1)


def evaluate_every(
    data: Path,
    sources: Sequence[str],
    seeds: int,
    everys: Sequence[int],
    buffers: Sequence[str],
    hog_dir: Path,
) -> dict[tuple[str, str, int, str], list[dict[str, float]]]:
    """Scores per (sequence, detections, N, coast buffer), one dict per seed (HOG: one): mota, idf1, hota,
    motp (mean IoU of the matched boxes), idsw, num_fp, num_misses, ids (distinct ids output).

    Args:
        sources: ``normal`` / ``hard`` (synthetic, seeds 0..seeds-1), ``hog`` and/or ``gt`` (the ground
            truth itself, score 1: no miss, no jitter, no false positive).
        buffers: coast buffers, per coasted frame (``0.2``) or second (``1.4/s``; :func:`per_second_buffer`).
    """
    table: dict[tuple[str, str, int, str], list[dict[str, float]]] = {}
    for seq in SEQUENCES:
        fps, w, h, gt = sequence_info(data, seq)
        runs: list[tuple[str, list[Detections]]] = []
        for src in sources:
            if src == "hog":
                runs.append(("HOG", hog_detections(video_of(data, seq), HOG_UPSCALE[seq], hog_dir / f"{seq}.npz")))
                continue
            if src == "gt":
                runs.append(("ground truth", gt_detections(gt)))
                continue
            for seed in range(seeds):
                frames = synthesise(gt, w, h, fps, seed, hard=src == "hard")
                runs.append((f"synth {src}", [Detections(p.boxes, p.box_scores) for p in frames]))
        for label, dets in runs:
            for every in everys:
                for buffer in buffers:
                    res = track_every(dets, every, per_second_buffer(buffer, fps), fps, (w, h))
                    m = evaluate_mot({seq: (gt, res)})[seq]
                    row = {a: getattr(m, a) for a in ("mota", "idf1", "hota", "motp", "idsw", "num_fp", "num_misses")}
                    table.setdefault((seq, label, every, buffer), []).append(row | {"ids": len(np.unique(res.ids))})
    return table


def print_every_table(table: dict[tuple[str, str, int, str], list[dict[str, float]]], seeds: int) -> None:
    print(
        f"box-only, detect every N, coasting between detections; synthetic: mean over seeds 0..{seeds - 1}, "
        "HOG: one run; MOTA/IDF1/HOTA in %, IDSW/FP/FN per run, ids = distinct ids output"
    )
    print(f"{'sequence':<13}{'detections':<14}{'N':>3}{'buffer':>8}" + "".join(f"{c:>7}" for c in EVERY_COLUMNS))
    for (seq, label, every, buffer), rows in table.items():
        cells = []
        for key in EVERY_COLUMNS.values():
            v = float(np.mean([r[key] for r in rows]))
            cells.append(f"{100 * v:7.1f}" if key in PERCENT else f"{v:7.1f}")
        print(f"{seq:<13}{label:<14}{every:>3}{buffer:>8}" + "".join(cells))


def paired_differences(
    table: dict[tuple[str, str, int, str], list[dict[str, float]]], baseline: str, key: str
) -> dict[tuple[str, str, int, str], tuple[float, float]]:
    """Seed-paired difference of score ``key`` from the ``baseline`` buffer, per (sequence, detections, N,
    buffer) with more than one seed: (mean, standard error of the mean) of buffer − baseline over the seeds."""
    out = {}
    for (seq, label, every, buffer), rows in table.items():
        base = table.get((seq, label, every, baseline))
        if buffer == baseline or base is None or len(rows) < 2:
            continue
        d = np.array([r[key] for r in rows]) - np.array([r[key] for r in base])
        out[(seq, label, every, buffer)] = (float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size)))
    return out


def print_paired(table: dict[tuple[str, str, int, str], list[dict[str, float]]], baseline: str) -> None:
    idf1, mota = paired_differences(table, baseline, "idf1"), paired_differences(table, baseline, "mota")
    print(f"seed-paired differences from buffer {baseline} (points; ± standard error; * beyond two)")
    print(f"{'sequence':<13}{'detections':<14}{'N':>3}{'buffer':>8}{'dIDF1':>15}{'dMOTA':>15}")
    for key, (m1, s1) in idf1.items():
        m2, s2 = mota[key]
        seq, label, every, buffer = key
        cells = [f"{100 * m:+7.1f}±{100 * s:4.1f}{'*' if abs(m) > 2 * s else ' '}" for m, s in ((m1, s1), (m2, s2))]
        print(f"{seq:<13}{label:<14}{every:>3}{buffer:>8}" + "".join(cells))


def _numbers(kind: type, text: str) -> list:
    return [kind(x) for x in text.split(",") if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/mot15")
    ap.add_argument("--seeds", type=int, default=16, help="seeds 0..N-1 (default 16)")
    ap.add_argument("--mode", choices=("normal", "hard", "both"), default="both")
    ap.add_argument("--tracker", action="append", default=[], help="a tracker's name (repeatable; default: all)")
    ap.add_argument("--det-every", help="detect-every mode: intervals N, e.g. 1,2,3,5,10 (box-only, ours)")
    ap.add_argument(
        "--coast-buffer",
        default="0,0.1,0.3,0.5",
        help="detect-every mode: coast buffers per coasted frame, or per coasted second as B/s (coast_buffer_per_s)",
    )
    ap.add_argument("--paired-vs", help="detect-every mode: also print seed-paired differences from this buffer")
    ap.add_argument(
        "--detections",
        default="synthetic,hog",
        help="detect-every mode: synthetic (--mode), hog and/or gt (perfect: the ground truth), comma-separated",
    )
    ap.add_argument(
        "--hog-cache",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "runs/hog",
        help="detect-every mode: where HOG's detections are cached, <sequence>.npz (default: runs/hog, git-ignored)",
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.det_every is not None:
        main_every(ap, args)
        return
    names = args.tracker or list(TRACKERS)
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        ap.error(f"unknown tracker(s) {unknown}; available: {list(TRACKERS)}")
    if not boxmot_available():
        print("boxmot is not importable here: its ByteTrack / OC-SORT / BoT-SORT / OccluBoost are left out")
    for mode in ("normal", "hard") if args.mode == "both" else (args.mode,):
        table = evaluate(args.data, args.seeds, mode, names)
        print_table(
            table,
            f"{mode} detections, mean over seeds 0..{args.seeds - 1}; MOTA/IDF1/HOTA/AssA in %, IDSW/FP/FN per run",
        )
        for line in goal_lines(table, mode):
            print(line)


def main_every(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The detect-every mode: the grid of N × coast buffer on each kind of detections."""
    try:
        everys = _numbers(int, args.det_every)
        buffers = [b.strip() for b in args.coast_buffer.split(",") if b.strip()]
        for b in buffers:
            per_second_buffer(b, 1.0)
        kinds = [k.strip() for k in args.detections.split(",") if k.strip()]
    except ValueError as e:
        ap.error(f"--det-every / --coast-buffer: {e}")
    if not everys or min(everys) < 1 or not buffers:
        ap.error("--det-every needs intervals >= 1 and --coast-buffer values >= 0")
    if args.paired_vs is not None and args.paired_vs not in buffers:
        ap.error(f"--paired-vs {args.paired_vs!r} is not one of --coast-buffer {buffers}")
    if not kinds or set(kinds) - {"synthetic", "hog", "gt"}:
        ap.error(f"--detections: synthetic, hog and/or gt, got {args.detections!r}")
    sources = [m for m in ("normal", "hard") if "synthetic" in kinds and args.mode in (m, "both")]
    sources += [k for k in ("hog", "gt") if k in kinds]
    table = evaluate_every(args.data, sources, args.seeds, everys, buffers, args.hog_cache)
    print_every_table(table, args.seeds)
    if args.paired_vs is not None:
        print_paired(table, args.paired_vs)


if __name__ == "__main__":
    main()
