"""``VideoSource(start=N)`` seeks to the keyframe before N: every frame keeps the index, time and pixels
of a decode from frame 0 (real files and videos made here), damage after the keyframe is still found,
and files whose frame numbers a seek cannot know (variable rate) are decoded from the start."""

from __future__ import annotations

import logging
import re
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from stip_rt.errors import SourceError
from stip_rt.io import video_source
from stip_rt.io.video_source import VideoSource

Decoded = list[tuple[int, float, np.ndarray]]


def _small(image: np.ndarray) -> np.ndarray:
    return image[::4, ::4].copy()  # 1/16 of the pixels, all channels: enough to tell frames apart


def _decode(path: Path, start: int = 0, max_frames: int | None = None, **kw: Any) -> Decoded:
    with VideoSource(str(path), start=start, max_frames=max_frames, **kw) as src:
        return [(f.index, f.time, _small(f.image)) for f in src]


class _Counting:
    """A PyAV input container that counts the packets demuxed from it (seek scans and decoding alike)."""

    def __init__(self, container: Any) -> None:
        self._c = container
        self.packets = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._c, name)

    def demux(self, *args: Any, **kw: Any) -> Any:
        for packet in self._c.demux(*args, **kw):
            self.packets += 1
            yield packet


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[_Counting]:
    """Every container VideoSource opens from now on, counting its packets."""
    opened: list[_Counting] = []
    real = video_source._open_container

    def counting(*args: Any) -> _Counting:
        opened.append(_Counting(real(*args)))
        return opened[-1]

    monkeypatch.setattr(video_source, "_open_container", counting)
    return opened


def _assert_same(got: Decoded, expected: Decoded) -> None:
    assert [g[0] for g in got] == [e[0] for e in expected]
    for (i, t, image), (_, t_full, image_full) in zip(got, expected, strict=True):
        assert t == t_full, i  # the very same float
        assert np.array_equal(image, image_full), i


def _check_targets(path: Path, full: Decoded, targets: list[int], n: int = 12) -> None:
    for start in targets:
        if start > full[-1][0]:  # past the last frame: one error, not a run of no frames
            with pytest.raises(SourceError, match=rf"the start frame {start} is past the end of the video"):
                _decode(path, start, max_frames=n)
            continue
        _assert_same(_decode(path, start, max_frames=n), full[start : start + n])


# ---------------------------------------------------------------- real files


@pytest.fixture(scope="module")
def vtest(data_dir: Path) -> tuple[Path, Decoded]:
    path = data_dir / "opencv_samples" / "vtest.avi"  # MPEG-4 in AVI, keyframes 0, 250, 500, 750; 795 frames
    return path, _decode(path)


@pytest.mark.parametrize("start", [0, 1, 249, 250, 251, 400, 749, 794, 795, 900])
def test_avi_seek_gives_the_frames_of_a_full_decode(vtest: tuple[Path, Decoded], start: int) -> None:
    path, full = vtest
    assert len(full) == 795
    _check_targets(path, full, [start])


def test_avi_seek_decodes_from_the_keyframe_not_the_start(
    vtest: tuple[Path, Decoded], opened: list[_Counting], caplog: pytest.LogCaptureFixture
) -> None:
    path, full = vtest
    with caplog.at_level(logging.DEBUG, logger="stip_rt.io.video_seek"):
        _assert_same(_decode(path, 400, max_frames=5), full[400:405])
    assert "sought to the keyframe 250 to reach frame 400" in caplog.text
    assert len(opened) == 1 and opened[0].packets < 250 + 16  # 150 frames to the target, 5 wanted, the landing check
    _assert_same(_decode(path, 400, max_frames=5, keyframe_seek=False), full[400:405])
    assert opened[1].packets >= 405  # the old way reads every frame before the target


@pytest.mark.parametrize(
    ("rel", "targets"),
    [
        ("sample_videos/intel_one-by-one-person-detection.mp4", [1, 9, 10, 11, 700, 1393, 1394, 2000]),  # key every 10
        ("mot15/TUD-Campus/TUD-Campus.mp4", [1, 11, 12, 13, 50, 70, 71]),  # MPEG-4 part 2, a keyframe every 12
    ],
)
def test_mp4_seek_gives_the_frames_of_a_full_decode(data_dir: Path, rel: str, targets: list[int]) -> None:
    path = data_dir / rel
    full = _decode(path)
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        # the pts numbering a seek relies on is the counted numbering of these files, for every frame
        pts_numbers = [round((f.pts - s.start_time) * s.time_base * s.average_rate) for f in c.decode(s)]
    assert pts_numbers == [i for i, _, _ in full] == list(range(len(full)))
    _check_targets(path, full, targets)


# ---------------------------------------------------------------- videos made here


