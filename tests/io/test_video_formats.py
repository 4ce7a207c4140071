"""Video files as phones and editors write them, made for real with PyAV in tmp_path: display rotation,
audio or cover art before the video, several video streams, variable frame rate, odd sizes and pixel formats."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stip_rt.cli import main
from stip_rt.errors import SourceError
from stip_rt.io.sources import open_source
from stip_rt.io.video_orientation import orientation


def _picture(width: int, height: int, i: int = 0) -> np.ndarray:
    """An (H, W, 3) RGB frame with a red block at the stored top-left and a moving grey square."""
    img = np.full((height, width, 3), 40, np.uint8)
    img[: height // 6, : width // 5] = (255, 0, 0)
    y, x = height // 2, width // 4 + 3 * i
    img[y - 10 : y + 10, x - 10 : x + 10] = 200
    return img


def _write(
    path: Path,
    *,
    size: tuple[int, int] = (320, 240),
    n: int = 6,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    hflip: bool = False,
    times: list[float] | None = None,
    audio_first: bool = False,
) -> Path:
    """Write ``n`` frames of :func:`_picture`; ``rotation`` (degrees counter-clockwise, PyAV's convention)
    and ``hflip`` set the display matrix, ``times`` (seconds) the frames' pts."""
    width, height = size
    tb = Fraction(1, 90000)
    with av.open(str(path), "w") as c:
        audio = c.add_stream("aac", rate=48000) if audio_first else None
        s = c.add_stream(codec, rate=30)
        s.width, s.height, s.pix_fmt = width, height, pix_fmt
        if times is not None:
            s.codec_context.time_base = tb
            s.time_base = tb
        if rotation is not None or hflip:
            s.set_display_rotation(rotation or 0, hflip=hflip)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(_picture(width, height, i), format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = round(times[i] / tb), tb
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        if audio is not None:
            samples = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            samples.sample_rate, samples.pts = 48000, 0
            for p in [*audio.encode(samples), *audio.encode()]:
                c.mux(p)
    return path


def _decode(path: Path, **kw) -> tuple[list, object]:
    with open_source(path, **kw) as src:
        return list(src), src.info


# ---------------------------------------------------------------- display rotation (phone videos)

# (rotation ccw, hflip) → the numpy move that shows the stored frame as players do (PyAV: rotate, then mirror)
ORIENTATIONS = {
    (-90, False): lambda a: np.rot90(a, -1),  # the phone's 'rotate=90' tag: portrait video stored landscape
    (90, False): lambda a: np.rot90(a, 1),
    (180, False): lambda a: np.rot90(a, 2),
    (0, True): lambda a: a[:, ::-1],  # a front camera's mirror
    (180, True): lambda a: a[::-1],
    (90, True): lambda a: np.rot90(a, 1)[:, ::-1],
    (-90, True): lambda a: np.rot90(a, -1)[:, ::-1],
}


@pytest.mark.parametrize(("rotation", "hflip"), list(ORIENTATIONS))
def test_display_matrix_turns_frames_upright(tmp_path: Path, rotation: int, hflip: bool) -> None:
    # lossless, so the upright frames must equal the stored ones moved exactly
    kw = {"size": (64, 48), "n": 3, "codec": "ffv1", "pix_fmt": "yuv444p"}
    stored, stored_info = _decode(_write(tmp_path / "plain.mkv", **kw))
    upright, info = _decode(_write(tmp_path / "turned.mkv", rotation=rotation, hflip=hflip, **kw))
    move = ORIENTATIONS[(rotation, hflip)]
    assert len(upright) == len(stored) == 3
    for a, b in zip(stored, upright, strict=True):
        expected = move(a.image)
        assert b.image.shape == expected.shape and b.image.flags.c_contiguous
        np.testing.assert_array_equal(b.image, expected)
        assert (b.index, b.time) == (a.index, a.time)
    assert (info.width, info.height) == (upright[0].image.shape[1], upright[0].image.shape[0])
    assert (stored_info.width, stored_info.height) == (64, 48)


def test_portrait_phone_video_outputs_are_upright(tmp_path: Path) -> None:
    """A portrait phone video (landscape frames + rotate=90): the tracks' header, the annotated video
    and the frames the detector sees are 240 wide and 320 high, with the stored top-left at the top right."""
    video = _write(tmp_path / "phone.mp4", rotation=-90)
    frames, info = _decode(video, start=2)
    assert (info.width, info.height) == (240, 320)
    red = np.argwhere((frames[0].image[..., 2] > 200) & (frames[0].image[..., 0] < 80))
    assert red[:, 0].max() < 320 // 4 and red[:, 1].min() > 240 * 3 // 4  # top right
    dets = tmp_path / "dets.txt"
    dets.write_text("".join(f"{f},-1,50,60,40,100,0.9,-1,-1,-1\n" for f in range(1, 7)))
    out, annotated = tmp_path / "t.jsonl", tmp_path / "a.mp4"
    argv = ["track", str(video), "--pose", "none", "-D", str(dets), "-o", str(out), "--video", str(annotated)]
    assert main(argv) == 0
    header = json.loads(out.read_text().splitlines()[0])
    assert (header["source"]["width"], header["source"]["height"]) == (240, 320)
    with av.open(str(annotated)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height, s.frames) == (240, 320, 6)


@pytest.mark.parametrize(
    ("name", "rotation", "start"), [("turned.mkv", 90, 0), ("phone.mp4", -90, 4), ("plain.mp4", None, 0)]
)
def test_opening_a_video_opens_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, rotation: int | None, start: int
) -> None:
    """The display matrix is read from the first frame the source decodes anyway: no second open of the
    file and no frame decoded twice (the old probe opened the file again and decoded its frame 0), also
    when ``start`` seeks past it."""
    video = _write(tmp_path / name, size=(64, 48), n=8, rotation=rotation)
    opened: list[str] = []
    real_open = av.open

    def counting_open(*args, **kwargs):
        opened.append(str(args[0]))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", counting_open)
    src = open_source(video, start=start)
    assert opened == [str(video)]  # the open itself: the matrix is known without another
    frames = list(src)
    assert opened == [str(video)]
    assert [f.index for f in frames] == list(range(start, 8))
    assert frames[0].image.shape == ((48, 64, 3) if rotation is None else (64, 48, 3))


def test_orientation_of_other_angles_is_left_as_stored(caplog: pytest.LogCaptureFixture) -> None:
    c, s = int(np.cos(np.pi / 4) * 65536), int(np.sin(np.pi / 4) * 65536)
    assert orientation(np.array([c, -s, 0, s, c, 0, 0, 0, 1 << 30], np.int32), "tilted.mp4") is None
    assert "tilted.mp4" in caplog.text and "not a multiple of 90" in caplog.text
    assert orientation(np.array([65536, 0, 0, 0, 65536, 0, 0, 0, 1 << 30], np.int32)) is None  # identity
    assert orientation(None) is None


# ---------------------------------------------------------------- which stream is the video


def test_audio_before_video(tmp_path: Path) -> None:
    frames, info = _decode(_write(tmp_path / "a.mp4", audio_first=True))
    assert len(frames) == 6 == info.frame_count and (info.width, info.height) == (320, 240)


def _two_videos(path: Path, first: tuple[int, int], second: tuple[int, int], n: tuple[int, int]) -> Path:
    with av.open(str(path), "w") as c:
        streams = []
        for w, h in (first, second):
            s = c.add_stream("libx264", rate=30)
            s.width, s.height = w, h
            streams.append(s)
        for i in range(max(n)):
            for s, count in zip(streams, n, strict=True):
                if i < count:
                    for p in s.encode(av.VideoFrame.from_ndarray(_picture(s.width, s.height, i), format="rgb24")):
                        c.mux(p)
        for s in streams:
            for p in s.encode():
                c.mux(p)
    return path


def test_several_video_streams_take_ffmpegs_best_not_the_first(tmp_path: Path) -> None:
    """A small preview stream before the main one (both without a default flag): the main one is tracked,
    as players (``av_find_best_stream``) pick it."""
    frames, info = _decode(_two_videos(tmp_path / "two.mkv", (160, 120), (320, 240), (2, 8)))
    assert (info.width, info.height, len(frames)) == (320, 240, 8)
    assert frames[0].image.shape == (240, 320, 3)


def test_the_frame_count_estimate_reads_the_tracked_stream(tmp_path: Path) -> None:
    """Matroska counts no frames: the viewer's estimate (duration × rate) is of the stream the source
    tracks (8 frames), not of the first one (the 2-frame preview)."""
    from stip_rt.io.video_seek import estimated_frame_count

    assert estimated_frame_count(str(_two_videos(tmp_path / "two.mkv", (160, 120), (320, 240), (2, 8)))) == 8


def _with_cover(path: Path, *, video: bool) -> Path:
    """An MP3 (video=False) or MP4 whose first stream is an attached picture (cover art)."""
    with av.open(str(path), "w") as c:
        cover = c.add_stream("mjpeg", rate=1)
        cover.width = cover.height = 64
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        main_stream = c.add_stream("mp3", rate=44100) if not video else None
        for p in cover.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), 250, np.uint8), format="rgb24")):
            c.mux(p)
        for p in cover.encode():
            c.mux(p)
        if main_stream is not None:
            for i in range(5):
                samples = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.float32), format="fltp", layout="mono")
                samples.sample_rate, samples.pts = 44100, i * 1152
                for p in main_stream.encode(samples):
                    c.mux(p)
            for p in main_stream.encode():
                c.mux(p)
    return path


