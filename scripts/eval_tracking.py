#!/usr/bin/env python
"""Compare trackers on MOT15 sequences with realistic synthetic detections made from ground truth.

For each sequence and seed, the ground-truth boxes (rows marked 1) become detections.
Normal mode (the default):
* missed detections in bursts: per identity a two-state (Gilbert-Elliott) chain, hit→miss 5 %,
  miss→miss 60 % (about 11 % missed, in runs);
* box jitter proportional to size: centre σ = 5 % of w / 4 % of h, size σ = 5 %;
* scores: N(0.8, 0.12) clipped to [0.05, 1]; 15 % of detections get a low score U(0.1, 0.5)
  (occluded people), which only the two-stage trackers use;
* false positives: Poisson(0.4) per frame, boxes of ground-truth sizes at random places, scores U(0.1, 0.7).
Hard mode (``--mode hard``): 20 % of detections missed (independently), false positives 5 % of the
true people of the frame (Poisson), box jitter 1.5x the above (centre σ = 7.5 % of w / 6 % of h,
size σ = 7.5 %); scores as above.
The ground truth has boxes only, so keypoints are SYNTHESISED: each identity gets its own fixed
COCO-17 body layout inside its true box (a template perturbed by ±6 % of the box per joint) plus a
walking motion (wrists and ankles swing at a per-identity gait frequency of 0.8-1.2 Hz and phase),
per-frame noise σ = 2 % of the box height, and scores U(0.4, 1) with 10 % of joints "occluded"
(U(0, 0.3)). False positives get random layouts. Keypoints follow the true box (a pose network
localises the body, not the jittered box) — this is an assumption of the benchmark, stated in docs/tracking.md.

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

Detect-every mode (``--det-every 1,2,3,5,10 [--coast-buffer 0,0.1,0.3,0.5] [--detections synthetic,hog,gt]``):
ours, box-only, with the detector run every N frames through the pipeline's own steps (``stip_rt.stages``:
``DetectEveryN``'s schedule and guide boxes, ``TrackStep`` coasting the frames between detections), every
frame scored (coasted rows count), for each N × ``track.coast_buffer``, on the synthetic detections above
(``--mode``), on OpenCV's HOG people detector (computed once per sequence, cached in ``--hog-cache``,
default runs/hog; needs OpenCV 4's ``cv2.HOGDescriptor`` for that first run) and/or on the ground truth
itself (``gt``). Prints MOTA / IDF1 / HOTA / MOTP / IDSW / FP / FN / ids per row (docs/detection.md).
"""

from __future__ import annotations

import argparse
import configparser
import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from stip_rt.detect.config import IntervalConfig
from stip_rt.detect.interval import DetectEveryN, boxes_from_tracks
from stip_rt.eval.mot_metrics import evaluate_mot
from stip_rt.geometry import xywh_to_xyxy
from stip_rt.io.mot import MotSequence, read_mot
from stip_rt.schemas import COCO17
from stip_rt.stages import DetectStep, FrameItem, PoseStep, TrackFeedback, TrackStep
from stip_rt.track.backfill import DelayedOutput
from stip_rt.track.baselines import BoxmotTracker, GreedyIouTracker, boxmot_available, short_buffer_config
from stip_rt.track.config import TrackerConfig
from stip_rt.track.tracker import Tracker
from stip_rt.types import Detections, Frame, Poses, Tracks

SEQUENCES = ("PETS09-S2L1", "TUD-Campus")
# COCO-17 joints in box-normalised coordinates (x right, y down) of a person standing upright.
TEMPLATE = np.array(
    [
        [0.50, 0.07],
        [0.46, 0.05],
        [0.54, 0.05],
        [0.42, 0.07],
        [0.58, 0.07],
        [0.32, 0.20],
        [0.68, 0.20],
        [0.26, 0.36],
        [0.74, 0.36],
        [0.24, 0.50],
        [0.76, 0.50],
        [0.38, 0.52],
        [0.62, 0.52],
        [0.38, 0.74],
        [0.62, 0.74],
        [0.38, 0.95],
        [0.62, 0.95],
    ]
)
SWING = np.zeros((17, 2))
SWING[[9, 15], 0] = 0.10  # left wrist / ankle swing forward ...
SWING[[10, 16], 0] = -0.10  # ... while the right ones swing back


