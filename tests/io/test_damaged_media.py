"""Damaged media made for real in tmp_path: a video damaged in the middle, truncated/unreadable
images, a network stream that drops or stalls (a real HTTP server on 127.0.0.1)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stip_rt.errors import SourceError
from stip_rt.io.source_config import SourceConfig
from stip_rt.io.sources import open_source


def _small(image: np.ndarray) -> np.ndarray:
    return image[::4, ::4, 1].astype(np.int16)  # green channel, 1/16 of the pixels: enough to tell frames apart


@pytest.fixture(scope="module")
def original_frames(shared_dir: Path) -> list[np.ndarray]:
    with open_source(shared_dir / "data" / "opencv_samples" / "vtest.avi") as src:
        return [_small(f.image) for f in src]


def test_damaged_middle_keeps_true_frame_numbers(
    tmp_path: Path, data_dir: Path, original_frames: list[np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "damaged.avi"
    shutil.copy(data_dir / "opencv_samples" / "vtest.avi", bad)
    with open(bad, "r+b") as f:  # 200,000 bytes of noise in the middle (frames 391–413 of 795)
        f.seek(4_000_000)
        f.write(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    got: dict[int, np.ndarray] = {}
    with caplog.at_level(logging.WARNING), open_source(bad) as src:
        assert src.info.frame_count == len(original_frames) == 795
        for frame in src:  # no error: the file still ends with its last frame
            got[frame.index] = _small(frame.image)
    indices = sorted(got)
    assert indices == [i for i in range(795) if not 391 <= i <= 413]  # a number only for frames that exist
    # undamaged frames after the damage (from the next keyframe on) are the original frames, pixel for pixel
    for i in (500, 501, 650, 794):
        assert np.array_equal(got[i], original_frames[i]), i
    # frames between the damage and that keyframe lack their references but are still the closest match
    for i in (430, 450, 499):  # (just after the gap they still look most like frame 390, their base)
        diffs = {j: np.abs(got[i] - original_frames[j]).mean() for j in range(i - 30, min(i + 30, 795))}
        assert min(diffs, key=diffs.get) == i
    message = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(bad) in message and "frames 391–413 are missing" in message
    assert "artefacts until the keyframe 500" in message


def test_truncated_jpeg_in_folder_is_named(tmp_path: Path, data_dir: Path) -> None:
    jpeg = (data_dir / "opencv_samples" / "messi5.jpg").read_bytes()
    (tmp_path / "0001.jpg").write_bytes(jpeg)
    (tmp_path / "0002.jpg").write_bytes(jpeg[: len(jpeg) * 2 // 3])  # cv2.imread accepts this (grey rows)
    (tmp_path / "0003.jpg").write_bytes(jpeg + b"camera trailer \xff\xd8 after the end")  # data after EOI: fine
    got = []
    msg = re.escape(f"{tmp_path / '0002.jpg'}: the JPEG file is truncated")
    with open_source(tmp_path) as src, pytest.raises(SourceError, match=msg):
        for f in src:
            got.append(f.index)
    assert got == [0]
    with open_source(tmp_path / "0003.jpg") as src:
        assert len(list(src)) == 1


_READ_FOLDER = """
import sys
from stip_rt.errors import SourceError
from stip_rt.io.sources import open_source
try:
    with open_source(sys.argv[1]) as src:
        list(src)
except SourceError as e:
    print(e)