def test_audio_with_cover_art_is_not_a_video(tmp_path: Path) -> None:
    song = _with_cover(tmp_path / "song.mp3", video=False)
    with av.open(str(song)) as c:  # FFmpeg shows the cover as a one-picture video stream
        assert [s.type for s in c.streams] == ["audio", "video"]
    with pytest.raises(SourceError, match=r"song\.mp3: not a video or image \(it has no video stream, only a cover"):
        open_source(song)


# ---------------------------------------------------------------- variable frame rate (phone recordings)

VFR_TIMES = [0.0, 1 / 30, 2 / 30, 0.1, 0.2, 0.2 + 1 / 60, 0.2 + 2 / 60, 0.25, 0.35, 0.4]


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_variable_frame_rate_times_are_the_pts(tmp_path: Path, ext: str) -> None:
    video = _write(tmp_path / f"vfr.{ext}", n=len(VFR_TIMES), times=VFR_TIMES)
    frames, info = _decode(video)
    assert [f.index for f in frames] == list(range(len(VFR_TIMES)))
    assert [f.time for f in frames] == pytest.approx(VFR_TIMES, abs=1e-3)  # Matroska: ms timestamps
    assert 20 < info.fps < 40
    late, _ = _decode(video, start=5, max_frames=3)  # no seek for VFR: decoded from 0, the same times
    assert [(f.index, f.time) for f in late] == [(f.index, f.time) for f in frames[5:8]]


