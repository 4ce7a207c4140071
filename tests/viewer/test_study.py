"""Studying a run: select a track (list or video), trails, per-track plots, jump to frame, save the
frame, export the whole run, the recording indicator, the shortcuts panel, a large picture."""

import json

import cv2
import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt
from PyQt6.QtWidgets import QInputDialog

from stip_rt.io.draw import id_color
from stip_rt.io.read import read_tracks


def _person(w):
    """(id, box) of the widest person in the last frame."""
    t = w._last_result.tracks
    i = int(np.argmax(t.boxes[:, 2] - t.boxes[:, 0]))
    return int(t.ids[i]), t.boxes[i]


def test_click_on_the_video_selects_and_plots_the_track(box_window, qtbot, video, wait_frames):
    w = box_window
    w.open_source(video)
    wait_frames(w, 12)
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.session.sink.paused)
    tid, box = _person(w)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rect = w.view.image_rect()
    scale = rect.width() / w.last_image.shape[1]
    at = QPoint(int(rect.x() + cx * scale), int(rect.y() + cy * scale))
    qtbot.mouseClick(w.view, Qt.MouseButton.LeftButton, pos=at)
    assert w.selected == tid and w.session.sink.selected == tid
    # highlighted in the list, and outlined in white on the (repainted) picture
    w._refresh_info()
    assert [int(i.text()) for i in w.tracks.selectedItems() if i.column() == 0] == [tid]
    x1, y1, _, y2 = (round(v) for v in box)
    lw = max(2, round(min(w.last_image.shape[:2]) / 240))
    outline = w.last_image[y1 + 8 : y2 - 8, x1 - lw]
    assert (outline.min(axis=1) > 230).mean() > 0.8
    # the per-track plots: speed from stip_rt.analysis.movement over what was seen of that track
    df = w.track_plots.frame
    assert df is not None and set(df["track_id"]) == {tid} and "speed_px_s" in df.columns
    assert np.isfinite(df["speed_px_s"]).sum() >= 5 and f"track {tid}" in w.track_plots.title.text()
    assert not w.track_plots.angle_plot.isVisible()  # box-only: no joint angles
    # a click beside everybody clears the selection; the list selects it again
    w._video_clicked(-5.0, -5.0)
    assert w.selected is None and w.track_plots.frame is None
    row = [s.track_id for s in sorted(w.history.spans.values(), key=lambda s: s.track_id)].index(tid)
    w.tracks.selectRow(row)
    assert w.selected == tid


def test_joint_angles_of_the_selected_track(make_window, qtbot, video, tiny_options, wait_frames):
    w = make_window(tiny_options)
    w.open_source(video)
    wait_frames(w, 8)
    tid, _ = _person(w)
    w.select_track(tid)
    df = w.track_plots.frame
    assert {"left_knee_deg", "right_elbow_deg", "trunk_lean_deg"} <= set(df.columns)
    w.docks["Selected track"].raise_()
    assert w.track_plots.angle_plot.isVisible()


def test_trails_toggle(box_window, qtbot, video, wait_frames):
    w = box_window
    for box in (w.overlays.boxes, w.overlays.ids):
        box.setChecked(False)
    w.open_source(video)
    wait_frames(w, 15)
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.session.sink.paused)
    frame = w._last_result.image
    assert not np.array_equal(w.last_image, frame)  # trails drawn
    pts = w.session.sink.trails.points()
    tid = max(pts, key=lambda k: len(pts[k]))
    x, y = (round(v) for v in pts[tid][-1])
    near = w.last_image[max(y - 3, 0) : y + 4, max(x - 3, 0) : x + 4].reshape(-1, 3).astype(int)
    assert (np.abs(near - np.array(id_color(tid))).max(axis=1) < 40).any()
    w.trails_action.trigger()  # T
    assert not w.options.show_trails
    assert np.array_equal(w.last_image, frame)  # repainted without them while paused


def test_jump_to_frame_dialog(box_window, qtbot, video, monkeypatch, wait_frames):
    w = box_window
    w.open_source(video)
    wait_frames(w, 2)
    monkeypatch.setattr(QInputDialog, "getInt", lambda *a, **k: (300, True))
    with qtbot.waitSignal(w.session.seeked, timeout=30000) as blocker:
        w.jump_action.trigger()  # Ctrl+G
    assert blocker.args == [300]
    qtbot.waitUntil(lambda: w._last_index >= 300, timeout=30000)
    assert w.position.text().strip().startswith("frame 30")


def test_save_frame_and_export_the_whole_run(box_window, qtbot, video, tmp_path, wait_frames):
    w = box_window
    w.speed.setCurrentText("max")
    w.open_source(video, max_frames=20)
    qtbot.waitUntil(lambda: w._last_index >= 10, timeout=30000)
    png = tmp_path / "frame.png"
    assert w.save_frame(png)
    assert cv2.imread(str(png)).shape == w.last_image.shape
    qtbot.waitUntil(lambda: w._last_index >= 19, timeout=30000)
    out = tmp_path / "run.jsonl"
    assert w.export_run(out)
    tf = read_tracks(out)
    assert [f.frame for f in tf.frames] == list(range(20))  # from the first frame, not "from now on"
    assert {int(i) for f in tf.frames for i in f.tracks.ids} == set(w.history.spans)
    csv = tmp_path / "run.csv"
    assert w.export_run(csv) and len(csv.read_text().splitlines()) > 20
    assert not w.export_run(tmp_path / "run.mp4")  # video needs the pictures: Record
    assert "Record" in w.statusBar().currentMessage()
    json.loads(out.read_text().splitlines()[0])


def test_recording_indicator(box_window, qtbot, video, tmp_path, wait_frames):
    w = box_window
    w.open_source(video)
    wait_frames(w, 1)
    assert not w.rec_label.isVisible() and w.view.badge == ""
    w.start_recording(tmp_path / "rec.mp4")
    assert w.rec_label.isVisible() and w.view.badge == "● REC" and w.windowTitle().startswith("● REC")
    wait_frames(w, 2)
    w.toggle_recording()  # stop
    assert not w.rec_label.isVisible() and w.view.badge == "" and not w.windowTitle().startswith("●")


def test_help_panel_lists_the_shortcuts(box_window, qtbot):
    w = box_window
    w.help_action.trigger()  # F1
    assert w.help_dialog is not None and w.help_dialog.isVisible()
    for key in ("F1", "Space", "Ctrl+G", "Ctrl+S", "Ctrl+E", "T"):
        assert f"<b>{key}</b>" in w.help_dialog.text


@pytest.mark.parametrize("size", [(1180, 710)])
def test_the_video_takes_most_of_the_window(box_window, qtbot, video, tmp_path, size, wait_frames):
    w = box_window
    w.resize(*size)
    w.open_source(video)
    wait_frames(w, 3)
    qtbot.wait(200)
    rect = w.view.image_rect()
    assert rect.width() > 760, rect  # the issue: ~600 px before
    assert rect.width() * rect.height() > 0.5 * w.width() * w.height()
    assert all(d.features() & d.DockWidgetFeature.DockWidgetClosable for d in w.docks.values())
    w.docks["Run"].close()
    assert not w.docks["Run"].isVisible()
    w.grab().save(str(tmp_path / "viewer.png"))
