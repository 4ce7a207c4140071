"""The detections that scripts/eval_tracking.py tracks on MOT15 sequences: realistic synthetic ones
made from the ground truth (with synthesised keypoints), the ground truth itself, and OpenCV's HOG people
detector (computed once per sequence, then read from a cache).

Synthetic detections: for each sequence and seed, the ground-truth boxes (rows marked 1) become detections.
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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stip_rt.geometry import xywh_to_xyxy
from stip_rt.io.mot import MotSequence
from stip_rt.types import Detections, Poses

# --------------------------------------------------------------------------- synthetic, from ground truth

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


def gt_detections(gt: MotSequence) -> list[Detections]:
    """The ground-truth boxes as detections of score 1, frames 1..max (frame i of the list = MOT frame i + 1)."""
    rows = gt.frame_rows()
    empty = np.zeros(0, np.int64)
    out = []
    for f in range(1, int(gt.frames.max()) + 1):
        r = rows.get(f, empty)
        out.append(Detections(xywh_to_xyxy(gt.boxes[r]), np.ones(len(r), np.float32)))
    return out


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
