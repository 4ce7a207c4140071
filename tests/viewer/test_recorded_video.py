"""Videos written by the project's video sink carry their source's times: a jump in them (a recording
across a seek, a stream that stalled) is a cut that playback shows at once, and Record across a seek
writes a video without the jump."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stip_rt.io.video_sink import VideoSink
from stip_rt.io.video_source import VideoSource
from stip_rt.types import FrameResult, RunInfo, SourceInfo, Tracks

FPS = 10.0
JUMP_S = 1000.0  # the source times jump by this much after frame 19 (waited out at 4×: over 4 minutes)


def _frame(index: int, t: float) -> FrameResult:
    image = np.full((64, 96, 3), index * 6 % 256, np.uint8)
    return FrameResult(index, t, Tracks.empty(), {}, image)


def _video_with_a_jump(path: Path) -> Path:
    """40 frames at 10 fps whose source times jump by :data:`JUMP_S` s after frame 19."""
    sink = VideoSink(path)
    sink.open(RunInfo(SourceInfo("cam", 96, 64, FPS, None, True), None))
    try:
        for i in range(40):
            sink.write(_frame(i, i / FPS + (JUMP_S if i >= 20 else 0.0)))
    finally:
        sink.close()
    return path


def _times(path: Path) -> list[float]:
    with VideoSource(str(path)) as src:
        return [f.time for f in src]


def test_a_recorded_video_plays_on_across_its_jump_after_a_forward_seek(box_window, qtbot, tmp_path, wait_frames):
    video = _video_with_a_jump(tmp_path / "recorded.mp4")
    times = _times(video)
    assert len(times) == 40 and times[20] - times[19] > JUMP_S / 2  # the jump is in the file
    w = box_window
    w.speed.setCurrentText("4×")
    assert w.open_source(str(video))
    wait_frames(w, 2)
    with qtbot.waitSignal(w.session.seeked, timeout=30000):
        w.seek_to(15)  # forward, to just before the jump
    # frames 15..19 take 0.125 s at 4×; the jump is a cut, not 250 s to wait out
    qtbot.waitUntil(lambda: w.last_index >= 30, timeout=30000)


def test_record_across_a_seek_writes_a_video_without_the_jump(tmp_path) -> None:
    from apps.viewer.options import ViewerOptions
    from apps.viewer.session import ViewerSink

    sink = ViewerSink(lambda image, result: None, ViewerOptions(), speed=0.0)
    sink.open(RunInfo(SourceInfo("clip.mp4", 96, 64, FPS, 1000, False), None))
    out = tmp_path / "rec.mp4"
    tracks = tmp_path / "rec.jsonl"
    sink.start_recording([out, tracks])
    for i in range(10):
        sink.write(_frame(i, i / FPS))
    sink.detach()  # a seek forward to frame 400
    sink.attach()
    for i in range(400, 410):
        sink.write(_frame(i, i / FPS))
    sink.close()
    steps = np.diff(_times(out))
    assert len(steps) == 19 and np.allclose(steps, 1 / FPS, atol=1e-3)  # one frame apart, also at the seek
    from stip_rt.io.read import read_tracks

    frames = read_tracks(tracks).frames  # the tracks keep the source's frames and times
    assert [f.frame for f in frames] == [*range(10), *range(400, 410)]
    assert frames[10].time == pytest.approx(40.0)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