def _make(path: Path, codec: str, *, n: int = 95, gop: int = 10, fps: int = 25, bframes: int = 0,
          vfr: bool = False) -> Path:  # fmt: skip
    """A 64×48 video of ``n`` distinct frames, a keyframe every ``gop`` (vfr: every third frame lasts twice as long)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.gop_size = gop
        if codec == "libx264":
            s.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": str(bframes)}
        else:
            s.options = {"sc_threshold": "1000000000"}  # no extra keyframes at scene changes
        if vfr:
            s.codec_context.time_base = Fraction(1, 1000)
        t = 0
        for i in range(n):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, :, 0] = (i * 37) % 256
            img[i % 48, :, 1] = 255
            img[:, i % 64, 2] = 200
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if vfr:
                frame.pts, frame.time_base = t, Fraction(1, 1000)
                t += 1000 // fps * (2 if i % 3 == 0 else 1)
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def _keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [i for i, f in enumerate(c.decode(c.streams.video[0])) if f.key_frame]


MADE = [
    ("h264_bframes.mp4", "libx264", 25, 2),
    ("mpeg4.mp4", "mpeg4", 25, 0),
    ("h264_30fps.mkv", "libx264", 30, 2),  # Matroska: 1 ms ticks, 30 fps (33/34 ms steps)
    ("h264.ts", "libx264", 25, 2),  # MPEG-TS: its seek lands near, not on, a keyframe
    ("mpeg4.avi", "mpeg4", 25, 0),
]


@pytest.mark.parametrize(("name", "codec", "fps", "bframes"), MADE)
def test_made_video_seek_lands_on_the_keyframe_before(
    tmp_path: Path, opened: list[_Counting], caplog: pytest.LogCaptureFixture,
    name: str, codec: str, fps: int, bframes: int,
) -> None:  # fmt: skip
    path = _make(tmp_path / name, codec, fps=fps, bframes=bframes)
    assert _keyframes(path) == list(range(0, 95, 10))
    full = _decode(path)
    assert [i for i, _, _ in full] == list(range(95))
    for start in [95, 200]:  # past the last frame: one error (at open, or after the seek for TS)
        with pytest.raises(SourceError, match=rf"{name}: the start frame {start} is past the end of the video"):
            _decode(path, start, max_frames=12)
    for start in [1, 9, 10, 11, 55, 89, 90, 94]:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="stip_rt.io.video_seek"):
            _assert_same(_decode(path, start, max_frames=12), full[start : start + 12])
        key = start // 10 * 10
        landed = re.search(rf"sought to the keyframe (\d+) to reach frame {start}\n", caplog.text)
        assert landed, start
        if name.endswith(".ts"):  # its seek lands near a time, not on a keyframe: earlier keyframes are fine
            assert int(landed[1]) in range(0, key + 1, 10), start
        else:
            assert int(landed[1]) == key, start
        if not name.endswith((".ts", ".mkv")):  # (those two demux the packets before the target to check them)
            # from the keyframe to the target, ≤ 12 wanted, the landing check (some packets: frame threading)
            assert opened[-1].packets <= start - key + min(12, 95 - start) + 16, start


@pytest.mark.parametrize("name", ["vfr.mp4", "vfr.mkv"])
def test_variable_rate_is_decoded_from_the_start(tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture) -> None:
    path = _make(tmp_path / name, "libx264", n=60, vfr=True)
    full = _decode(path)
    assert [i for i, _, _ in full] == list(range(60))
    for start in (5, 30, 59):
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="stip_rt.io.video_seek"):
            _assert_same(_decode(path, start, max_frames=6), full[start : start + 6])
        assert f"decoding from the start to reach frame {start} (the frame rate is not constant" in caplog.text
    # the pts numbering would have been wrong: frame 30 does not sit at 30 frame durations
    assert round(full[30][1] * 25) != 30


@pytest.mark.parametrize(
    ("name", "codec", "fps", "expected"),
    [
        ("h264_30fps.mkv", "libx264", 30, 95),  # Matroska: 1 ms ticks, its track's DURATION tag
        ("vp9.webm", "libvpx-vp9", 25, 95),
        ("h264.ts", "libx264", 25, 95),  # MPEG-TS: the stream's duration (the container starts earlier)
        ("h264.mov", "libx264", 25, None),  # the container counts its frames: SourceInfo.frame_count has it
        ("mpeg4.avi", "mpeg4", 25, None),
    ],
)
def test_frame_count_estimated_where_the_container_states_none(
    tmp_path: Path, name: str, codec: str, fps: int, expected: int | None
) -> None:
    from stip_rt.io.video_seek import estimated_frame_count

    path = _make(tmp_path / name, codec, fps=fps)
    assert estimated_frame_count(str(path)) == expected
    if expected is not None:
        with VideoSource(str(path)) as src:
            assert src.info.frame_count is None and sum(1 for _ in src) == expected


def test_no_frame_count_estimated_for_what_is_no_such_video(tmp_path: Path) -> None:
    from stip_rt.io.video_seek import estimated_frame_count

    (tmp_path / "notes.mkv").write_text("not a video")
    assert estimated_frame_count(str(tmp_path / "notes.mkv")) is None
    assert estimated_frame_count(str(tmp_path / "missing.mkv")) is None


# ---------------------------------------------------------------- damaged AVI


@pytest.fixture(scope="module")
def damaged(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Decoded]:
    bad = tmp_path_factory.mktemp("seek") / "damaged.avi"
    shutil.copy(data_dir / "opencv_samples" / "vtest.avi", bad)
    with open(bad, "r+b") as f:  # the same damage as test_damaged_media: frames 391–413 lost
        f.seek(4_000_000)
        f.write(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    return bad, _decode(bad)


@pytest.mark.parametrize(("start", "gap_reported"), [(300, True), (395, True), (450, True), (600, False)])
def test_damage_after_the_keyframe_is_still_found(
    damaged: tuple[Path, Decoded], caplog: pytest.LogCaptureFixture, start: int, gap_reported: bool
) -> None:
    bad, full = damaged
    assert [i for i, _, _ in full] == [i for i in range(795) if not 391 <= i <= 413]
    with caplog.at_level(logging.DEBUG, logger="stip_rt.io"):
        got = _decode(bad, start, max_frames=130)
    first = next(k for k, (i, _, _) in enumerate(full) if i >= start)
    _assert_same(got, full[first : first + 130])  # true numbers, the same pixels (artefacts included)
    assert "sought to the keyframe" in caplog.text
    assert ("frames 391–413 are missing" in caplog.text) is gap_reported
    if gap_reported:
        assert "artefacts until the keyframe 500" in caplog.text
