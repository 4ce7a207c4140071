"""OpenPose-style output: one ``<stem>_<frame:012d>_keypoints.json`` per frame in a folder.

This is what biomechanics tools read (e.g. Pose2Sim with its ``COCO_17`` model for COCO-17
output). Keypoints are in the order of the stip-rt skeleton (not OpenPose's BODY_25).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SinkError
from ..types import FrameResult, RunInfo
from .sink_files import OutputLock, atomic_write_text, check_writable, lock_output, make_dir, write_error
from .source_config import source_stem
from .tracks_format import PX_DECIMALS, SCORE_DECIMALS

_EMPTY = ("face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d",
          "pose_keypoints_3d", "face_keypoints_3d", "hand_left_keypoints_3d", "hand_right_keypoints_3d")  # fmt: skip


def openpose_record(keypoints: np.ndarray, ids: np.ndarray) -> dict[str, Any]:
    """One OpenPose frame document from (N, K, 3) keypoints and (N,) track ids."""
    k = np.asarray(keypoints, dtype=np.float64)
    flat = np.concatenate([np.round(k[..., :2], PX_DECIMALS), np.round(k[..., 2:3], SCORE_DECIMALS)], -1)
    rows = flat.reshape(len(ids), -1).tolist() if len(ids) else []
    people = []
    for tid, kp in zip(ids.tolist(), rows):
        person: dict[str, Any] = {"person_id": [int(tid)], "pose_keypoints_2d": kp}
        person.update({key: [] for key in _EMPTY})
        people.append(person)
    return {"version": 1.3, "people": people}


class OpenPoseSink:
    """Per-frame OpenPose JSON files: ``people[].pose_keypoints_2d`` = ``[x0, y0, c0, x1, ...]`` in frame
    pixels and ``people[].person_id = [track_id]``.

    Like every other output, a run replaces what an earlier run wrote there: ``open`` removes the
    folder's files named as this sink names its own (``<stem>_<12 digits>_keypoints.json``, and the
    hidden temporary files of a killed run), so that the folder holds this run's frames only; other
    files are left alone. Each frame's file is written atomically (a hidden temporary file renamed
    into place): a file at a frame's name is always whole, also after a crash or a full disk.

    Args:
        folder: output folder (created if missing).
        stem: file-name prefix; None: the source's stem (:func:`~stip_rt.io.source_config.source_stem`:
            ``camera0`` for camera 0, ``imgs`` for ``imgs/*.jpg``).

    Raises:
        SinkError: the folder cannot be written; at ``open`` when the run has no keypoints (``--pose none``).
    """

    needs_image = False

    def __init__(self, folder: str | os.PathLike[str], *, stem: str | None = None) -> None:
        self.folder = Path(folder)
        check_writable(self.folder, is_dir=True)
        self.stem = stem
        self._lock: OutputLock | None = None

    def claim(self, run: RunInfo) -> None:
        if run.schema is None:
            raise SinkError(f"{self.folder}: OpenPose output needs keypoints, but this run tracks boxes only")
        if self._lock is None:
            self._lock = lock_output(self.folder)

    def open(self, run: RunInfo) -> None:
        self.claim(run)
        self.stem = self.stem or source_stem(run.source.uri)
        # this stem's frame files, and the hidden temporary ones a killed run left (atomic_write_text)
        name = rf"{re.escape(self.stem)}_\d{{12}}_keypoints\.json"
        frame_file = re.compile(rf"{name}|\.{name}\.[0-9a-f]{{8}}\.tmp")
        try:
            make_dir(self.folder)
            for old in self.folder.iterdir():
                if frame_file.fullmatch(old.name) and old.is_file():
                    old.unlink()
        except OSError as e:
            self.close()
            raise write_error(self.folder, e) from e
        except BaseException:
            self.close()
            raise

    def write(self, result: FrameResult) -> None:
        t = result.tracks
        kps = t.keypoints if t.keypoints is not None else np.zeros((0, 0, 3), np.float32)
        path = self.folder / f"{self.stem}_{result.index:012d}_keypoints.json"
        try:
            text = json.dumps(openpose_record(kps, t.ids), allow_nan=False)
        except ValueError as e:
            raise SinkError(f"{path}: frame {result.index}: non-finite number (NaN or infinity)") from e
        atomic_write_text(path, text, sync=False)  # a frame file is whole or absent, never cut off

    def close(self) -> None:
        """Nothing is buffered: every frame's file is complete when ``write`` returns; drops the lock."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()
