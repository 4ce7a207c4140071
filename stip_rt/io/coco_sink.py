"""COCO keypoint results (for evaluation), written atomically at the end with the writer of ``io/coco.py``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SinkError
from ..types import FrameResult, Poses, RunInfo
from .coco import poses_to_coco, write_coco_results
from .sink_files import OutputLock, check_writable, lock_output
from .tracks_format import PX_DECIMALS, SCORE_DECIMALS


class CocoSink:
    """The standard list of ``{"image_id", "category_id": 1, "keypoints": [x, y, s] * K, "score", "bbox"}``.

    ``image_id`` is the frame index; ``bbox`` is the track's box ``[x, y, w, h]`` px (the Kalman
    box, or the detector's with ``track.output_box: detection``); each entry also carries its
    ``track_id`` (COCO tools ignore extra keys). Like the JSON sink, results are kept until
    ``close()``, which writes them atomically, also after a failure.

    Args:
        path: output file (``.coco.json`` by convention).

    Raises:
        SinkError: the folder is not writable; at ``open`` when the run has no keypoints.
    """

    needs_image = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        check_writable(self.path)
        self._results: list[dict[str, Any]] | None = None
        self._lock: OutputLock | None = None

    def claim(self, run: RunInfo) -> None:
        if run.schema is None:
            raise SinkError(f"{self.path}: COCO keypoint results need keypoints, but this run tracks boxes only")
        if self._lock is None:
            self._lock = lock_output(self.path)

    def open(self, run: RunInfo) -> None:
        self.claim(run)
        self._results = []

    def write(self, result: FrameResult) -> None:
        if self._results is None:
            raise SinkError(f"{self.path}: write() before open()")
        t = result.tracks
        if not len(t):
            return
        kps = None if t.keypoints is None else np.asarray(t.keypoints, np.float64)
        if kps is not None:  # rounded as every tracks output (docs/formats.md)
            kps = np.concatenate([np.round(kps[..., :2], PX_DECIMALS), np.round(kps[..., 2:3], SCORE_DECIMALS)], -1)
        boxes = np.round(np.asarray(t.boxes, np.float64), PX_DECIMALS)
        entries = poses_to_coco(
            result.index, Poses(boxes, t.box_scores, kps, np.round(np.asarray(t.scores, np.float64), SCORE_DECIMALS))
        )
        for entry, tid in zip(entries, t.ids.tolist()):
            entry["bbox"] = [round(v, PX_DECIMALS) for v in entry["bbox"]]  # w = x2 - x1 without float noise
            entry["track_id"] = int(tid)
        self._results.extend(entries)

    def close(self) -> None:
        results, self._results = self._results, None
        try:
            if results is not None:
                write_coco_results(self.path, results)
        finally:
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.release()