"""


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_unreadable_image_says_permission_denied(data_dir: Path) -> None:
    # a folder outside pytest's private tmp: as root, the reader runs as 'nobody' (root reads anything)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        shutil.copy(data_dir / "opencv_samples" / "messi5.jpg", folder / "0001.jpg")
        locked = folder / "0002.jpg"
        shutil.copy(data_dir / "opencv_samples" / "messi5.jpg", locked)
        (folder / "0001.jpg").chmod(0o644)
        locked.chmod(0)
        cmd = [sys.executable, "-c", _READ_FOLDER, str(folder)]
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == f"{locked}: cannot read this image (permission denied)", out.stderr


class _HttpServer:
    """Serves the first 30 % of a video over HTTP, then closes the connection ('drop') or goes silent ('stall')."""

    def __init__(self, data: bytes, mode: str) -> None:
        self.data, self.mode = data, mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                head = f"HTTP/1.1 200 OK\r\nContent-Type: video/x-msvideo\r\nContent-Length: {len(self.data)}\r\n\r\n"
                conn.sendall(head.encode() + self.data[: len(self.data) * 3 // 10])
                if self.mode == "stall":
                    self.done.wait(30)

    def close(self) -> None:
        self.done.set()
        self.sock.close()


@pytest.fixture
def http_video(data_dir: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    server = _HttpServer((data_dir / "opencv_samples" / "vtest.avi").read_bytes(), request.param)
    yield f"http://127.0.0.1:{server.port}/vtest.avi"
    server.close()


@pytest.mark.parametrize(
    ("http_video", "what"), [("drop", "dropped after frame"), ("stall", "stalled after frame")], indirect=["http_video"]
)
def test_network_stream_drop_or_stall_is_not_a_damaged_file(http_video: str, what: str) -> None:
    cfg = SourceConfig(open_timeout_s=3.0, read_timeout_s=1.0)
    got = []
    with open_source(http_video, config=cfg) as src, pytest.raises(SourceError) as err:
        assert not src.info.live  # a URL with a known length is read like a file
        for f in src:
            got.append(f.index)
    msg = str(err.value)
    assert msg.startswith(f"{http_video}: the stream {what} {got[-1]}")
    assert "damaged" not in msg and "immediate exit" not in msg
    assert "--live" in msg and "source.reconnect_retries=5" in msg and "source.read_timeout_s=1" in msg
    assert 0 < len(got) < 795 and got == list(range(len(got)))


@pytest.mark.parametrize("http_video", ["stall"], indirect=True)
def test_live_stream_that_stalls_names_the_stall_and_the_settings(
    http_video: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The stall is named with the read timeout; the reconnect that this (one-connection) server
    never answers, with the open timeout."""
    cfg = SourceConfig(open_timeout_s=3.0, read_timeout_s=0.5, reconnect_retries=1, reconnect_backoff_s=0.01)
    with (
        caplog.at_level("WARNING"),
        open_source(http_video, live=True, config=cfg) as src,
        pytest.raises(SourceError) as err,
    ):
        for _ in src:
            pass
    assert "the stream broke after frame" in caplog.text and "(stalled: no data for 0.5 s)" in caplog.text
    msg = str(err.value)
    assert "reconnect attempts failed (last error: no answer within 3 s (source.open_timeout_s" in msg
    assert "source.reconnect_retries=1" in msg and "immediate exit" not in msg


@pytest.mark.parametrize("http_video", ["drop"], indirect=True)
def test_a_password_in_a_stream_url_is_never_shown(http_video: str) -> None:
    """``http://user:pw@host/...``: the source's name in file headers, logs and errors hides the password."""
    from stip_rt.io.source_config import redact_credentials

    assert redact_credentials("rtsp://admin:S3cret@cam:554/s1") == "rtsp://admin:***@cam:554/s1"
    assert redact_credentials("http://token@host/x") == "http://***@host/x"
    assert redact_credentials("clips/a@b.mp4") == "clips/a@b.mp4" == redact_credentials("clips/a@b.mp4")
    url = http_video.replace("http://", "http://admin:S3cret@")
    with open_source(url, config=SourceConfig(open_timeout_s=3.0, read_timeout_s=1.0)) as src:
        assert src.info.uri == http_video.replace("http://", "http://admin:***@")
        with pytest.raises(SourceError) as err:
            for _ in src:
                pass
    assert "S3cret" not in str(err.value) and "admin:***@" in str(err.value)


_WRITTEN = [0, 1, 2, 3, 7, 8, 9, 15, 16]  # a live run's frames, with dropped ones between


@pytest.mark.parametrize("ext", [".avi", ".mp4", ".mkv"])
def test_a_video_written_with_gaps_in_its_times_reads_back_whole(
    tmp_path: Path, ext: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The video sink stamps frames with their source times, so a live run that dropped frames writes
    a video with gaps. It is not damaged: every frame reads back at its time, without a warning (an
    AVI declared the whole span's length, and its reading ended in 'truncated or damaged')."""
    from stip_rt.io.video_sink import VideoSink
    from stip_rt.types import FrameResult, RunInfo, SourceInfo, Tracks

    path = tmp_path / f"live{ext}"
    sink = VideoSink(path)
    sink.open(RunInfo(SourceInfo("cam", 96, 64, 10.0, None, True), None))
    for i in _WRITTEN:
        sink.write(FrameResult(i, i / 10, Tracks.empty(), {}, np.full((64, 96, 3), i * 15, np.uint8)))
    sink.close()
    with caplog.at_level(logging.WARNING), open_source(str(path)) as src:
        frames = list(src)
    assert not caplog.records
    assert [round(f.time, 3) for f in frames] == [i / 10 for i in _WRITTEN]
    shown = [min(_WRITTEN, key=lambda i: abs(i * 15 - float(f.image.mean()))) for f in frames]
    assert shown == _WRITTEN  # each frame's own picture (grey level i·15, give or take the codec)
    if ext == ".avi":  # its index gives the frames their places in the timeline, also after a seek
        assert [f.index for f in frames] == _WRITTEN
        with open_source(str(path), start=8) as src:
            assert [f.index for f in src] == [8, 9, 15, 16]