# ---------------------------------------------------------------- sizes and pixel formats


@pytest.mark.parametrize(
    ("name", "size", "codec", "pix_fmt", "n"),
    [
        ("one_frame.mp4", (320, 240), "libx264", "yuv420p", 1),
        ("odd.mp4", (321, 241), "libx264", "yuv444p", 3),
        ("odd.avi", (321, 241), "mpeg4", "yuv420p", 3),
        ("ten_bit.mp4", (320, 240), "libx264", "yuv420p10le", 3),
        ("hevc_ten_bit.mp4", (320, 240), "libx265", "yuv420p10le", 3),
        ("full_range.avi", (320, 240), "mjpeg", "yuvj420p", 3),
    ],
)  # fmt: skip
def test_sizes_and_pixel_formats_decode_to_bgr(
    tmp_path: Path, name: str, size: tuple[int, int], codec: str, pix_fmt: str, n: int
) -> None:
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {codec} encoder")
    frames, info = _decode(_write(tmp_path / name, size=size, codec=codec, pix_fmt=pix_fmt, n=n))
    w, h = size
    assert len(frames) == n and (info.width, info.height) == size
    img = frames[0].image
    assert img.shape == (h, w, 3) and img.dtype == np.uint8
    assert np.abs(img[h - 5, w - 5].astype(int) - 40).max() <= 4  # background grey, full range kept
    assert img[5, 5, 2] > 240 and img[5, 5, :2].max() < 20  # the red block, BGR


def test_variable_frame_rate_run_keeps_one_track_and_real_times(tmp_path: Path) -> None:
    """A phone recording with stalls (100 ms gaps in 30 fps) of someone walking at 750 px/s: the exports'
    time column is each frame's pts, and the tracker predicts across the stalls by time (one id)."""
    times, t = [], 0.0
    for i in range(40):
        times.append(round(t, 4))
        t += 0.1 if i % 10 == 9 else 1 / 30
    video = _write(tmp_path / "phone.mp4", size=(640, 360), n=len(times), times=times)
    dets = tmp_path / "dets.txt"  # MOT rows: frame (1-based), id, x, y, w, h, score
    dets.write_text("".join(f"{i + 1},-1,{20 + 750 * s:.1f},100,60,150,0.9,-1,-1,-1\n" for i, s in enumerate(times)))
    csv, jsonl = tmp_path / "t.csv", tmp_path / "t.jsonl"
    assert main(["track", str(video), "--pose", "none", "-D", str(dets), "-o", str(csv), "-o", str(jsonl)]) == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()[1:]]
    assert [r["time"] for r in records] == pytest.approx(times, abs=1e-4)
    assert {p["track_id"] for r in records for p in r["people"]} == {1}
    rows = [line.split(",") for line in csv.read_text().splitlines()[1:]]
    assert len(rows) == len(times) and {r[2] for r in rows} == {"1"}
    assert [float(r[1]) for r in rows] == pytest.approx(times, abs=1e-4)