def _body(rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
    """Layout (17, 2), gait phase (rad) and gait frequency (Hz) of one identity."""
    return TEMPLATE + rng.uniform(-0.06, 0.06, TEMPLATE.shape), rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 1.2)


def _keypoints(box_xywh: np.ndarray, layout: np.ndarray, phase: float, rng: np.random.Generator) -> np.ndarray:
    x, y, w, h = box_xywh
    rel = layout + SWING * np.sin(phase)
    xy = np.stack([x + rel[:, 0] * w, y + rel[:, 1] * h], 1) + rng.normal(0, 0.02 * h, (17, 2))
    s = rng.uniform(0.4, 1.0, 17)
    occluded = rng.random(17) < 0.10
    s[occluded] = rng.uniform(0.0, 0.3, occluded.sum())
    return np.concatenate([xy, s[:, None]], 1)


def synthesise(gt: MotSequence, width: int, height: int, fps: float, seed: int, hard: bool = False) -> list[Poses]:
    """Per-frame detections (boxes, scores, keypoints) from ground truth; frames 1..max.

    Args:
        hard: the hard mode (20 % missed independently, 5 % false positives, 1.5x jitter).
    """
    rng = np.random.default_rng(seed)
    bodies = {int(i): _body(rng) for i in np.unique(gt.ids)}
    missing: dict[int, bool] = {}
    rows = gt.frame_rows()
    sizes = gt.boxes[:, 2:]
    jit = 1.5 if hard else 1.0
    out = []
    for f in range(1, int(gt.frames.max()) + 1):
        boxes, scores, kpts = [], [], []
        for r in rows.get(f, []):
            tid = int(gt.ids[r])
            if hard:
                missing[tid] = rng.random() < 0.20
            else:
                missing[tid] = rng.random() < (0.60 if missing.get(tid, False) else 0.05)
            if missing[tid]:
                continue
            x, y, w, h = gt.boxes[r]
            cx, cy = x + w / 2 + rng.normal(0, 0.05 * jit * w), y + h / 2 + rng.normal(0, 0.04 * jit * h)
            jw, jh = w * (1 + rng.normal(0, 0.05 * jit)), h * (1 + rng.normal(0, 0.05 * jit))
            boxes.append([cx - jw / 2, cy - jh / 2, cx + jw / 2, cy + jh / 2])
            sc = rng.uniform(0.1, 0.5) if rng.random() < 0.15 else rng.normal(0.8, 0.12)
            scores.append(float(np.clip(sc, 0.05, 1.0)))
            layout, phase0, freq = bodies[tid]
            kpts.append(_keypoints(gt.boxes[r], layout, phase0 + 2 * np.pi * freq * f / fps, rng))
        n_fp = rng.poisson(0.05 * len(rows.get(f, []))) if hard else rng.poisson(0.4)
        for _ in range(n_fp):
            w, h = sizes[rng.integers(len(sizes))]
            x, y = rng.uniform(0, max(1, width - w)), rng.uniform(0, max(1, height - h))
            boxes.append([x, y, x + w, y + h])
            scores.append(float(rng.uniform(0.1, 0.7)))
            layout, phase0, _ = _body(rng)
            kpts.append(_keypoints(np.array([x, y, w, h]), layout, phase0, rng))
        n = len(boxes)
        b = np.asarray(boxes, np.float32).reshape(n, 4)
        s = np.asarray(scores, np.float32).reshape(n)
        k = np.asarray(kpts, np.float32).reshape(n, 17, 3)
        out.append(Poses(b, s, k, s))
    return out


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
    dets: Sequence[Detections], every: int, coast_buffer: float, fps: float, size: tuple[int, int]
) -> MotSequence:
    """Box-only tracking of ``dets`` (frame i = MOT frame i + 1) with the detector run every ``every``
    frames, driven as ``stip-rt track --pose none --det-every N`` on a file drives it: the pipeline's
    own detect, pose and track steps (:mod:`stip_rt.stages`, as ``make_steps`` builds them, without
    threads), so :class:`DetectEveryN` schedules the detections and derives the guide boxes,
    :class:`TrackStep` coasts the frames without detection (``Tracker.coast``) and back-fills through
    :class:`DelayedOutput`. Every frame's output is returned, coasted rows included.

    Args:
        coast_buffer: ``track.coast_buffer`` (the rest of the tracker config: defaults).
        size: frame (width, height) px.
    """
    w, h = size
    to_boxes = functools.partial(boxes_from_tracks, config=IntervalConfig(every), width=w, height=h)
    schedule = DetectEveryN(CachedDetector(dets), every, to_boxes=to_boxes)
    feedback = TrackFeedback()
    tracker = Tracker(TrackerConfig(coast_buffer=coast_buffer), fps=fps, frame_size=size)
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


