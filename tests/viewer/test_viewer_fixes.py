"""Playback speed changed mid-run, saving a frame without or with an unknown suffix, a failed Record
start, keys and wheel on the seek bar, and the smoothing toggle after the end of a file."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from stip_rt.types import FrameResult, RunInfo, SourceInfo, Tracks


def _result(t: float) -> FrameResult:
    return FrameResult(int(t * 10), t, Tracks.empty(), {}, np.zeros((8, 8, 3), np.uint8))


def test_a_new_speed_applies_from_the_frame_shown_now() -> None:
    """Pacing is anchored again at a speed change: 60 s into a file, 0.25× does not wait 3 minutes."""
    from apps.viewer.options import ViewerOptions
    from apps.viewer.session import ViewerSink

    sink = ViewerSink(lambda image, result: None, ViewerOptions(), speed=1.0)
    sink.open(RunInfo(SourceInfo("clip.mp4", 8, 8, 10.0, 1000, False), None))
    sink._pace(_result(0.0))  # anchors at media time 0
    sink._t0_wall -= 60.0  # as if 60 s had been played at 1×
    sink.set_speed(0.25)
    t0 = time.perf_counter()
    sink._pace(_result(60.1))  # the frame after the change: shown at once, then 0.4 s per frame
    assert time.perf_counter() - t0 < 0.2
    t0 = time.perf_counter()
    sink._pace(_result(60.15))
    assert 0.1 < time.perf_counter() - t0 < 0.6  # 0.05 s of video at 0.25×


def test_save_frame_adds_png_and_refuses_unknown_suffixes(box_window, qtbot, video, wait_frames, tmp_path) -> None:
    w = box_window
    w.open_source(video, max_frames=20)
    wait_frames(w, 1)
    assert w.save_frame(tmp_path / "shot") and (tmp_path / "shot.png").is_file()
    assert not w.save_frame(tmp_path / "shot.xyz")  # a message in the status bar, no traceback
    assert "not an image format OpenCV can write" in w.status_line.message()


def test_a_failed_record_start_leaves_nothing_locked(box_window, qtbot, video, wait_frames, tmp_path) -> None:
    from apps.viewer.saving import recording_paths

    assert recording_paths(tmp_path / "r.jsonl", [tmp_path / "r.jsonl"]) == [tmp_path / "r.jsonl"]  # once
    w = box_window
    w.open_source(video, max_frames=200)
    wait_frames(w, 1)
    w.start_recording(tmp_path / "rec.mp4", tracks=[Path("/proc/nope/rec.jsonl")])
    assert not w.session.sink.recording
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no rec.mp4.lock left behind
    w.start_recording(tmp_path / "rec.mp4")  # a retry is not refused by our own lock
    assert w.session.sink.recording
    w.session.sink.stop_recording()


def test_keys_on_the_seek_bar_seek(box_window, qtbot, video, wait_frames) -> None:
    w = box_window
    w.open_source(video)
    wait_frames(w, 2)
    w.seek.setFocus()
    with qtbot.waitSignal(w.seek.jumped, timeout=5000) as blocker:
        qtbot.keyClick(w.seek, Qt.Key.Key_End)
    assert blocker.args == [w.seek.maximum()]


def test_smoothing_toggle_after_the_end_does_not_restart(box_window, qtbot, video) -> None:
    w = box_window
    w.speed.setCurrentText("max")
    with qtbot.waitSignal(w.run_ended, timeout=60000):
        w.open_source(video, max_frames=15)
    assert w.session is not None and w.session.finished
    last = w.last_index
    w.overlays.smoothing.setChecked(not w.overlays.smoothing.isChecked())
    qtbot.wait(300)
    assert w.session is not None and w.session.finished and w.last_index == last  # nothing played on
    assert "past the end" not in w.status_line.message()


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
