"""Sources: frame-count invariants on real files, start/max_frames, image folders, live drops, cameras, reconnects."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from fake_streams import FakeCapture, FakeStream, reset, serve_cameras, serve_streams

from stip_rt.errors import SourceError
from stip_rt.io.base import Source
from stip_rt.io.camera import CameraSource
from stip_rt.io.source_config import SourceConfig
from stip_rt.io.sources import open_source
from stip_rt.io.threaded_source import FrameBuffer
from stip_rt.types import Frame

FAST_RETRY = SourceConfig(reconnect_retries=2, reconnect_backoff_s=0.01, reconnect_backoff_max_s=0.02)


def _decode_all(spec, **kw) -> tuple[list[Frame], object]:
    with open_source(spec, **kw) as src:
        frames = list(src)
    return frames, src


def test_vtest_decoded_frames_equal_container_count(data_dir: Path) -> None:
    frames, src = _decode_all(data_dir / "opencv_samples" / "vtest.avi")
    info = src.info
    assert (info.width, info.height, info.fps, info.frame_count, info.live) == (768, 576, 10.0, 795, False)
    assert len(frames) == 795 == info.frame_count
    assert [f.index for f in frames] == list(range(795))
    assert frames[-1].time == pytest.approx(79.4)
    assert frames[0].image.shape == (576, 768, 3) and frames[0].image.dtype == np.uint8
    assert src.dropped == 0
    assert isinstance(src, Source)


@pytest.mark.parametrize(
    "rel", ["mot15/TUD-Campus/TUD-Campus.mp4", "sample_videos/mmpose_demo.mp4",
            "sample_videos/intel_one-by-one-person-detection.mp4"],
)  # fmt: skip
def test_videos_decode_fully(data_dir: Path, rel: str) -> None:
    path = data_dir / rel
    with av.open(str(path)) as c:
        expected = c.streams.video[0].frames
    frames, src = _decode_all(path)
    assert len(frames) == expected == src.info.frame_count
    times = np.array([f.time for f in frames])
    assert np.all(np.diff(times) > 0)
    assert frames[0].image.shape == (src.info.height, src.info.width, 3)


def test_frames_match_opencv_decode(data_dir: Path) -> None:
    path = data_dir / "mot15" / "TUD-Campus" / "TUD-Campus.mp4"
    frames, _ = _decode_all(path, start=5, max_frames=3)
    cap = cv2.VideoCapture(str(path))
    for _ in range(5):
        cap.read()
    ok, ref = cap.read()
    cap.release()
    assert ok
    assert np.abs(frames[0].image.astype(int) - ref.astype(int)).mean() < 2.0  # same frame (colour conversion differs)


def test_start_and_max_frames_keep_source_indices(data_dir: Path) -> None:
    frames, src = _decode_all(data_dir / "opencv_samples" / "vtest.avi", start=100, max_frames=4)
    assert [f.index for f in frames] == [100, 101, 102, 103]
    assert [f.time for f in frames] == pytest.approx([10.0, 10.1, 10.2, 10.3])
    assert src.info.frame_count == 795  # the source's own count


def test_file_never_drops_with_a_slow_consumer(data_dir: Path) -> None:
    cfg = SourceConfig(buffer_size=1)
    with open_source(data_dir / "sample_videos" / "mmpose_demo.mp4", config=cfg) as src:
        frames = []
        for f in src:
            time.sleep(0.02)
            frames.append(f.index)
    assert frames == [0, 1, 2, 3, 4] and src.dropped == 0


def test_live_keeps_newest_and_counts_drops(data_dir: Path) -> None:
    with open_source(data_dir / "mot15" / "TUD-Campus" / "TUD-Campus.mp4", live=True) as src:
        assert src.info.live and src.info.frame_count is None
        seen = []
        for f in src:
            time.sleep(0.01)  # slower than decoding: most frames are dropped
            seen.append(f.index)
    assert np.all(np.diff(seen) > 0)
    assert len(seen) + src.dropped == 71  # every decoded frame was either delivered or counted


def test_frame_buffer_drop_and_block() -> None:
    live = FrameBuffer(1, drop_oldest=True)
    for i in range(5):
        assert live.put(Frame(i, i / 10, np.zeros((1, 1, 3), np.uint8)))
    live.finish()
    assert live.get().index == 4 and live.dropped == 4
    assert live.get() is None

    files = FrameBuffer(2, drop_oldest=False)
    got: list[int] = []
    producer = threading.Thread(
        target=lambda: [files.put(Frame(i, 0.0, np.zeros((1, 1, 3), np.uint8))) for i in range(6)] and files.finish()
    )
    producer.start()
    while (f := files.get()) is not None:
        got.append(f.index)
    producer.join()
    assert got == list(range(6)) and files.dropped == 0


def test_error_after_buffered_frames_and_close_unblocks_producer() -> None:
    buf = FrameBuffer(3, drop_oldest=False)
    buf.put(Frame(0, 0.0, np.zeros((1, 1, 3), np.uint8)))
    buf.finish(RuntimeError("boom"))
    assert buf.get().index == 0
    with pytest.raises(RuntimeError, match="boom"):
        buf.get()
    blocked = FrameBuffer(1, drop_oldest=False)
    blocked.put(Frame(0, 0.0, np.zeros((1, 1, 3), np.uint8)))
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(blocked.put(Frame(1, 0.0, np.zeros((1, 1, 3), np.uint8)))))
    t.start()
    blocked.close()
    t.join(5)
    assert result == [False]


def test_close_mid_iteration_stops_the_decode_thread(data_dir: Path) -> None:
    src = open_source(data_dir / "opencv_samples" / "vtest.avi")
    for f in src:
        if f.index == 3:
            break
    src.close()
    src.close()
    assert not src._thread.is_alive()


def test_unused_source_closes_its_container(data_dir: Path) -> None:
    src = open_source(data_dir / "sample_videos" / "mmpose_demo.mp4")
    src.close()
    assert src._container is None
    assert list(src) == []


def test_image_folder_natural_order_and_fps(tmp_path: Path, data_dir: Path) -> None:
    jpg = data_dir / "posetrack18" / "videos" / "000001_mpiinew_test" / "000000.jpg"
    for name in ("img10.jpg", "img2.jpg", "img1.jpg"):
        shutil.copy(jpg, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    frames, src = _decode_all(tmp_path, fps=5)
    assert [Path(p).name for p in src.paths] == ["img1.jpg", "img2.jpg", "img10.jpg"]
    assert [f.time for f in frames] == pytest.approx([0.0, 0.2, 0.4])
    assert (src.info.fps, src.info.frame_count, src.info.live) == (5.0, 3, False)


def test_image_glob_and_single_image(data_dir: Path) -> None:
    folder = data_dir / "posetrack18" / "videos" / "000001_mpiinew_test"
    frames, src = _decode_all(f"{folder}/*.jpg", start=1, max_frames=2)
    assert [f.index for f in frames] == [1, 2] and src.info.fps == 30.0
    frames, src = _decode_all(data_dir / "opencv_samples" / "messi5.jpg")
    assert len(frames) == 1 and frames[0].image.shape == (src.info.height, src.info.width, 3)


@pytest.fixture
def fake_camera(monkeypatch: pytest.MonkeyPatch) -> type[FakeCapture]:
    return serve_cameras(monkeypatch)


def test_camera_source(fake_camera) -> None:
    fake_camera.frames_per_open = [None]
    with open_source(0, max_frames=5) as src:
        frames = list(src)
    assert isinstance(src, CameraSource)
    assert len(frames) == 5 and np.all(np.diff([f.index for f in frames]) > 0)
    info = src.info
    assert (info.width, info.height, info.fps, info.live, info.frame_count) == (64, 48, 25.0, True, None)
    assert fake_camera.instances[0].props[cv2.CAP_PROP_BUFFERSIZE] == 1
    assert fake_camera.instances[0].device == 0


class CountingCapture(FakeCapture):
    """A camera whose n-th image (from 1) holds n in its first pixel."""

    def read(self):
        ok, image = super().read()
        if ok:
            self.served = getattr(self, "served", 0) + 1
            image[0, 0, 0] = min(self.served, 255)
        return ok, image


def test_a_camera_read_late_starts_on_a_fresh_picture(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline builds and warms up its models between the open and the first read: the camera is
    kept drained meanwhile, so frame 0 is captured at the first read, not the picture of the open."""
    serve_cameras(monkeypatch, capture=CountingCapture)
    with open_source(0, max_frames=2) as src:
        time.sleep(0.6)  # the models being built
        first = src.read(timeout=5)
    assert first is not None and first.frame.index == 0 and first.frame.time < 0.05
    assert first.frame.image[0, 0, 0] > 50  # ~170 images came in 0.6 s (2 ms each); the open's was number 1


