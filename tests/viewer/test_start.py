"""Starting says what it does (opening, loading the pose model, downloads with progress, first frame);
the people plot's axis on an empty run; ``stip-viewer`` without the viewer extra prints the pip command."""

import builtins
import contextlib

import numpy as np
import pytest

import apps.viewer.window as window_module
import stip_rt.pipeline_build as pipeline_build
from apps.viewer.main import main as viewer_main
from apps.viewer.session import Session


@pytest.fixture
def statuses(monkeypatch):
    """Every status a session emits while starting: (text, done, total)."""
    seen = []

    class Recording(Session):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.status.connect(lambda text, done, total: seen.append((text, done, total)))

    monkeypatch.setattr(window_module, "Session", Recording)
    return seen


def test_starting_shows_each_step(make_window, qtbot, video, tiny_options, statuses, wait_frames):
    w = make_window(tiny_options)
    messages = []
    w.statusBar().messageChanged.connect(messages.append)
    w.open_source(video)
    assert w.starting_step and w.progress.isVisible()
    wait_frames(w, 1)
    texts = [t for t, _, _ in statuses]
    assert texts[0].startswith("opening ") and "detections gt.txt" in texts[0]
    assert any(t.startswith("loading the pose model") and "tiny.yaml" in t for t in texts)
    assert texts[-1] == "reading the first frame"
    assert any(m.startswith("Starting (") and "pose model" in m for m in messages)
    assert w.starting_step == "" and not w.progress.isVisible()
    assert w.statusBar().currentMessage().startswith("Running")


def test_downloads_report_progress(box_window, qtbot, video, statuses, monkeypatch, wait_frames):
    from stip_rt.weights import download

    real = pipeline_build.build_parts

    def build_with_download(config):  # what a zoo download deep in the build reports, through the hook
        with download._reporter("rtmdet-tiny", None) as progress:
            assert progress is not None  # the viewer installed a progress factory
            for done in (0, 5_000_000, 10_000_000):
                progress(done, 10_000_000)
        return real(config)

    monkeypatch.setattr(pipeline_build, "build_parts", build_with_download)
    box_window.open_source(video)
    wait_frames(box_window, 1)
    downloads = [s for s in statuses if s[0].startswith("downloading rtmdet-tiny")]
    assert downloads[-1] == ("downloading rtmdet-tiny: 10.0 / 10.0 MB", 10_000_000, 10_000_000)


def test_people_axis_on_an_empty_run(box_window, qtbot):
    plot = box_window.plot
    box_window._refresh_info()
    assert plot.y_range() == pytest.approx((0.0, 1.05))
    axis = plot._plot.getAxis("left")
    assert axis.autoSIPrefixScale == 1.0 and "x0.001" not in axis.labelString()
    for n in (0, 0, 3, 7, 2):
        box_window.history.times.append(len(box_window.history.times) / 10)
        box_window.history.people.append(n)
    box_window._refresh_info()
    assert plot.y_range()[0] == 0 and 7 <= plot.y_range()[1] < 8
    assert np.array_equal(plot.series()[1], [0, 0, 3, 7, 2])


def test_the_people_plot_without_pyqtgraph_has_no_points(qtbot, monkeypatch):
    from apps.viewer import plots
    from apps.viewer.history import SessionHistory

    monkeypatch.setattr(plots, "pg", None)
    plot = plots.PeoplePlot()
    qtbot.addWidget(plot)
    plot.refresh(SessionHistory())
    x, y = plot.series()
    assert x.size == 0 and y.size == 0


