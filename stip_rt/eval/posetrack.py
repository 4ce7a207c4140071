"""Keypoint tracking MOTA in the PoseTrack style, on PoseTrack18 JSON.

As in the official ``poseval``: every joint is tracked as its own set of objects. In each labelled
frame, a predicted joint can match a ground-truth joint of the same type when their distance is at
most ``pckh`` (0.5) times the person's head size (0.6 × the diagonal of the annotated head box),
CLEAR-MOT counts misses, false positives and id switches per joint with py-motmetrics, one
accumulator per video and joint, and MOTA = 1 − Σ(FN + FP + IDSW) / Σ GT joints over all joints
(the "total" MOTA poseval prints). Joints inside the frame's ignore regions (ground truth and
predictions, as poseval's ``removeIgnoredPoints``) and predicted joints with a score at or below
``min_score`` are dropped first. A predicted joint's score is its person's ``scores[k]`` when the
file has that list (poseval's reading), else the third value of its ``keypoints`` triple.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .mot_metrics import require_motmetrics


@dataclass(frozen=True, slots=True)
class PoseTrackFrame:
    """People of one image.

    Attributes:
        image_id: the image id in the JSON.
        video: video id (``vid_id`` or the image's folder).
        order: frame number within the video (sort key).
        labeled: True when the frame has ground truth (``is_labeled``).
        track_ids: (P,) int64.
        keypoints: (P, K, 3) float64 x, y, visibility/score in pixels.
        head_boxes: (P, 4) float64 xyxy head boxes (NaN when absent).
        ignore_regions: polygons (M, 2) in pixels where predictions are not scored.
    """

    image_id: int
    video: str
    order: int
    labeled: bool
    track_ids: np.ndarray
    keypoints: np.ndarray
    head_boxes: np.ndarray
    ignore_regions: tuple[np.ndarray, ...] = ()


@dataclass(frozen=True, slots=True)
class PoseTrackMetrics:
    """PoseTrack keypoint tracking scores.

    Attributes:
        mota: total MOTA over all joints.
        mota_per_joint: joint name → MOTA.
        precision, recall: joint-level precision and recall (matched / predicted, matched / GT).
        idsw, num_gt, num_fp, num_misses: summed over joints.
        num_frames: labelled frames scored.
    """

    mota: float
    mota_per_joint: dict[str, float]
    precision: float
    recall: float
    idsw: int
    num_gt: int
    num_fp: int
    num_misses: int
    num_frames: int


def _files(path: str | Path) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.json"))
        if not files:
            raise DataError(f"PoseTrack folder {p}: no .json files")
        return files
    if not p.is_file():
        raise DataError(f"PoseTrack file {p}: not found")
    return [p]


def _read_json(p: Path) -> dict:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"PoseTrack file {p}: cannot read JSON ({e})") from None
    if not isinstance(data, dict) or "annotations" not in data:
        raise DataError(f"PoseTrack file {p}: expected a mapping with 'annotations'")
    return data


def load_posetrack(
    path: str | Path, images_from: Mapping[int, PoseTrackFrame] | None = None, *, joint_scores: bool = False
) -> tuple[dict[int, PoseTrackFrame], tuple[str, ...]]:
    """Read PoseTrack18 JSON (one file, or a folder of per-video files).

    Args:
        path: ground truth or predictions in the PoseTrack18 format (``images`` and ``annotations``
            with ``image_id``, ``track_id``, ``keypoints`` as 17 × (x, y, v/score)).
        images_from: for predictions without an ``images`` list: the ground-truth frames to take the
            video, order and ignore regions from.
        joint_scores: predictions: a person's ``scores`` (one per joint), when present and not
            empty, are its joints' scores (the third value of the frame's keypoints), as the
            official ``poseval`` reads them; else the third value of each ``keypoints`` triple is.
            False (ground truth): the third value is the visibility.

    Returns:
        (image id → frame, joint names).

    Raises:
        DataError: missing/invalid file, an annotation without ``track_id`` or of the wrong length,
            ``scores`` that are not K numbers, or an image id unknown to ``images_from``.
    """
    frames: dict[int, PoseTrackFrame] = {}
    names: tuple[str, ...] = ()
    for p in _files(path):
        data = _read_json(p)
        cats = data.get("categories") or []
        if cats and cats[0].get("keypoints"):
            names = tuple(cats[0]["keypoints"])
        images = {}
        for im in data.get("images", []):
            video = str(im.get("vid_id", Path(str(im.get("file_name", ""))).parent.name))
            regions = tuple(
                np.stack([np.asarray(xs, float), np.asarray(ys, float)], 1)
                for xs, ys in zip(im.get("ignore_regions_x", []), im.get("ignore_regions_y", []))
                if len(xs) >= 3 and len(xs) == len(ys)
            )
            images[int(im["id"])] = (
                video,
                int(im.get("frame_id", im["id"])),
                bool(im.get("is_labeled", True)),
                regions,
            )
        people: dict[int, list[dict]] = defaultdict(list)
        for i, a in enumerate(data["annotations"]):
            if "track_id" not in a or "keypoints" not in a:
                raise DataError(f"PoseTrack file {p}: annotation {i} has no 'track_id' or 'keypoints'")
            if joint_scores and a.get("scores"):
                a = {**a, "keypoints": _with_scores(a["keypoints"], a["scores"], f"PoseTrack file {p}: annotation {i}")}
            people[int(a["image_id"])].append(a)
        for image_id in set(images) | set(people):
            if image_id in images:
                video, order, labeled, regions = images[image_id]
            elif images_from is not None and image_id in images_from:
                ref = images_from[image_id]
                video, order, labeled, regions = ref.video, ref.order, ref.labeled, ref.ignore_regions
            else:
                raise DataError(f"PoseTrack file {p}: image_id {image_id} is not in 'images'")
            anns = people.get(image_id, [])
            kps = np.array([a["keypoints"] for a in anns], np.float64).reshape(len(anns), -1)
            if kps.shape[1] % 3 or (names and kps.size and kps.shape[1] != 3 * len(names)):
                raise DataError(f"PoseTrack file {p}: image {image_id}: keypoints must be K × 3 values")
            heads = np.full((len(anns), 4), np.nan)
            for j, a in enumerate(anns):
                if a.get("bbox_head"):
                    x, y, w, h = a["bbox_head"]
                    heads[j] = (x, y, x + w, y + h)
            frames[image_id] = PoseTrackFrame(
                image_id,
                video,
                order,
                labeled,
                np.array([int(a["track_id"]) for a in anns], np.int64),
                kps.reshape(len(anns), -1, 3),
                heads,
                regions,
            )
    return frames, names


def _with_scores(keypoints: Any, scores: Any, where: str) -> list[float]:
    """``keypoints`` (K × (x, y, v)) with each third value replaced by ``scores[k]``.

    Raises:
        DataError: ``scores`` is not a list of K numbers (K = ``len(keypoints) / 3``), naming ``where``.
    """
    try:
        kps = np.asarray(keypoints, np.float64).reshape(-1, 3)
        values = np.asarray(scores, np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: 'keypoints' and 'scores' must be lists of numbers") from None
    if values.shape != (len(kps),):
        raise DataError(
            f"{where}: 'scores' has {values.size} values, expected {len(kps)} (one per joint, as 'keypoints' "
            f"has {len(kps)} × 3)"
        )
    kps[:, 2] = values
    return kps.ravel().tolist()


def _inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N, 2) points → (N,) bool, even-odd rule."""
    x, y = points[:, 0:1], points[:, 1:2]
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return (np.sum(crosses & (x < xc), axis=1) % 2) == 1


