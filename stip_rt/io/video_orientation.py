"""Display orientation of video files: phone videos stored sideways are turned upright, as players show them.

A phone records a portrait video as landscape frames plus a *display matrix* (MP4/MOV ``tkhd``
matrix, Matroska projection, H.264/HEVC display-orientation SEI; the old ``rotate`` tag) that tells
players to turn (and, for some front cameras, mirror) the picture. FFmpeg's decoders attach it to
every frame as ``AV_FRAME_DATA_DISPLAYMATRIX`` side data. Like ffmpeg's ``autorotate`` (OpenCV's
``CAP_PROP_ORIENTATION_AUTO`` too, except that it ignores a mirror), the video source reads it from
the first frame it decodes (no second open, no extra decode; PyAV has no reader of the stream's side
data) and applies it to the decoded pixels (after the square-pixel resample of
:mod:`stip_rt.io.video_picture`), so detections, keypoints, the annotated video and the width/height in every
output header are those of the upright picture.

The matrix ``[[a, b, u], [c, d, v], [x, y, w]]`` (16.16 fixed point; see FFmpeg's
``libavutil/display.h``) maps a stored pixel ``(x, y)`` to ``(a·x + c·y, b·x + d·y)`` (then
shifted into view). Multiples of 90° with or without a mirror (the eight EXIF orientations) are
exact pixel moves; any other angle is left as stored, with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Orientation:
    """How to turn a stored frame upright: transpose first, then flip rows and/or columns.

    Attributes:
        transpose: swap the axes (a quarter turn, with the flips below): width and height swap.
        flip_rows: reverse the row order (top ↔ bottom) after the transpose.
        flip_cols: reverse the column order (left ↔ right) after the transpose.
        text: what it does, for logs (``"turned 90° clockwise"``).
    """

    transpose: bool
    flip_rows: bool
    flip_cols: bool
    text: str

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the upright frame of a stored ``width`` × ``height`` frame."""
        return (height, width) if self.transpose else (width, height)

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The upright (H', W', C) C-contiguous copy of a stored (H, W, C) frame."""
        out = cv2.transpose(image) if self.transpose else image
        if self.flip_rows or self.flip_cols:
            out = cv2.flip(out, -1 if self.flip_rows and self.flip_cols else 0 if self.flip_rows else 1)
        return out if out is not image else image.copy()


# (transpose, flip_rows, flip_cols) → description
_TEXT = {
    (False, False, True): "mirrored left-right",
    (False, True, False): "mirrored top-bottom",
    (False, True, True): "turned 180°",
    (True, False, False): "transposed (turned 90° clockwise and mirrored left-right)",
    (True, True, False): "turned 90° counter-clockwise",
    (True, False, True): "turned 90° clockwise",
    (True, True, True): "anti-transposed (turned 90° clockwise and mirrored top-bottom)",
}


def orientation(matrix: np.ndarray | None, uri: str = "") -> Orientation | None:
    """The pixel moves that display a frame as ``matrix`` says (None: as stored).

    Args:
        matrix: the 9 int32 values of a display matrix (row-major, 16.16 fixed point), or None.
        uri: the input, for the warning about an angle that is not a multiple of 90°.

    Returns:
        The orientation, or None for the identity, no matrix, or an angle that is not a multiple of
        90° (logged as a warning: the frames stay as stored).
    """
    if matrix is None or len(matrix) != 9:
        return None
    a, b, c, d = (int(np.sign(v)) for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    if a == d == 0 and b != 0 and c != 0:  # a quarter turn: x' ∝ c·y, y' ∝ b·x
        key = (True, b < 0, c < 0)
    elif b == c == 0 and a != 0 and d != 0:  # x' ∝ a·x, y' ∝ d·y
        key = (False, d < 0, a < 0)
    else:
        log.warning(
            "%s: the video's display matrix %s is not a multiple of 90°; its frames are used as stored",
            uri, [int(v) for v in matrix],
        )  # fmt: skip
        return None
    if key == (False, False, False):
        return None
    return Orientation(*key, text=_TEXT[key])


def display_matrix(frame: Any) -> np.ndarray | None:
    """The display matrix a decoded PyAV ``frame`` carries ((9,) int32), or None."""
    for data in frame.side_data:
        if data.type == SideDataType.DISPLAYMATRIX and data.buffer_size == 36:
            return np.frombuffer(data, dtype=np.int32).copy()
    return None
