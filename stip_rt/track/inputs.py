"""What the tracker takes, checked before any state changes: frame numbers and times, the people of a
frame, the frame rate and size. A refused input raises and leaves the tracker as it was."""

from __future__ import annotations

import logging
import math

import numpy as np

from ..errors import ConfigError, DataError
from ..schemas import KeypointSchema, schema_for_joints
from ..types import Poses


def frame_step(
    frame_index: int, last_frame: int | None, time: float | None, last_time: float | None, fps: float
) -> float:
    """Frames since the last update: 1 for the first; from the times when both are known.

    A step by the times within 10 % of the frame-number difference (timestamp rounding) counts as
    that difference, so constant-rate video steps by whole frames; otherwise (variable frame rate,
    a stall) the step is the time elapsed in frames of ``fps``.

    Args:
        frame_index: this frame's 0-based number.
        last_frame: the previous update's, or None before the first.
        time, last_time: their presentation times in seconds, or None.
        fps: the source's frame rate.

    Raises:
        DataError: a frame index that is not an integer or does not increase.
    """
    if isinstance(frame_index, bool) or not isinstance(frame_index, int | np.integer):
        raise DataError(f"tracker: frame index {frame_index!r} is not an integer")
    if last_frame is not None and frame_index <= last_frame:
        raise DataError(
            f"tracker: frame index {frame_index} after {last_frame}; frames must be given in increasing order"
        )
    if last_frame is None:
        return 1
    frames = int(frame_index) - last_frame
    if time is None or last_time is None or not time > last_time or not math.isfinite(time):
        return frames
    step = (time - last_time) * fps
    return frames if abs(step - frames) <= 0.1 * frames else step


def box_scores_of(poses: Poses) -> np.ndarray:
    """(N,) float64 box scores of ``poses``."""
    return np.asarray(poses.box_scores, np.float64).reshape(-1)


def check_poses(
    poses: Poses, frame: int, schema: KeypointSchema | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, KeypointSchema | None]:
    """The people of one frame as the tracker keeps them, checked.

    Args:
        poses: boxes (N, 4), scores (N,), box scores (N,), keypoints (N, K, 3) or None.
        frame: the frame's number, for messages.
        schema: the tracker's keypoint schema, or None (then the keypoints' joint count names it).

    Returns:
        boxes (N, 4) and scores (N,) float64 copies, keypoints (N, K, 3) float64 copy or None (a
        joint with a non-finite value becomes (0, 0, 0): not seen), and the schema (``schema``, or
        the one the keypoints named).

    Raises:
        DataError: arrays of the wrong shape, keypoints whose joint count matches no schema or not
            ``schema``.
    """
    raw = np.asarray(poses.boxes)
    if raw.size and (raw.ndim != 2 or raw.shape[1] != 4):
        raise DataError(f"frame {frame}: boxes must be (N, 4), got {raw.shape}")
    boxes = np.array(raw, np.float64).reshape(-1, 4)  # a copy: tracks keep rows of it
    scores = np.asarray(poses.scores, np.float64).reshape(-1)
    n = boxes.shape[0]
    if scores.shape[0] != n:
        raise DataError(f"frame {frame}: {n} boxes but {scores.shape[0]} scores")
    box_scores = box_scores_of(poses)
    if box_scores.shape[0] != n:
        raise DataError(f"frame {frame}: {n} boxes but {box_scores.shape[0]} box scores")
    if poses.keypoints is None:
        return boxes, scores, None, schema
    kpts = np.array(poses.keypoints, np.float64)  # a copy: tracks keep rows of it
    if kpts.ndim != 3 or kpts.shape[0] != n or kpts.shape[2] != 3:
        raise DataError(f"frame {frame}: keypoints must be (N={n}, K, 3), got {kpts.shape}")
    if schema is None:
        try:
            schema = schema_for_joints(kpts.shape[1])
        except ConfigError:
            raise DataError(
                f"frame {frame}: no keypoint schema has {kpts.shape[1]} joints; pass schema= to Tracker"
            ) from None
    if kpts.shape[1] != schema.num_keypoints:
        raise DataError(
            f"frame {frame}: keypoints have {kpts.shape[1]} joints, schema '{schema.name}' has {schema.num_keypoints}"
        )
    if not np.isfinite(kpts).all():  # a joint without a position counts as not seen
        kpts[~np.isfinite(kpts).all(axis=2)] = 0.0
    return boxes, scores, kpts, schema


def check_fps(fps: float) -> float:
    """``fps`` checked: a finite number > 0 (frames per second), as a float.

    Raises:
        ConfigError: anything else.
    """
    if isinstance(fps, bool) or not isinstance(fps, int | float | np.integer | np.floating) or not (
        math.isfinite(fps) and fps > 0
    ):
        raise ConfigError(f"tracker: fps must be a finite number > 0, got {fps!r}")
    return float(fps)


def check_frame_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    """``frame_size`` checked: None, or (width, height) as two numbers > 0.

    Raises:
        ConfigError: anything else.
    """
    if size is None:
        return None
    try:
        w, h = size
        ok = all(not isinstance(v, bool) and isinstance(v, int | float | np.integer | np.floating) for v in (w, h))
    except (TypeError, ValueError):
        ok = False
    if not ok or not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise ConfigError(f"tracker: frame_size must be (width, height) in pixels, both > 0, got {size!r}")
    return (int(w), int(h))


def log_skipped(log: logging.Logger, frame: int, bad: int, skipped: int) -> int:
    """Log ``bad`` people of ``frame`` skipped for a non-finite or empty box to ``log``; returns the new
    count (``skipped`` before).

    A warning the first time (``skipped`` 0 so far), then at debug level: a detections file with a bad
    box in every frame must not write a warning per frame into an overnight run's log.
    """
    first_time = skipped == 0
    log.log(
        logging.WARNING if first_time else logging.DEBUG,
        "frame %d: skipped %d people with a non-finite or empty box%s",
        frame, bad, " (later ones are logged at debug level)" if first_time else "",
    )  # fmt: skip
    return skipped + bad
