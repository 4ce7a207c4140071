"""Synthetic tracks files with known motion: people walking at a known speed with known joint angles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stip_rt.schemas import COCO17, KeypointSchema


def header(fps: float | None = 25.0, schema: KeypointSchema | None = None, size=(640, 480), uri="synthetic.mp4"):
    skeleton = None
    if schema is not None:
        skeleton = {"name": schema.name, "keypoints": list(schema.keypoints), "links": [list(x) for x in schema.links]}
    return {
        "format": "stip-rt.tracks",
        "version": 1,
        "source": {"uri": uri, "width": size[0], "height": size[1], "fps": fps, "frame_count": None},
        "skeleton": skeleton,
        "model": {"pose": "synthetic", "detector": "synthetic", "backend": "none"},
    }


def write_tracks(path: Path, people_per_frame: list[list[dict]], **header_kw) -> Path:
    """Write a JSONL tracks file; ``people_per_frame[f]`` is frame f's people records."""
    fps = header_kw.get("fps", 25.0) or 25.0
    lines = [json.dumps(header(**header_kw))]
    for f, people in enumerate(people_per_frame):
        lines.append(json.dumps({"frame": f, "time": round(f / fps, 4), "people": people}))
    path.write_text("\n".join(lines) + "\n")
    return path


def person(track_id: int, foot_xy, keypoints: np.ndarray | None = None, w=40.0, h=120.0) -> dict:
    """A person whose box bottom centre is at ``foot_xy``."""
    x, y = float(foot_xy[0]), float(foot_xy[1])
    rec = {"track_id": track_id, "box": [x - w / 2, y - h, x + w / 2, y], "box_score": 0.9, "score": 0.9}
    if keypoints is not None:
        rec["keypoints"] = np.asarray(keypoints, float).round(3).tolist()
    return rec


def pose(schema: KeypointSchema, x: float, lean_right: bool = False, score: float = 0.9) -> np.ndarray:
    """A person standing at x: left knee bent 90°, right leg straight, left elbow 90°, right arm down.

    Hips at y 300, knees at 350; the left ankle goes forward (+x) from the knee, the right one down.
    The trunk is vertical, or leans 45° to the image right.
    """
    idx = {n: i for i, n in enumerate(schema.keypoints)}
    kp = np.zeros((schema.num_keypoints, 3))
    kp[:, 2] = score
    sh_dx = 50.0 if lean_right else 0.0
    sh_y = 250.0 if lean_right else 200.0
    pts = {
        "left_hip": (x - 10, 300), "right_hip": (x + 10, 300),
        "left_knee": (x - 10, 350), "right_knee": (x + 10, 350),
        "left_ankle": (x + 40, 350), "right_ankle": (x + 10, 400),
        "left_shoulder": (x - 10 + sh_dx, sh_y), "right_shoulder": (x + 10 + sh_dx, sh_y),
        "left_elbow": (x - 10 + sh_dx, sh_y + 40), "right_elbow": (x + 10 + sh_dx, sh_y + 40),
        "left_wrist": (x + 30 + sh_dx, sh_y + 40), "right_wrist": (x + 10 + sh_dx, sh_y + 80),
    }  # fmt: skip
    for name, xy in pts.items():
        kp[idx[name], :2] = xy
    for name in set(schema.keypoints) - set(pts):  # head joints: somewhere above the shoulders
        kp[idx[name], :2] = (x + sh_dx, sh_y - 30)
    return kp


def walker(n: int, fps: float, px_per_s: float, x0: float = 100.0, y: float = 400.0) -> list[tuple[float, float]]:
    """Foot positions of a person walking right along y at ``px_per_s``."""
    return [(x0 + px_per_s * f / fps, y) for f in range(n)]


def coco_walk(path: Path, n: int = 50, fps: float = 25.0, px_per_s: float = 150.0) -> Path:
    """Track 1 walks right at ``px_per_s`` with the :func:`pose`; track 2 stands still from frame 10."""
    frames = []
    for f, (x, y) in enumerate(walker(n, fps, px_per_s)):
        people = [person(1, (x, y), pose(COCO17, x))]
        if f >= 10:
            people.append(person(2, (500, 420), pose(COCO17, 500, lean_right=True)))
        frames.append(people)
    return write_tracks(path, frames, fps=fps, schema=COCO17)
