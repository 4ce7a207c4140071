"""Colours and pixel shape of decoded video, made for real with PyAV in tmp_path: YUV planes are computed here
with each standard's matrix and range from known RGB colours (an independent reference, not swscale), encoded
losslessly with the matching tags, and must come back as those colours; anamorphic video comes back in
square pixels, and the outputs say so."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stip_rt.cli import main
from stip_rt.io.sources import open_source

# RGB patches: saturated colours (where the matrices differ most), a skin tone, grey
COLOURS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200], [230, 200, 40], [224, 172, 140], [128, 128, 128]])
KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114), "bt2020": (0.2627, 0.0593)}
TAGS = {"bt709": 1, "bt601": 6, "bt2020": 9}  # AVColorSpace
LIMITED, FULL = 1, 2  # AVColorRange


def _patches(width: int, height: int) -> np.ndarray:
    """(H, W, 3) RGB: one vertical band per colour, each an even number of pixels wide (flat 4:2:0 chroma)."""
    band = width // len(COLOURS) // 2 * 2
    img = np.zeros((height, width, 3), np.int64)
    for i, c in enumerate(COLOURS):
        img[:, i * band : (i + 1) * band] = c
    img[:, len(COLOURS) * band :] = COLOURS[-1]
    return img


def _yuv(rgb: np.ndarray, matrix: str, rng: int, bits: int) -> list[np.ndarray]:
    """Y, Cb, Cr planes of ``rgb`` by the standard's equations (ITU-R BT.709/601/2020), ``bits`` deep."""
    kr, kb = KR_KB[matrix]
    r, g, b = (rgb[..., k] / 255 for k in range(3))
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 - 2 * kb), (r - y) / (2 - 2 * kr)
    top = (1 << bits) - 1
    if rng == FULL:
        planes = [y * top, cb * top + (top + 1) / 2, cr * top + (top + 1) / 2]
    else:
        s = 1 << (bits - 8)
        planes = [(16 + 219 * y) * s, (128 + 224 * cb) * s, (128 + 224 * cr) * s]
    return [np.clip(np.rint(p), 0, top) for p in planes]


