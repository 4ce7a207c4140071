"""Fixtures of the viewer tests: a window on temporary settings, box-only tracking of vtest.avi with
the MOT ground truth as detections (no model), and a tiny random pose model for keypoint tests."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

TINY_HRNET = {"name": "tiny-hrnet", "arch": "hrnet", "schema": "coco17", "input_size": [64, 64],
              "net": {"widths": [8, 16, 24, 32], "num_modules": [1, 1, 1], "num_blocks": 1, "stem_blocks": 1}}


@pytest.fixture
def video(data_dir):
    return str(data_dir / "opencv_samples/vtest.avi")


@pytest.fixture
def gt(data_dir):
    return str(data_dir / "mot15/PETS09-S2L1/gt/gt.txt")


@pytest.fixture
def settings(tmp_path):
    from PyQt6.QtCore import QSettings

    return QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def tiny_model(tmp_path):
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_HRNET))
    return str(path)


@pytest.fixture
def tiny_options(tiny_model, gt, tmp_path):
    """The tiny random pose model on ground-truth boxes; a tracker that keeps people with any score
    (random keypoints score low) and gate on boxes only."""
    from apps.viewer.options import ViewerOptions

    tracker = tmp_path / "trk.yaml"
    tracker.write_text("high_score: 0.0\nlow_score: 0.0\nnew_track_score: 0.0\ngate: box\noks_weight: 0.0\n")
    return ViewerOptions(model=tiny_model, weights="random", backend="torch", device="cpu", detections=gt,
                         tracker=str(tracker))


@pytest.fixture
def make_window(qtbot, settings):
    """``make_window(options, **kwargs)``: a shown MainWindow, stopped at the end of the test."""
    from apps.viewer.window import MainWindow

    made = []

    def make(options=None, **kwargs):
        w = MainWindow(options, settings, **kwargs)
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop_run()


@pytest.fixture
def box_window(make_window, gt):
    """A window tracking the ground-truth boxes (no pose model)."""
    from apps.viewer.options import ViewerOptions

    return make_window(ViewerOptions(model="none", detections=gt))


@pytest.fixture
def run_viewer(tmp_path):
    """``run_viewer(*args) -> CompletedProcess``: ``stip-viewer`` in a child process, offscreen, with its
    settings under ``tmp_path/config`` (an event loop run and quit inside the test process leaves Qt
    unable to deliver later cross-thread signals to the tests that follow)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]

    def run(*args: str, cwd=None):
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
               "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
        return subprocess.run([sys.executable, "-m", "apps.viewer.main", *args], env=env, cwd=cwd or repo,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    return run


@pytest.fixture
def child_settings(tmp_path):
    """The QSettings that a ``run_viewer`` child reads and writes."""
    from PyQt6.QtCore import QSettings

    return QSettings(str(tmp_path / "config/stip-rt/stip-viewer.conf"), QSettings.Format.IniFormat)


@pytest.fixture
def wait_frames(qtbot):
    """``wait_frames(window, n)``: wait until ``n`` more frames were painted."""

    def wait(window, n, timeout=60000):
        target = window.frames_shown + n
        qtbot.waitUntil(lambda: window.frames_shown >= target, timeout=timeout)

    return wait
