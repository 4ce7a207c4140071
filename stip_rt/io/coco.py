"""COCO-format files: keypoint ground truth, keypoint results and person detections.

Every reader validates what it reads and raises one :class:`~stip_rt.errors.DataError`
naming the file and the first offending entry (its index in the list) instead of letting a
library crash deep inside.

Detection boxes (COCO results with ``bbox`` = [x, y, w, h] pixels) follow the official test
protocol — boxes partly outside the image are used as they are (the crop is zero-padded) —
with one documented clamp:

* a box whose width or height is below 1 px is widened to 1 px about its centre (a zero-size
  box would give a singular crop);
* a box that does not overlap the image at all is dropped (needs the image size; logged).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, SinkError
from ..types import Detections, Poses
from .sink_files import atomic_write_text

log = logging.getLogger(__name__)

MIN_BOX_SIZE = 1.0
PERSON_CATEGORY = 1  # the person category id of COCO, CrowdPose, OCHuman and PoseTrack


def _read_json(path: str | Path, what: str) -> Any:
    p = Path(path)
    try:
        with p.open("r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{what} {p}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{what} {p}: is a directory, expected a JSON file") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{what} {p}: invalid JSON at line {e.lineno} column {e.colno} ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{what} {p}: cannot read ({e})") from None


def _need_keys(entry: Any, keys: Iterable[str], where: str) -> None:
    if not isinstance(entry, Mapping):
        raise DataError(f"{where}: expected an object, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise DataError(f"{where}: missing key(s) {', '.join(repr(k) for k in missing)} (has {sorted(entry)})")


def _finite_numbers(values: Any, n: int | None, where: str, field: str) -> np.ndarray:
    if not isinstance(values, list | tuple):
        raise DataError(f"{where}: '{field}' must be a list of numbers, got {type(values).__name__}")
    if n is not None and len(values) != n:
        raise DataError(f"{where}: '{field}' has {len(values)} values, expected {n}")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: '{field}' must contain only numbers") from None
    if arr.ndim != 1:
        raise DataError(f"{where}: '{field}' must be a flat list of numbers")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{where}: '{field}' contains NaN or infinity")
    return arr


def _num(value: Any, where: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataError(f"{where}: '{field}' must be a finite number, got {value!r}")
    return float(value)


def read_coco_gt(path: str | Path, num_keypoints: int | None = None) -> dict[str, Any]:
    """Read and validate a COCO-format person-keypoint ground-truth file (COCO or CrowdPose).

    Every annotation needs ``image_id``, ``keypoints``, ``bbox``, ``num_keypoints`` (an integer
    ≥ 0) and ``iscrowd`` (0 or 1), as in the official files: pycocotools and xtcocotools fail on
    a missing ``num_keypoints`` or ``iscrowd``, and faster-coco-eval silently ignores every
    person without ``num_keypoints``, so neither is derived here.

    Args:
        path: the annotation JSON.
        num_keypoints: expected K (17 COCO, 14 CrowdPose), or None to accept the file's.

    Returns:
        The dataset dict as read (``images``, ``annotations``, ``categories``, ...).

    Raises:
        DataError: unreadable file, missing keys, duplicate image ids, annotations of unknown
            images, wrong keypoint counts, NaN values, a ``num_keypoints`` or ``iscrowd`` that
            is not an integer ≥ 0 / 0 or 1. The message names the file and entry.
    """
    p = Path(path)
    data = _read_json(p, "ground truth")
    _need_keys(data, ("images", "annotations", "categories"), f"ground truth {p}")
    ids: set[int] = set()
    for i, img in enumerate(data["images"]):
        where = f"ground truth {p}: images[{i}]"
        _need_keys(img, ("id",), where)
        if img["id"] in ids:
            raise DataError(f"{where}: duplicate image id {img['id']}")
        ids.add(img["id"])
    for i, ann in enumerate(data["annotations"]):
        where = f"ground truth {p}: annotations[{i}]"
        _need_keys(ann, ("image_id", "keypoints", "bbox", "num_keypoints", "iscrowd"), where)
        if type(ann["num_keypoints"]) is not int or ann["num_keypoints"] < 0:
            raise DataError(f"{where}: 'num_keypoints' must be an integer >= 0, got {ann['num_keypoints']!r}")
        if ann["iscrowd"] not in (0, 1):
            raise DataError(f"{where}: 'iscrowd' must be 0 or 1, got {ann['iscrowd']!r}")
        if ann["image_id"] not in ids:
            raise DataError(f"{where}: image_id {ann['image_id']!r} is not in 'images'")
        kp = _finite_numbers(ann["keypoints"], None, where, "keypoints")
        if len(kp) % 3:
            raise DataError(f"{where}: 'keypoints' has {len(kp)} values, not a multiple of 3")
        if num_keypoints is not None and len(kp) != 3 * num_keypoints:
            raise DataError(f"{where}: 'keypoints' has {len(kp) // 3} joints, expected {num_keypoints}")
        _finite_numbers(ann["bbox"], 4, where, "bbox")
    return data


def keypoint_category(data: Mapping[str, Any], where: str) -> int:
    """The id of the keypoint (person) category of a COCO-format ground truth.

    As the official COCO loaders read a file's ``categories``: the category with a non-empty
    ``keypoints`` list, else the one named ``person``. COCO, CrowdPose, OCHuman and PoseTrack use
    1; a custom dataset may use another id (0, 7, ...), which training, validation and evaluation
    then use, and with which results are written. A file without ``categories`` (a hand-made
    training file; COCO evaluation needs the key) is taken as COCO's: 1.

    Args:
        data: the dataset dict.
        where: names the file in the message (``ground truth PATH``).

    Raises:
        DataError: ambiguous categories (several keypoint categories, or none and not exactly one
            named ``person``) or a category id that is not an integer, naming the file.
    """
    cats = data.get("categories")
    if cats is None:
        return PERSON_CATEGORY
    if not isinstance(cats, list):
        raise DataError(f"{where}: 'categories' must be a list, got {type(cats).__name__}")
    for i, c in enumerate(cats):
        _need_keys(c, ("id",), f"{where}: categories[{i}]")
    with_kps = [c for c in cats if isinstance(c.get("keypoints"), list) and c["keypoints"]]
    chosen = with_kps or [c for c in cats if str(c.get("name", "")).strip().lower() == "person"]
    if len(chosen) != 1:
        listed = ", ".join(f"id {c['id']!r} {c.get('name', '')!r}" for c in cats) or "none"
        why = ("several categories have 'keypoints'" if len(with_kps) > 1
               else "several categories are named 'person'" if chosen
               else "no category has 'keypoints' or is named 'person'")
        raise DataError(f"{where}: cannot tell which category holds the people: {why} (categories: {listed}); "
                        f"keep one keypoint category")
    cid = chosen[0]["id"]
    if isinstance(cid, bool) or not isinstance(cid, int):
        raise DataError(f"{where}: category {chosen[0].get('name', '')!r} has id {cid!r}, expected an integer")
    return cid


def read_coco_results(
    path: str | Path, num_keypoints: int | None = None, known_image_ids: Iterable[int] | None = None
) -> list[dict[str, Any]]:
    """Read and validate a COCO keypoint-results file (list of person predictions).

    Args:
        path: the results JSON.
        num_keypoints: expected K, or None.
        known_image_ids: image ids of the ground truth; an entry with another id is an error.

    Returns:
        The entries as read (``image_id``, ``category_id``, ``keypoints``, ``score``, extra keys kept).

    Raises:
        DataError: not a list, missing keys, wrong keypoint count, NaN, unknown image id.
    """
    p = Path(path)
    data = _read_json(p, "results")
    if not isinstance(data, list):
        raise DataError(f"results {p}: expected a JSON list of predictions, got {type(data).__name__}")
    known = None if known_image_ids is None else set(known_image_ids)
    for i, r in enumerate(data):
        where = f"results {p}: entry [{i}]"
        _need_keys(r, ("image_id", "category_id", "keypoints", "score"), where)
        n = None if num_keypoints is None else 3 * num_keypoints
        kp = _finite_numbers(r["keypoints"], None, where, "keypoints")
        if n is not None and len(kp) != n:
            raise DataError(
                f"{where}: 'keypoints' has {len(kp)} values ({len(kp) / 3:g} joints), "
                f"expected {n} ({num_keypoints} joints)"
            )
        _num(r["score"], where, "score")
        if known is not None and r["image_id"] not in known:
            raise DataError(f"{where}: image_id {r['image_id']!r} is not in the ground truth")
    return data


def read_coco_detections(
    path: str | Path,
    image_sizes: Mapping[int, tuple[int, int]] | None = None,
    score_threshold: float = 0.0,
    category_id: int = 1,
) -> dict[int, Detections]:
    """Read person detections (COCO results with ``bbox``) into per-image :class:`Detections`.

    Args:
        path: the detections JSON (list of ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``).
        image_sizes: image id → (width, height). When given, an entry for another image id is an
            error and boxes entirely outside their image are dropped.
        score_threshold: keep boxes with score ≥ this (the official ``IMAGE_THRE``, 0 for STIP).
        category_id: keep only this category: the ground truth's person category
            (:func:`keypoint_category`). A file without any box of it but with boxes of
            category 1 (COCO's person, as COCO-trained detectors and ``stip-rt detect`` write
            them) gives those (logged); with neither, it is an error.

    Returns:
        image id → Detections (boxes (N, 4) float32 xyxy px, in file order). Images in
        ``image_sizes`` without any box map to empty Detections.

    Raises:
        DataError: not a list, missing keys, NaN, negative box size, unknown image id; boxes, but
            none of a ``category_id`` other than 1 nor of 1.
    """
    p = Path(path)
    data = _read_json(p, "detections")
    if not isinstance(data, list):
        raise DataError(f"detections {p}: expected a JSON list of boxes, got {type(data).__name__}")
    category_id = _detection_category(data, category_id, p)
    boxes: dict[int, list[list[float]]] = {i: [] for i in (image_sizes or {})}
    scores: dict[int, list[float]] = {i: [] for i in (image_sizes or {})}
    dropped = widened = 0
    for i, d in enumerate(data):
        where = f"detections {p}: entry [{i}]"
        _need_keys(d, ("image_id", "bbox", "score"), where)
        if d.get("category_id", PERSON_CATEGORY) != category_id:
            continue
        x, y, w, h = _finite_numbers(d["bbox"], 4, where, "bbox")
        score = _num(d["score"], where, "score")
        if w < 0 or h < 0:
            raise DataError(f"{where}: 'bbox' has a negative size (w={w:g}, h={h:g}); expected [x, y, w, h]")
        img = d["image_id"]
        if image_sizes is not None and img not in image_sizes:
            raise DataError(f"{where}: image_id {img!r} is not among the images")
        if score < score_threshold:
            continue
        if w < MIN_BOX_SIZE or h < MIN_BOX_SIZE:
            cx, cy = x + w / 2, y + h / 2
            w, h = max(w, MIN_BOX_SIZE), max(h, MIN_BOX_SIZE)
            x, y = cx - w / 2, cy - h / 2
            widened += 1
        if image_sizes is not None:
            iw, ih = image_sizes[img]
            if x >= iw or y >= ih or x + w <= 0 or y + h <= 0:
                dropped += 1
                continue
        boxes.setdefault(img, []).append([x, y, x + w, y + h])
        scores.setdefault(img, []).append(score)
    if widened or dropped:
        log.warning(
            "detections %s: %d box(es) under %g px widened, %d outside their image dropped",
            p,
            widened,
            MIN_BOX_SIZE,
            dropped,
        )
    return {
        img: Detections(np.asarray(b, np.float32).reshape(-1, 4), np.asarray(scores[img], np.float32))
        for img, b in boxes.items()
    }


def _detection_category(data: list[Any], category_id: int, path: Path) -> int:
    """The category :func:`read_coco_detections` keeps: ``category_id``, else COCO's person (see there)."""
    present = {repr(d.get("category_id", PERSON_CATEGORY)) for d in data if isinstance(d, Mapping)}
    if not data or category_id == PERSON_CATEGORY or repr(category_id) in present:
        return category_id  # COCO's person: a file without any is "no person boxes" (stip_rt.detect.files warns)
    if repr(PERSON_CATEGORY) in present:
        log.info("detections %s: no box of category %d; using its category-%d boxes (COCO's person)", path,
                 category_id, PERSON_CATEGORY)
        return PERSON_CATEGORY
    raise DataError(f"detections {path}: none of its {len(data)} boxes is of the person category {category_id} "
                    f"(nor of COCO's person category {PERSON_CATEGORY}); categories: {', '.join(sorted(present))}")