def _outside_regions(kpts: np.ndarray, regions: tuple[np.ndarray, ...]) -> np.ndarray:
    """(P, K, 3) → (P, K) bool, False for joints inside an ignore region."""
    ok = np.ones(kpts.shape[:2], bool)
    if len(kpts):
        for poly in regions:
            ok &= ~_inside(kpts[..., :2].reshape(-1, 2), poly).reshape(kpts.shape[:2])
    return ok


def evaluate_posetrack(
    gt: Mapping[int, PoseTrackFrame],
    pred: Mapping[int, PoseTrackFrame],
    joint_names: Iterable[str] | None = None,
    pckh: float = 0.5,
    min_score: float = 0.0,
) -> PoseTrackMetrics:
    """PoseTrack keypoint MOTA of predictions against ground truth (labelled frames only).

    Args:
        gt: image id → ground-truth frame (from :func:`load_posetrack`).
        pred: image id → predicted frame; images without predictions count as empty.
        joint_names: names for ``mota_per_joint`` (default ``joint0``…).
        pckh: match radius as a fraction of the head size.
        min_score: predicted joints with a score at or below this are dropped (poseval keeps every
            predicted joint with a positive score: 0.0).

    Raises:
        DataError: joint counts differ, or a ground-truth person has no head box.
    """
    mm = require_motmetrics()
    labeled = sorted((f for f in gt.values() if f.labeled), key=lambda f: (f.video, f.order))
    k = next((f.keypoints.shape[1] for f in labeled if len(f.track_ids)), 0)
    names = list(joint_names or [f"joint{j}" for j in range(k)])
    accs: dict[tuple[str, int], Any] = {}  # motmetrics.MOTAccumulator (untyped)
    for f in labeled:
        g = f
        p = pred.get(f.image_id)
        if p is not None and len(p.track_ids) and p.keypoints.shape[1] != k:
            raise DataError(f"image {f.image_id}: predictions have {p.keypoints.shape[1]} joints, ground truth {k}")
        if len(g.track_ids) and np.isnan(g.head_boxes).any():
            raise DataError(f"image {f.image_id}: a ground-truth person has no 'bbox_head'")
        head = 0.6 * np.linalg.norm(g.head_boxes[:, 2:] - g.head_boxes[:, :2], axis=1)
        pk = p.keypoints if p is not None else np.zeros((0, k, 3))
        pid = p.track_ids if p is not None else np.zeros(0, np.int64)
        pred_ok = _outside_regions(pk, f.ignore_regions) & (pk[..., 2] > min_score)
        gt_ok = _outside_regions(g.keypoints, f.ignore_regions) & (g.keypoints[..., 2] > 0)
        for j in range(k):
            acc = accs.setdefault((f.video, j), mm.MOTAccumulator(auto_id=True))
            gi = np.flatnonzero(gt_ok[:, j])
            pi = np.flatnonzero(pred_ok[:, j])
            d = np.linalg.norm(g.keypoints[gi, None, j, :2] - pk[None, pi, j, :2], axis=2) / head[gi, None]
            acc.update(g.track_ids[gi].tolist(), pid[pi].tolist(), np.where(d <= pckh, d, np.nan))
    mh = mm.metrics.create()
    per_joint = {"fn": np.zeros(k), "fp": np.zeros(k), "sw": np.zeros(k), "gt": np.zeros(k), "pr": np.zeros(k)}
    for (_, j), acc in accs.items():
        s = mh.compute(
            acc,
            metrics=["num_misses", "num_false_positives", "num_switches", "num_objects", "num_predictions"],
            return_dataframe=False,
        )
        for key, mkey in (
            ("fn", "num_misses"),
            ("fp", "num_false_positives"),
            ("sw", "num_switches"),
            ("gt", "num_objects"),
            ("pr", "num_predictions"),
        ):
            per_joint[key][j] += s[mkey]
    err = per_joint["fn"] + per_joint["fp"] + per_joint["sw"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mota_j = np.where(per_joint["gt"] > 0, 1.0 - err / per_joint["gt"], np.nan)
    tot_gt, tot_pr = per_joint["gt"].sum(), per_joint["pr"].sum()
    matched = tot_gt - per_joint["fn"].sum()
    return PoseTrackMetrics(
        mota=float(1.0 - err.sum() / tot_gt) if tot_gt else float("nan"),
        mota_per_joint={n: float(v) for n, v in zip(names, mota_j)},
        precision=float(matched / tot_pr) if tot_pr else 0.0,
        recall=float(matched / tot_gt) if tot_gt else 0.0,
        idsw=int(per_joint["sw"].sum()),
        num_gt=int(tot_gt),
        num_fp=int(per_joint["fp"].sum()),
        num_misses=int(per_joint["fn"].sum()),
        num_frames=len(labeled),
    )