def test_without_the_viewer_extra_prints_the_pip_command(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_qt(name, *a, **k):
        if name.startswith("PyQt6"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *a, **k)

    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None if name == "PyQt6" else object())
    monkeypatch.setattr(builtins, "__import__", no_qt)
    with contextlib.suppress(SystemExit):
        code = viewer_main(["video.mp4"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'stip-rt[viewer]'" in err and "Traceback" not in err


def test_offline_start_names_every_missing_model_in_one_message(make_window, qtbot, video, tmp_path, monkeypatch):
    """Nothing cached and no network: the run ends with one message naming the detector's and the
    pose model's files (before, the pose model was named only once the detector was there)."""
    from apps.viewer.options import ViewerOptions
    from stip_rt.pipeline_build import AUTO_POSE

    monkeypatch.setenv("STIP_RT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STIP_RT_WEIGHTS_URL", "http://127.0.0.1:9/")
    w = make_window(ViewerOptions(device="cpu"))
    with qtbot.waitSignal(w.run_ended, timeout=30_000) as ended:
        w.open_source(video)
    message = ended.args[0]
    assert "2 model files are missing" in message
    for name in ("rtmdet-tiny", AUTO_POSE[1]):
        assert f"stip-rt weights import FILE --name {name}" in message, message


def test_a_live_source_warms_the_pose_model_up_while_the_window_stays_responsive(
    make_window, qtbot, tiny_options, statuses, monkeypatch, wait_frames
):
    """A camera's run warms its networks up before its first read (the camera kept drained meanwhile): the
    viewer warmed only the detector, not the pose model; the warm-up (seconds on a GPU) runs off the UI
    thread, the event loop goes on, and the status says what starting is doing."""
    import threading

    from fake_streams import serve_cameras
    from PyQt6.QtCore import QTimer

    from stip_rt.pose.estimator import PoseEstimator

    serve_cameras(monkeypatch)  # an endless camera of black 64×48 frames
    warming, release = threading.Event(), threading.Event()
    real_warm_up = PoseEstimator.warm_up
    sizes = []

    def slow_warm_up(self, width, height):  # a GPU's first calls: slow
        sizes.append((width, height))
        warming.set()
        release.wait(30)
        real_warm_up(self, width, height)

    monkeypatch.setattr(PoseEstimator, "warm_up", slow_warm_up)
    w = make_window(tiny_options)
    ticks = []
    timer = QTimer(w, interval=10, timeout=lambda: ticks.append(1))
    timer.start()
    try:
        assert w.open_source("0")
        qtbot.waitUntil(warming.is_set, timeout=30000)
        seen = len(ticks)
        qtbot.waitUntil(lambda: len(ticks) >= seen + 5, timeout=5000)  # the UI thread goes on meanwhile
        qtbot.waitUntil(lambda: "warming up the pose model" in w.starting_step, timeout=5000)
        assert not release.is_set() and w.frames_shown == 0
        assert "warming up the pose model" in w.statusBar().currentMessage()
        assert w.statusBar().currentMessage().startswith("Starting (")
    finally:
        release.set()
        timer.stop()  # a timer left firing into a later test's event processing crashed the run
        timer.timeout.disconnect()
    wait_frames(w, 2)
    assert sizes == [(64, 48)]  # once, at the camera's size
    texts = [t for t, _, _ in statuses]
    assert texts.index(next(t for t in texts if t.startswith("warming up"))) < texts.index("reading the first frame")


@pytest.mark.parametrize("live", [True, False])
def test_a_live_source_in_the_viewer_warms_its_pose_model_up(qtbot, video, tiny_options, monkeypatch, live):
    """The viewer loads its pose model after build_parts (which warms up what it built: the detector);
    a camera or stream then ran the pose network's slow first calls on its first frames."""
    import dataclasses

    from stip_rt.pose.estimator import PoseEstimator

    warmed = []
    real = PoseEstimator.warm_up
    monkeypatch.setattr(PoseEstimator, "warm_up", lambda self, w, h: (warmed.append((w, h)), real(self, w, h)))
    session = Session(video, tiny_options)
    cfg = session.config
    session.config = dataclasses.replace(cfg, source=dataclasses.replace(cfg.source, live=live))
    parts = session._build()
    try:
        assert parts.estimator is not None and parts.run.source.live == live
        assert warmed == ([(768, 576)] if live else [])
    finally:
        parts.source.close()