def hog_detections(video: Path, upscale: float, cache: Path) -> list[Detections]:
    """HOG's detections of every frame of ``video`` (:func:`run_hog` once, then from ``cache``): each
    window shrunk by 15 % of its width and 5 % of its height on each side (the person inside the
    window, as OpenCV's ``peopledetect`` sample draws it), score = the SVM margin clipped to [0, 1]
    (margin ≥ 0.5: a high-score detection of the tracker)."""
    if not cache.exists():
        run_hog(video, upscale, cache)
    z = np.load(cache)
    x, y, w, h = z["xywh"].T
    boxes = np.stack([x + 0.15 * w, y + 0.05 * h, x + 0.85 * w, y + 0.95 * h], 1).astype(np.float32)
    scores = np.clip(z["weight"], 0.0, 1.0).astype(np.float32)
    f = z["frame"]
    return [Detections(boxes[f == i], scores[f == i]) for i in range(int(z["frames"]))]


def gt_detections(gt: MotSequence) -> list[Detections]:
    """The ground-truth boxes as detections of score 1, frames 1..max (frame i of the list = MOT frame i + 1)."""
    rows = gt.frame_rows()
    empty = np.zeros(0, np.int64)
    out = []
    for f in range(1, int(gt.frames.max()) + 1):
        r = rows.get(f, empty)
        out.append(Detections(xywh_to_xyxy(gt.boxes[r]), np.ones(len(r), np.float32)))
    return out


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
    buffers: Sequence[float],
    hog_dir: Path,
) -> dict[tuple[str, str, int, float], list[dict[str, float]]]:
    """Scores per (sequence, detections, N, coast buffer), one dict per seed (HOG: one): mota, idf1, hota,
    motp (mean IoU of the matched boxes), idsw, num_fp, num_misses, ids (distinct ids output).

    Args:
        sources: ``normal`` / ``hard`` (synthetic, seeds 0..seeds-1), ``hog`` and/or ``gt`` (the ground
            truth itself, score 1: no miss, no jitter, no false positive).
    """
    table: dict[tuple[str, str, int, float], list[dict[str, float]]] = {}
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
                    res = track_every(dets, every, buffer, fps, (w, h))
                    m = evaluate_mot({seq: (gt, res)})[seq]
                    row = {a: getattr(m, a) for a in ("mota", "idf1", "hota", "motp", "idsw", "num_fp", "num_misses")}
                    table.setdefault((seq, label, every, buffer), []).append(row | {"ids": len(np.unique(res.ids))})
    return table


def print_every_table(table: dict[tuple[str, str, int, float], list[dict[str, float]]], seeds: int) -> None:
    print(
        f"box-only, detect every N, coasting between detections; synthetic: mean over seeds 0..{seeds - 1}, "
        "HOG: one run; MOTA/IDF1/HOTA in %, IDSW/FP/FN per run, ids = distinct ids output"
    )
    print(f"{'sequence':<13}{'detections':<14}{'N':>3}{'buffer':>7}" + "".join(f"{c:>7}" for c in EVERY_COLUMNS))
    for (seq, label, every, buffer), rows in table.items():
        cells = []
        for key in EVERY_COLUMNS.values():
            v = float(np.mean([r[key] for r in rows]))
            cells.append(f"{100 * v:7.1f}" if key in PERCENT else f"{v:7.1f}")
        print(f"{seq:<13}{label:<14}{every:>3}{buffer:>7.2f}" + "".join(cells))


