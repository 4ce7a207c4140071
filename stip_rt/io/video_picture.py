"""What the pipeline sees of a decoded video frame: a BGR image in the file's own colours, square pixels, upright.

* **Colours**: YUV frames are converted with the matrix and range their file is tagged with
  (BT.709 HD, BT.601 SD, BT.2020, full or limited range), passed to swscale explicitly: PyAV before
  17 converted every frame with BT.601 whatever its tags (its ``reformat`` only applies a colorspace
  it is given). An untagged matrix is BT.601 and an untagged range limited (``yuvj`` formats: full),
  FFmpeg's defaults, as ``ffmpeg -pix_fmt bgr24`` and OpenCV read it. No tone mapping: HDR (PQ/HLG)
  frames are converted with their BT.2020 matrix to 8 bits as they are (they look flat and dim).
* **Square pixels**: an anamorphic video (a sample aspect ratio other than 1, e.g. PAL DVD 720×576
  with 64:45 for 16:9 or 16:15 for 4:3) is resampled to square pixels in the same swscale pass,
  keeping its height (``scale=iw*sar:ih`` in ffmpeg's words; 720×576 at 64:45 → 1024×576), as
  players show it: the pose network sees people in their true proportions, and keypoints, boxes,
  limb angles and the size in every output header are those of the square-pixel picture.
* **Upright**: then the display matrix is applied (:mod:`stip_rt.io.video_orientation`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from .video_orientation import Orientation, display_matrix, orientation

log = logging.getLogger(__name__)

# PyAV < 17 names no BT.2020 member but passes swscale's number (SWS_CS_BT2020) on
_BT2020: Any = getattr(Colorspace, "BT2020", 9)
# FFmpeg's AVColorSpace tags (the frame's ``colorspace``) → swscale's matrix; anything else (unspecified,
# RGB, YCgCo) → FFmpeg's default, BT.601
_MATRIX: dict[int, Any] = {
    1: Colorspace.ITU709,
    4: Colorspace.FCC,
    5: Colorspace.ITU601,  # BT.470BG (PAL)
    6: Colorspace.SMPTE170M,  # BT.601 (NTSC): the same matrix
    7: Colorspace.SMPTE240M,
    9: _BT2020,  # non-constant luminance
    10: _BT2020,  # constant luminance: converted as NCL (swscale has no CL matrix)
}
_FULL_RANGE = 2  # AVCOL_RANGE_JPEG
_SAR_LIMITS = (Fraction(1, 4), Fraction(4))  # a sample aspect ratio outside is taken for a damaged header


def colour_args(av_frame: Any) -> dict[str, Any]:
    """The source colorspace and range to give PyAV's ``reformat`` for ``av_frame`` (empty: RGB or grey input)."""
    fmt = av_frame.format
    if fmt.is_rgb or len(fmt.components) < 3:
        return {}
    full = int(av_frame.color_range) == _FULL_RANGE or fmt.name.startswith("yuvj")
    matrix = _MATRIX.get(int(av_frame.colorspace), Colorspace.ITU601)
    return {
        "src_colorspace": matrix,
        # RGB output has no matrix, but PyAV < 17 applies the source's only when the two differ
        "dst_colorspace": Colorspace.ITU601 if matrix == Colorspace.ITU709 else Colorspace.ITU709,
        "src_color_range": ColorRange.JPEG if full else ColorRange.MPEG,
        "dst_color_range": ColorRange.JPEG,  # RGB is full range
    }


def to_bgr(av_frame: Any, width: int | None = None) -> np.ndarray:
    """The (H, W, 3) uint8 BGR image of a decoded PyAV video frame, in the colours its tags say.

    Args:
        av_frame: a decoded ``av.VideoFrame``.
        width: resample to this width (square pixels), keeping the height; None: the stored width.
    """
    kwargs = colour_args(av_frame)
    if width is not None and width != av_frame.width:
        kwargs.update(width=width, height=av_frame.height, interpolation="BICUBIC")
    return av_frame.to_ndarray(format="bgr24", **kwargs)


def sample_aspect_ratio(stream: Any) -> Fraction | None:
    """The stream's sample (pixel) aspect ratio, as FFmpeg guesses it (container first); None: square or unknown."""
    for owner in (stream, stream.codec_context):
        sar = getattr(owner, "sample_aspect_ratio", None)
        if sar and sar > 0:
            return None if sar == 1 else Fraction(sar)
    return None


def square_width(width: int, sar: Fraction | None) -> int:
    """The width of a stored ``width``-pixel row shown in square pixels (``round(width × sar)``, at least 1)."""
    return width if sar is None else max(1, round(width * sar))


@dataclass(frozen=True, slots=True)
class Picture:
    """How the decoded frames of one video stream become the pipeline's BGR images.

    Attributes:
        sar: the sample aspect ratio the frames are resampled by (None: square pixels, used as stored).
        orientation: the display matrix's pixel moves (None: upright as stored).
    """

    sar: Fraction | None = None
    orientation: Orientation | None = None

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the image of a stored ``width`` × ``height`` frame."""
        w = square_width(width, self.sar)
        return self.orientation.size(w, height) if self.orientation is not None else (w, height)

    def image(self, av_frame: Any) -> np.ndarray:
        """The (H', W', 3) uint8 BGR C-contiguous image of a decoded frame: its colours, square pixels, upright."""
        width = square_width(av_frame.width, self.sar) if self.sar is not None else None
        image = to_bgr(av_frame, width)
        return self.orientation.apply(image) if self.orientation is not None else image


def picture_of(uri: str, stream: Any, first: Any | None) -> Picture:
    """How to show the frames of ``stream``, from its headers and its ``first`` decoded frame (None: none decoded).

    The display matrix comes from the first frame's side data (where FFmpeg's decoders put the
    container's matrix and the codec's display-orientation SEI); the sample aspect ratio from the
    stream's headers.
    """
    turn = orientation(display_matrix(first), uri) if first is not None else None
    sar = sample_aspect_ratio(stream)
    width, height = int(stream.codec_context.width), int(stream.codec_context.height)
    if sar is not None and not _SAR_LIMITS[0] <= sar <= _SAR_LIMITS[1]:
        log.warning("%s: ignored the implausible sample aspect ratio %s: frames are used as stored", uri, sar)
        sar = None
    picture = Picture(sar, turn)
    if sar is not None:
        log.info(
            "%s: anamorphic video (sample aspect ratio %s): its %dx%d frames are resampled to square pixels, %dx%d",
            uri, f"{sar.numerator}:{sar.denominator}", width, height, square_width(width, sar), height,
        )  # fmt: skip
    if turn is not None:
        log.info("%s: the video's display matrix is applied: frames are %s", uri, turn.text)
    return picture
