"""The Qt viewer, offscreen: frames arrive, overlays are drawn, toggles change the picture,
recording writes a playable file, a failing source shows its error and the window survives."""

import os

import av
import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PyQt6")

from PyQt6.QtCore import QSettings

from apps.viewer.options import ViewerOptions
from apps.viewer.window import MainWindow
from stip_rt.io.draw import id_color


@pytest.fixture
def window(qtbot, tmp_path, data_dir):
    settings = QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat)
    opts = ViewerOptions(model="none", detections=str(data_dir / "mot15/PETS09-S2L1/gt/gt.txt"))
    w = MainWindow(opts, settings)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.stop_run()


def _frames(window, qtbot, n):
    got = []
    window.session.frame.connect(lambda image, result: got.append((image, result)))
    qtbot.waitUntil(lambda: len(got) >= n, timeout=60000)
    return got


def test_frames_arrive_with_boxes_in_id_colours(window, qtbot, data_dir):
    assert window.open_source(str(data_dir / "opencv_samples/vtest.avi"), max_frames=40)
    image, result = _frames(window, qtbot, 3)[-1]
    assert len(result.tracks) > 0 and result.image is not None
    box = result.tracks.boxes[0].round().astype(int)
    color = np.array(id_color(int(result.tracks.ids[0])))
    edge = image[box[1] + 4 : box[3] - 4, box[0]]  # left edge, below the label
    assert (np.abs(edge.astype(int) - color).max(axis=1) < 40).mean() > 0.8
    assert not np.array_equal(image, result.image)
    # boxes off: the same pixels are the frame's own again
    window.overlays.boxes.setChecked(False)
    window.overlays.ids.setChecked(False)
    window.overlays.trails.setChecked(False)
    image2, result2 = _frames(window, qtbot, 2)[-1]
    assert np.array_equal(image2, result2.image)
    qtbot.waitUntil(lambda: window.frames_shown >= 5, timeout=30000)


def test_recording_writes_a_playable_video(window, qtbot, tmp_path, data_dir):
    window.open_source(str(data_dir / "opencv_samples/vtest.avi"), max_frames=30)
    _frames(window, qtbot, 1)
    out = tmp_path / "rec.mp4"
    window.start_recording(out)
    _frames(window, qtbot, 5)
    window.session.sink.stop_recording()
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 5
    assert out.with_suffix(".jsonl").read_text().count("\n") >= 5


def test_bad_source_shows_error_and_window_survives(window, qtbot, tmp_path, data_dir):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_text("hello")
    with qtbot.waitSignal(window.run_ended, timeout=30000) as blocker:
        window.open_source(str(bad))
    assert "not_a_video.mp4" in blocker.args[0]
    assert "not_a_video.mp4" in window.statusBar().currentMessage()
    assert window.isVisible()
    assert window.open_source(str(data_dir / "opencv_samples/vtest.avi"), max_frames=5)
    _frames(window, qtbot, 1)


def test_screenshot_mode(tmp_path, data_dir, run_viewer):
    shot = tmp_path / "shot.png"
    done = run_viewer(str(data_dir / "opencv_samples/vtest.avi"), "--fresh", "--pose", "none", "--detections",
                      str(data_dir / "mot15/PETS09-S2L1/gt/gt.txt"), "--quit-after", "3", "--screenshot", str(shot))
    code = done.returncode
    assert code == 0 and shot.stat().st_size > 10000, done.stderr