# --------------------------------------------------------------------------- a real detector: OpenCV's HOG

# HOG finds people whose body fills its 64x128 window (about 96 px tall) or more: PETS09-S2L1's are
# 64-127 px tall (5th-95th percentile), so its frames are upscaled 2x; TUD-Campus's are 136-296 px.
HOG_UPSCALE = {"PETS09-S2L1": 2.0, "TUD-Campus": 1.0}


def video_of(data: Path, seq: str) -> Path:
    """The video of a MOT15 sequence (PETS09-S2L1 is OpenCV's vtest.avi, shared/data/opencv_samples)."""
    return data.parent / "opencv_samples/vtest.avi" if seq == "PETS09-S2L1" else data / seq / f"{seq}.mp4"


def run_hog(video: Path, upscale: float, cache: Path) -> None:
    """OpenCV's HOG people detector (``getDefaultPeopleDetector``: Dalal-Triggs, the classic PETS09
    baseline; ``detectMultiScale`` with stride 8, padding 8, scale 1.05, OpenCV's grouping) on every
    frame of ``video``; raw windows (x, y, w, h in frame px) and SVM margins saved to ``cache`` (.npz).

    Needs ``cv2.HOGDescriptor`` (OpenCV 4; OpenCV 5 moved it out of the main package): run with a
    Python whose ``cv2`` has it (e.g. ``pip install --target DIR 'opencv-python-headless<5'`` and
    ``PYTHONPATH=DIR``); the cached file is read without it.
    """
    import cv2

    if not hasattr(cv2, "HOGDescriptor"):
        raise SystemExit(
            f"OpenCV {cv2.__version__} has no cv2.HOGDescriptor (OpenCV 5 moved it out): run once with a cv2 "
            f"of OpenCV 4 first on the path to make {cache}"
        )
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    cap = cv2.VideoCapture(str(video))
    frames, boxes, weights = [], [], []
    n = 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        big = cv2.resize(img, None, fx=upscale, fy=upscale) if upscale != 1 else img
        r, w = hog.detectMultiScale(big, winStride=(8, 8), padding=(8, 8), scale=1.05)
        r = np.asarray(r, np.float64).reshape(-1, 4) / upscale
        frames.append(np.full(len(r), n))
        boxes.append(r)
        weights.append(np.asarray(w, np.float64).reshape(-1))
        n += 1
    cap.release()
    if n == 0:
        raise SystemExit(f"could not read any frame of {video}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, frame=np.concatenate(frames), xywh=np.concatenate(boxes), weight=np.concatenate(weights), frames=n)
    tmp.replace(cache)


def _numbers(kind: type, text: str) -> list:
    return [kind(x) for x in text.split(",") if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/mot15")
    ap.add_argument("--seeds", type=int, default=16, help="seeds 0..N-1 (default 16)")
    ap.add_argument("--mode", choices=("normal", "hard", "both"), default="both")
    ap.add_argument("--tracker", action="append", default=[], help="a tracker's name (repeatable; default: all)")
    ap.add_argument("--det-every", help="detect-every mode: intervals N, e.g. 1,2,3,5,10 (box-only, ours)")
    ap.add_argument("--coast-buffer", default="0,0.1,0.3,0.5", help="detect-every mode: track.coast_buffer values")
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
        everys, buffers = _numbers(int, args.det_every), _numbers(float, args.coast_buffer)
        kinds = [k.strip() for k in args.detections.split(",") if k.strip()]
    except ValueError as e:
        ap.error(f"--det-every / --coast-buffer: {e}")
    if not everys or min(everys) < 1 or not buffers or min(buffers) < 0:
        ap.error("--det-every needs intervals >= 1 and --coast-buffer values >= 0")
    if not kinds or set(kinds) - {"synthetic", "hog", "gt"}:
        ap.error(f"--detections: synthetic, hog and/or gt, got {args.detections!r}")
    sources = [m for m in ("normal", "hard") if "synthetic" in kinds and args.mode in (m, "both")]
    sources += [k for k in ("hog", "gt") if k in kinds]
    table = evaluate_every(args.data, sources, args.seeds, everys, buffers, args.hog_cache)
    print_every_table(table, args.seeds)


if __name__ == "__main__":
    main()
