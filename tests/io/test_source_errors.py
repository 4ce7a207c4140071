"""Bad inputs: each made for real in tmp_path; the SourceError must name the input."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import pytest
from fake_streams import serve_cameras

from stip_rt.errors import ConfigError, SourceError
from stip_rt.io.source_config import SourceConfig
from stip_rt.io.sources import check_source, open_source

FAST_RETRY = SourceConfig(reconnect_retries=2, reconnect_backoff_s=0.01, reconnect_backoff_max_s=0.02)


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.mp4"
    with pytest.raises(SourceError, match=re.escape(f"{path}: file not found")):
        open_source(path)
    with pytest.raises(SourceError, match=r"missing\.jpg: file not found"):
        open_source(tmp_path / "missing.jpg")


def test_check_source_gives_open_sources_path_errors_without_opening(tmp_path: Path, data_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for bad in (tmp_path / "nope.mp4", tmp_path / "missing.jpg", empty, f"{tmp_path}/*.png"):
        with pytest.raises(SourceError) as opened:
            open_source(bad)
        with pytest.raises(SourceError) as checked:
            check_source(bad)
        assert str(checked.value) == str(opened.value) and str(bad) in str(checked.value)
    not_a_video = tmp_path / "text.mp4"
    not_a_video.write_text("this is not a video\n")
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "0001.jpg").write_text("not a jpeg")  # read (and refused) only when opened
    for good in (not_a_video, frames, f"{frames}/*.jpg", "0", "/dev/video97", "rtsp://127.0.0.1:9/x"):
        check_source(good)  # a stat or a listing: nothing is opened, cameras and streams are not probed
    with pytest.raises(SourceError, match="cannot read this image"):
        open_source(frames)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(SourceError, match=re.escape(f"{path}: empty file (0 bytes)")):
        open_source(path)


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n" * 20)
    with pytest.raises(SourceError, match=re.escape(f"{path}: not a video FFmpeg can read")):
        open_source(path)


def _wav(path: Path) -> Path:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 800)
    return path


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("notes.txt", "FFmpeg reads it as text, with its 'tty' format"),
        ("beep.wav", "it has no video stream, only audio"),
    ],
)
def test_text_or_audio_is_not_a_video(tmp_path: Path, name: str, why: str) -> None:
    """FFmpeg's ``tty`` demuxer opens any .txt as a "video" of rendered text; it is refused at open."""
    path = tmp_path / name
    if name.endswith(".wav"):
        _wav(path)
    else:
        path.write_text("these are not the frames you are looking for\n" * 20)
    with pytest.raises(SourceError) as err:
        open_source(path)
    assert str(err.value) == f"{path}: not a video or image ({why})"


def test_cli_refuses_a_text_file_in_one_line(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stip_rt.cli import main

    path = tmp_path / "notes.txt"
    path.write_text("these are not the frames you are looking for\n" * 20)
    out = tmp_path / "out.jsonl"
    gt = data_dir / "mot15/PETS09-S2L1/gt/gt.txt"
    code = main(["track", str(path), "--model", "none", "--detections", str(gt), "-o", str(out)])
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert code == 2 and len(err) == 1, err
    assert f"{path}: not a video or image" in err[0] and not out.exists()


@pytest.mark.parametrize(
    ("rel", "fraction"),
    [("opencv_samples/vtest.avi", 0.3), ("sample_videos/intel_one-by-one-person-detection.mp4", 0.1)],
)
def test_truncated_video_yields_good_frames_then_one_error(
    tmp_path: Path, data_dir: Path, rel: str, fraction: float
) -> None:
    src_path = data_dir / rel
    bad = _cut(src_path, tmp_path / f"cut{src_path.suffix}", fraction)
    frames = []
    with open_source(bad) as src:
        declared = src.info.frame_count
        with pytest.raises(SourceError) as err:
            for f in src:
                frames.append(f.index)
    assert 0 < len(frames) < declared
    assert frames == list(range(len(frames)))  # every frame before the damage, in order
    msg = str(err.value)
    assert str(bad) in msg and f"frame {frames[-1]}" in msg and "truncated" in msg


def test_truncated_mp4_without_index_fails_at_open(tmp_path: Path, data_dir: Path) -> None:
    bad = _cut(data_dir / "mot15" / "TUD-Campus" / "TUD-Campus.mp4", tmp_path / "tud.mp4", 0.5)
    with pytest.raises(SourceError, match=re.escape(f"{bad}: not a video")):
        open_source(bad)


def test_unreadable_camera_index() -> None:
    with pytest.raises(SourceError, match="camera 99: cannot open"):
        open_source(99)
    with pytest.raises(SourceError, match="camera /dev/video97: cannot open"):
        open_source("/dev/video97")


def test_camera_disappears_mid_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # 5 frames, then unplugged: every later read and reopen fails
    cameras = serve_cameras(monkeypatch, [5, 0], openable=1, fps=30.0)
    got = []
    msg = r"camera 2: stopped giving frames after frame 4 and 2 attempts"
    with open_source(2, config=FAST_RETRY) as src, pytest.raises(SourceError, match=msg):
        for f in src:
            got.append(f.index)
    assert len(got) + src.dropped == 5
    assert len(cameras.instances) == 3  # the first open + 2 bounded reopen attempts


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_stream_refuses_connection(scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{_closed_port()}/live.m3u8"
    cfg = SourceConfig(open_timeout_s=3.0, read_timeout_s=3.0)
    with pytest.raises(SourceError, match=re.escape(f"{url}: connection refused")):
        open_source(url, config=cfg)


def test_image_folder_errors(tmp_path: Path, data_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match=re.escape(f"{empty}: folder has no image files")):
        open_source(empty)
    with pytest.raises(SourceError, match="no image files match"):
        open_source(f"{tmp_path}/*.png")
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(data_dir / "opencv_samples" / "messi5.jpg", frames / "0001.jpg")
    (frames / "0002.jpg").write_text("not a jpeg")
    got = []
    with open_source(frames) as src, pytest.raises(SourceError, match=r"0002\.jpg: cannot read this image"):
        for f in src:
            got.append(f.index)
    assert got == [0]


def test_bad_start() -> None:
    with pytest.raises(ConfigError, match="start"):
        open_source("x.mp4", start=-1)