def poses_to_coco(image_id: int | str, poses: Poses, category_id: int = 1, bbox: bool = True) -> list[dict[str, Any]]:
    """COCO keypoint results of one image.

    Args:
        image_id: the image's id (a number, or a file stem where the name is not one: `stip-rt predict`).
        poses: people with keypoints (N, K, 3) frame pixels and their (N, 4) xyxy boxes.
        category_id: the person category: 1 (COCO), or the ground truth's (:func:`keypoint_category`).
        bbox: add each person's box as ``"bbox": [x, y, w, h]`` pixels (the detector's box, or
            the tracked box). pycocotools then takes a result's ``area`` from it instead of from the
            keypoints' extent; :func:`stip_rt.eval.keypoints.evaluate_keypoints` ignores it.

    Returns:
        ``[{"image_id", "category_id", "keypoints": [x, y, s] * K, "score", "bbox"}]``, one per
        person; an image without people gives ``[]``.
    """
    if len(poses) == 0:
        return []
    if poses.keypoints is None:
        raise DataError(f"image {image_id}: poses have no keypoints, cannot write COCO keypoint results")
    kps = poses.keypoints.astype(np.float64).reshape(len(poses), -1)
    out = [
        {"image_id": image_id, "category_id": category_id, "keypoints": [float(v) for v in k], "score": float(s)}
        for k, s in zip(kps, poses.scores)
    ]
    if bbox:
        b = np.asarray(poses.boxes, np.float64).reshape(len(poses), 4)
        xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)
        for entry, box in zip(out, xywh.tolist()):
            entry["bbox"] = box
    return out


def write_coco_results(path: str | Path, results: Sequence[Mapping[str, Any]]) -> Path:
    """Write COCO results atomically (temp file in the same folder, then rename; usual file mode).

    Raises:
        SinkError: the folder does not exist or is not writable; a NaN or infinity in the results
            (not representable in JSON).
    """
    p = Path(path)
    try:
        text = json.dumps(list(results), allow_nan=False)
    except ValueError as e:
        raise SinkError(f"{p}: cannot write a non-finite number (NaN or infinity) as JSON") from e
    atomic_write_text(p, text)
    return p