def _write(
    path: Path,
    matrix: str | None,
    rng: int | None,
    *,
    size: tuple[int, int] = (192, 64),
    bits: int = 8,
    codec: str = "libx264",
    n: int = 2,
    sar: Fraction | None = None,
    rotation: int | None = None,
    picture: np.ndarray | None = None,
) -> np.ndarray:
    """Encode ``n`` lossless 4:2:0 frames of :func:`_patches` (or ``picture``) with ``matrix``/``rng`` (None: untagged
    but encoded as BT.601 / limited); returns the RGB picture."""
    width, height = size
    rgb = _patches(width, height) if picture is None else picture
    y, u, v = _yuv(rgb, matrix or "bt601", rng or LIMITED, bits)
    u, v = u[::2, ::2], v[::2, ::2]  # the bands are flat: subsampling by picking keeps them exact
    pix_fmt = "yuv420p" if bits == 8 else "yuv420p10le"
    dtype = np.uint8 if bits == 8 else np.uint16
    stacked = np.concatenate([y, u.reshape(height // 4, width), v.reshape(height // 4, width)]).astype(dtype)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=25, options={"qp": "0"} if codec == "libx264" else {})
        s.width, s.height, s.pix_fmt = width, height, pix_fmt
        if matrix is not None:
            s.codec_context.colorspace = TAGS[matrix]
        if rng is not None:
            s.codec_context.color_range = rng
        if sar is not None:
            s.codec_context.sample_aspect_ratio = sar
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(stacked, format=pix_fmt)
            frame.pts = i
            if matrix is not None:
                frame.colorspace = TAGS[matrix]
            if rng is not None:
                frame.color_range = rng
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return rgb


def _band_centres(bgr: np.ndarray) -> np.ndarray:
    """The RGB colour at the middle of each colour band of a decoded BGR frame."""
    h, w = bgr.shape[:2]
    band = w // len(COLOURS) // 2 * 2
    return np.array([bgr[h // 2, i * band + band // 2, ::-1] for i in range(len(COLOURS))], np.int64)


def _colour_error(path: Path) -> int:
    with open_source(path) as src:
        frames = list(src)
    assert frames
    return int(max(np.abs(_band_centres(f.image) - COLOURS).max() for f in frames))


# ---------------------------------------------------------------- colour matrix and range


@pytest.mark.parametrize(
    ("name", "matrix", "rng", "size"),
    [
        ("hd_bt709.mp4", "bt709", LIMITED, (1280, 720)),  # HD camera / phone video
        ("hd_bt709_full.mp4", "bt709", FULL, (1280, 720)),  # phones that record full range (x264: yuvj420p)
        ("sd_bt601_full.mkv", "bt601", FULL, (720, 576)),
        ("sd_bt601.mkv", "bt601", LIMITED, (720, 576)),  # SD: PAL / NTSC
        ("uhd_bt2020.mkv", "bt2020", LIMITED, (384, 64)),  # the matrix of HDR video (no tone mapping: SDR here)
    ],
)  # fmt: skip
def test_frames_have_the_colours_their_tags_say(tmp_path: Path, name: str, matrix: str, rng: int, size) -> None:
    """Converted with the tagged matrix and range (PyAV < 17 used BT.601 limited for all: 29-47 levels off
    for BT.709, 18 for full-range BT.601). Off by at most 3 levels (8-bit rounding, twice)."""
    _write(tmp_path / name, matrix, rng, size=size)
    assert _colour_error(tmp_path / name) <= 3


def test_ten_bit_bt709(tmp_path: Path) -> None:
    path = tmp_path / "ten_bit.mkv"
    _write(path, "bt709", LIMITED, bits=10, codec="ffv1")
    assert _colour_error(path) <= 3


def test_untagged_video_is_read_as_bt601_limited_as_ffmpeg_does(tmp_path: Path) -> None:
    """No tags: FFmpeg's defaults (BT.601, limited range), what ``ffmpeg -pix_fmt bgr24``, OpenCV and PyAV's
    own RGB → YUV conversion use (a player may guess BT.709 for HD instead)."""
    path = tmp_path / "untagged.mp4"
    _write(path, None, None, size=(1280, 720))
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        assert (int(frame.colorspace), int(frame.color_range)) == (2, 0)  # unspecified, unspecified
    assert _colour_error(path) <= 3


def test_colour_arguments_for_rgb_and_grey_input() -> None:
    from stip_rt.io.video_picture import colour_args

    for fmt in ("gbrp", "bgr24", "gray"):
        assert colour_args(av.VideoFrame(16, 16, fmt)) == {}
    args = colour_args(av.VideoFrame(16, 16, "yuvj420p"))  # an MJPEG frame: full range by its format
    assert args["src_color_range"] == 2 and args["src_colorspace"] != args["dst_colorspace"]


# ---------------------------------------------------------------- anamorphic video (non-square pixels)


def _anamorphic(path: Path, sar: Fraction, rotation: int | None = None, n: int = 2) -> None:
    """720×576 stored, with a grey square on dark ground, square as shown: 128 shown pixels = 128 / sar stored."""
    pic = np.full((576, 720, 3), 30, np.int64)
    w = round(128 / sar)
    pic[200:328, 300 : 300 + w] = 200
    _write(path, "bt601", LIMITED, size=(720, 576), sar=sar, rotation=rotation, n=n, picture=pic)


@pytest.mark.parametrize(("sar", "width"), [(Fraction(64, 45), 1024), (Fraction(16, 15), 768), (Fraction(8, 9), 640)])
def test_anamorphic_video_is_resampled_to_square_pixels(tmp_path: Path, sar: Fraction, width: int) -> None:
    """A DVD's 720×576 with 16:9 (64:45) or 4:3 (16:15) pixels, and NTSC-style narrow ones (8:9): the frames and
    ``SourceInfo`` are ``round(720 × sar)`` × 576, and a square as shown is square in the frames."""
    path = tmp_path / "dvd.mkv"
    _anamorphic(path, sar)
    with av.open(str(path)) as c:
        assert c.streams.video[0].sample_aspect_ratio == sar
    with open_source(path) as src:
        frames, info = list(src), src.info
    assert (info.width, info.height) == (width, 576)
    img = frames[0].image
    assert img.shape == (576, width, 3) and img.flags.c_contiguous
    ys, xs = np.nonzero(img[..., 1] > 115)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    assert h == 128 and abs(w - 128) <= 2  # square again (edges of the resample)


def test_anamorphic_portrait_video_is_square_then_upright(tmp_path: Path) -> None:
    path = tmp_path / "turned.mp4"
    _anamorphic(path, Fraction(64, 45), rotation=-90, n=1)
    with open_source(path) as src:
        frames, info = list(src), src.info
    assert (info.width, info.height) == (576, 1024) and frames[0].image.shape == (1024, 576, 3)


def test_anamorphic_outputs_are_in_square_pixels(tmp_path: Path) -> None:
    """The tracks' header and the annotated video have the delivered frame's size (1024×576), as the boxes have."""
    video = tmp_path / "dvd.mp4"
    _anamorphic(video, Fraction(64, 45), n=3)
    dets = tmp_path / "dets.txt"
    dets.write_text("".join(f"{f},-1,420,200,128,128,0.9,-1,-1,-1\n" for f in range(1, 4)))
    out, annotated = tmp_path / "t.jsonl", tmp_path / "a.mp4"
    argv = ["track", str(video), "--pose", "none", "-D", str(dets), "-o", str(out), "--video", str(annotated)]
    assert main(argv) == 0
    header = json.loads(out.read_text().splitlines()[0])
    assert (header["source"]["width"], header["source"]["height"]) == (1024, 576)
    with av.open(str(annotated)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height, s.frames) == (1024, 576, 3)
        assert s.sample_aspect_ratio in (None, 0, 1)  # square pixels
