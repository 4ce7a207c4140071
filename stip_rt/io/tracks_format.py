"""The stip-rt.tracks format (JSON/JSONL) and the CSV columns: one home for how results become records.

Coordinates are pixels of the source frame (origin top-left, x right, y down), rounded to
2 decimals; scores are in [0, 1], rounded to 4 decimals; times are seconds, rounded to 4 decimals.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..types import FrameResult, RunInfo, Tracks

if TYPE_CHECKING:
    import jsonschema

FORMAT = "stip-rt.tracks"
VERSION = 1
SCHEMA_FILE = "tracks_schema.json"
PX_DECIMALS = 2
SCORE_DECIMALS = 4
TIME_DECIMALS = 4


def schema_path() -> Path:
    """Path of the JSON Schema (draft 2020-12) of the JSON and JSONL files, inside the installed package."""
    return Path(str(resources.files("stip_rt.io").joinpath(SCHEMA_FILE)))


@cache
def load_schema() -> dict[str, Any]:
    """The JSON Schema of a whole JSON document; ``$defs`` holds ``header`` and ``frame`` for JSONL lines."""
    return json.loads(schema_path().read_text(encoding="utf-8"))


def validator(part: Literal["document", "header", "frame"] = "document") -> jsonschema.Draft202012Validator:
    """A validator for a whole JSON document, or for one JSONL line (``header`` = line 1, ``frame`` = the others)."""
    import jsonschema

    schema = load_schema()
    if part != "document":
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{part}"}
    return jsonschema.Draft202012Validator(schema)


def _round(values: np.ndarray, decimals: int) -> list[Any]:
    return np.round(np.asarray(values, dtype=np.float64), decimals).tolist()


def header_record(run: RunInfo) -> dict[str, Any]:
    """Everything except the frames: format, version, source, skeleton (None when box-only), model."""
    s = run.source
    skeleton = None
    if run.schema is not None:
        skeleton = {
            "name": run.schema.name,
            "keypoints": list(run.schema.keypoints),
            "links": [list(link) for link in run.schema.links],
        }
    fps = float(s.fps) if s.fps and math.isfinite(s.fps) else None
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": {"uri": s.uri, "width": int(s.width), "height": int(s.height), "fps": fps,
                   "frame_count": None if s.frame_count is None else int(s.frame_count)},
        "skeleton": skeleton,
        "model": {"pose": run.pose_model, "detector": run.detector, "backend": run.backend},
    }  # fmt: skip


def people_records(tracks: Tracks) -> list[dict[str, Any]]:
    """One record per tracked person; ``keypoints`` is left out for box-only tracking, and
    ``"predicted": true`` is added for a person no detection measured in this frame (``det_index``
    −1: a track coasted through a frame the detector skipped, its box the Kalman prediction)."""
    ids = tracks.ids.tolist()
    boxes = _round(tracks.boxes, PX_DECIMALS)
    box_scores = _round(tracks.box_scores, SCORE_DECIMALS)
    scores = _round(tracks.scores, SCORE_DECIMALS)
    kps = None
    if tracks.keypoints is not None:
        k = np.asarray(tracks.keypoints, dtype=np.float64)
        kps = np.concatenate([np.round(k[..., :2], PX_DECIMALS), np.round(k[..., 2:3], SCORE_DECIMALS)], -1).tolist()
    predicted = (np.asarray(tracks.det_index) < 0).tolist()
    people = []
    for i, tid in enumerate(ids):
        person: dict[str, Any] = {"track_id": int(tid), "box": boxes[i], "box_score": box_scores[i], "score": scores[i]}
        if kps is not None:
            person["keypoints"] = kps[i]
        if predicted[i]:
            person["predicted"] = True
        people.append(person)
    return people


def is_finite(tracks: Tracks, time: float = 0.0) -> bool:
    """True when ``time`` and every box, score and keypoint of ``tracks`` is finite (no NaN or infinity,
    which the formats cannot hold: JSON has no such numbers, and CSV/MOT readers take them as missing)."""
    arrays = [tracks.boxes, tracks.box_scores, tracks.scores]
    if tracks.keypoints is not None:
        arrays.append(tracks.keypoints)
    return math.isfinite(time) and all(bool(np.isfinite(np.asarray(a, np.float64)).all()) for a in arrays)


def frame_record(result: FrameResult) -> dict[str, Any]:
    """``{"frame", "time", "people"}`` for one frame."""
    return {"frame": int(result.index), "time": round(float(result.time), TIME_DECIMALS),
            "people": people_records(result.tracks)}  # fmt: skip


def dumps(record: dict[str, Any]) -> str:
    """Compact JSON of one record; raises ValueError on NaN/inf (not valid JSON)."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


def csv_columns(keypoint_names: tuple[str, ...] | list[str] | None) -> list[str]:
    """CSV header: ``frame,time,track_id,box_x1..box_y2,box_score,score``, then ``<kp>_x,<kp>_y,<kp>_score``."""
    cols = ["frame", "time", "track_id", "box_x1", "box_y1", "box_x2", "box_y2", "box_score", "score"]
    for name in keypoint_names or ():
        cols += [f"{name}_x", f"{name}_y", f"{name}_score"]
    return cols


def csv_rows(frame: int, time: float, tracks: Tracks) -> list[list[Any]]:
    """CSV rows (one per person) in :func:`csv_columns` order, rounded like the JSON."""
    rows = []
    t = round(float(time), TIME_DECIMALS)
    for p in people_records(tracks):
        row = [int(frame), t, p["track_id"], *p["box"], p["box_score"], p["score"]]
        for kp in p.get("keypoints", ()):
            row += kp
        rows.append(row)
    return rows