def test_camera_reopens_after_a_glitch(fake_camera) -> None:
    fake_camera.frames_per_open = [4, None]  # the first capture dies after 4 frames, the reopened one works
    with open_source("/dev/video3", max_frames=8, config=FAST_RETRY) as src:
        frames = list(src)
    assert len(frames) == 8
    assert len(fake_camera.instances) == 2 and fake_camera.instances[1].device == "/dev/video3"


def test_stream_reconnects_then_continues(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = serve_streams(monkeypatch, [FakeStream(3, reset()), FakeStream(2)])
    with open_source("rtsp://camera.local/live", config=FAST_RETRY) as src:
        assert src.info.live and src.info.fps == 10.0
        frames = []
        for f in src:
            frames.append(f)
    assert len(opened) == 2
    assert len(frames) + src.dropped == 5
    assert np.all(np.diff([f.index for f in frames]) > 0) and np.all(np.diff([f.time for f in frames]) > 0)
    assert all(c.closed for c in opened)


def _five_frame_ts(path: Path) -> Path:
    """Five frames in MPEG-TS, a container that declares no frame count."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="bgr24")))
        out.mux(stream.encode(None))
    return path


def test_a_start_past_the_end_is_an_error_naming_the_source(tmp_path: Path, data_dir: Path) -> None:
    """Not a silent run of no frames: refused at open where the frame count is known (before any
    output is opened), else once the video has been read to its end."""
    vtest = data_dir / "opencv_samples" / "vtest.avi"
    assert [f.index for f in _decode_all(vtest, start=794)[0]] == [794]
    with pytest.raises(SourceError, match=r"vtest.avi: the start frame 795 is past the end of the video \(795 frames"):
        open_source(vtest, start=795)
    ts = _five_frame_ts(tmp_path / "five.ts")
    assert [f.index for f in _decode_all(ts, start=4)[0]] == [4]
    with pytest.raises(SourceError, match=r"five.ts: the start frame 7 is past the end of the video \(5 frames"):
        _decode_all(ts, start=7)
    folder = data_dir / "posetrack18" / "videos" / "000001_mpiinew_test"
    count = len(list(folder.glob("*.jpg")))
    with pytest.raises(SourceError, match=rf"the start frame {count} is past the last image \({count} images"):
        open_source(f"{folder}/*.jpg", start=count)
