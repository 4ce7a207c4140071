"""Seeking keeps the built models (no second build, no ONNX export), never repeats track ids, breaks the
people plot, jumps where the seek bar is clicked, and never reads "Finished" while it runs on."""

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt

import stip_rt.pipeline_build as pipeline_build


@pytest.fixture
def counted_builds(monkeypatch):
    """Counts calls of build_parts and build_estimator (the slow part of starting)."""
    calls = {"parts": 0, "estimator": 0}
    real_parts, real_estimator = pipeline_build.build_parts, pipeline_build.build_estimator

    def parts(config):
        calls["parts"] += 1
        return real_parts(config)

    def estimator(config, device=None, pose=None):
        calls["estimator"] += config.pose.model != "none"  # build_parts asks for "none" too
        return real_estimator(config, device, pose)

    monkeypatch.setattr(pipeline_build, "build_parts", parts)
    monkeypatch.setattr(pipeline_build, "build_estimator", estimator)
    return calls


def _ids_at_or_after(history, frame):
    return {int(i) for f in history.frame_indices if f >= frame for i in history.tracks_at(f).ids}


def test_seek_keeps_models_and_ids_apart(box_window, qtbot, video, counted_builds, wait_frames):
    w = box_window
    w.speed.setCurrentText("2×")
    assert w.open_source(video)
    wait_frames(w, 8)
    session = w.session
    parts = session.parts
    detector, tracker = parts.detector, parts.tracker
    before = set(w.history.spans)
    assert before and counted_builds["parts"] == 1
    with qtbot.waitSignal(session.seeked, timeout=30000):
        w.seek_to(400)
    qtbot.waitUntil(lambda: w._last_index >= 405, timeout=60000)
    assert w.session is session and session.builds == 1
    assert counted_builds["parts"] == 1  # no second build
    assert session.parts.detector is detector and session.parts.tracker is tracker
    assert session.parts.source is not parts.source  # only the source was opened again
    after = _ids_at_or_after(w.history, 400)
    assert after and min(after) > max(before)  # the id counter went on
    # the track list keeps the two passes apart: every id lives either before or after the seek
    for span in w.history.spans.values():
        assert span.last_time < 40.0 or span.first_time >= 40.0, span
    assert "Finished" not in w.statusBar().currentMessage()
    # the people plot is broken at the seek, not joined by a straight line
    w._refresh_info()
    _, y = w.plot.series()
    gap = np.flatnonzero(np.isnan(y))
    assert gap.size == 1 and np.isfinite(y[gap[0] - 1]) and np.isfinite(y[gap[0] + 1])


def test_seek_back_keeps_the_pose_model(make_window, qtbot, video, tiny_options, counted_builds, wait_frames):
    w = make_window(tiny_options)
    assert w.open_source(video)
    wait_frames(w, 10)
    session = w.session
    estimator = session.parts.estimator
    assert estimator is not None and counted_builds["estimator"] == 1
    top = w.history.max_id
    with qtbot.waitSignal(session.seeked, timeout=30000):
        w.seek_to(2)  # backwards: the tracker starts again, its frame order too
    wait_frames(w, 3)
    assert session.parts.estimator is estimator and counted_builds == {"parts": 1, "estimator": 1}
    last = w._last_index
    new_pass = {int(i) for f in range(2, last + 1) for i in w.history.tracks_at(f).ids}
    assert new_pass and min(new_pass) > top  # frames seen again carry new ids only
    assert w.history.tracks_at(w._last_index).keypoints is not None


def test_clicking_the_seek_bar_jumps_there(box_window, qtbot, video, wait_frames):
    w = box_window
    w.open_source(video)
    wait_frames(w, 3)
    slider = w.seek
    assert slider.isEnabled() and slider.maximum() > 700
    x = int(slider.width() * 0.75)
    expected = slider.value_at(x)
    assert 0.6 * slider.maximum() < expected < 0.9 * slider.maximum()
    with qtbot.waitSignal(w.session.seeked, timeout=30000) as blocker:
        qtbot.mouseClick(slider, Qt.MouseButton.LeftButton, pos=QPoint(x, slider.height() // 2))
    assert blocker.args == [expected]
    qtbot.waitUntil(lambda: w._last_index >= expected, timeout=30000)
    assert abs(slider.value() - w._last_index) <= 2


def test_finished_run_can_seek_without_rebuilding(box_window, qtbot, video, counted_builds):
    w = box_window
    w.speed.setCurrentText("max")
    with qtbot.waitSignal(w.run_ended, timeout=60000) as blocker:
        w.open_source(video, max_frames=15)
    assert blocker.args == [""] and "Finished" in w.statusBar().currentMessage()
    assert w.session is not None and w.session.finished
    ids = set(w.history.spans)
    with qtbot.waitSignal(w.run_ended, timeout=60000):
        w.toggle_run()  # Play again: from frame 0 on the same models
    assert counted_builds["parts"] == 1
    assert min(set(w.history.spans) - ids) > max(ids)


class _WatchedContainer:
    """A PyAV input container that notes its seeks and the dts of the first packet read after the last one."""

    def __init__(self, container):
        self._c = container
        self.seeks = 0
        self.first_dts = None

    def __getattr__(self, name):
        return getattr(self._c, name)

    def seek(self, *args, **kw):
        self.seeks += 1
        self.first_dts = None
        return self._c.seek(*args, **kw)

    def demux(self, *args, **kw):
        for packet in self._c.demux(*args, **kw):
            if self.first_dts is None:
                self.first_dts = packet.dts
            yield packet


def test_seek_decodes_from_the_keyframe_before_the_target(box_window, qtbot, video, wait_frames, monkeypatch):
    from stip_rt.io import video_source

    opened = []
    real = video_source._open_container

    def watched(*args):
        opened.append(_WatchedContainer(real(*args)))
        return opened[-1]

    monkeypatch.setattr(video_source, "_open_container", watched)
    w = box_window
    assert w.open_source(video)
    wait_frames(w, 3)
    assert len(opened) == 1 and opened[0].seeks == 0 and opened[0].first_dts == 0  # from frame 0: no seek
    with qtbot.waitSignal(w.session.seeked, timeout=30000):
        w.seek_to(400)
    qtbot.waitUntil(lambda: w._last_index >= 400, timeout=30000)
    assert len(opened) == 2 and opened[1].seeks >= 1
    # vtest.avi has keyframes 0, 250, 500, 750: decoding starts at 250, so 150 frames are decoded before the
    # target (fewer than a keyframe interval) instead of 400
    assert opened[1].first_dts == 250
    assert w.history.frame_indices and min(f for f in w.history.frame_indices if f >= 300) == 400


# ---------------------------------------------------------------- videos whose container counts no frames


def _video(path, n=60, fps=10):
    """``n`` frames of 96×64 at ``fps``, a keyframe every 10, each frame's brightness its number (×4)."""
    import av

    codec = {".webm": "libvpx-vp9", ".avi": "mpeg4"}.get(path.suffix, "libx264")
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.codec_context.gop_size = 10
        if codec == "libx264":
            s.options = {"g": "10", "keyint_min": "10", "sc_threshold": "0", "bf": "0"}
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((64, 96, 3), i * 4, np.uint8), format="bgr24")
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def _frames_shown(session):
    """(index, raw image) of every frame ``session`` shows from now on."""
    shown = []
    session.frame.connect(lambda image, result: shown.append((result.index, result.image)))
    return shown


@pytest.mark.parametrize("name", ["rec.mkv", "rec.webm", "rec.ts", "rec.mov"])
def test_a_video_whose_container_counts_no_frames_can_be_sought(box_window, qtbot, tmp_path, wait_frames, name):
    """Matroska/WebM (a Record or `stip-rt track --video x.mkv` output) and MPEG-TS state no frame count: the
    seek bar stayed disabled. Their length is estimated from the duration (~N), the frames sought are those
    a decode from frame 0 gives, and the length is exact once the end is reached (.mov: counted all along)."""
    from stip_rt.io.video_source import VideoSource

    path = _video(tmp_path / name)
    with VideoSource(str(path)) as src:
        full = {f.index: f.image for f in src}
    assert len(full) == 60
    counted = name.endswith(".mov")
    w = box_window
    assert w.open_source(str(path))
    wait_frames(w, 2)
    session = w.session
    assert w.seek.isEnabled() and w.frame_count == 60 and w.seek.maximum() == 59
    assert session.length_estimated is not counted
    assert ("/60 " if counted else "/~60 ") in w.position.text()
    shown = _frames_shown(session)
    with qtbot.waitSignal(session.seeked, timeout=30000):
        w.seek_to(45)
    with qtbot.waitSignal(w.run_ended, timeout=30000) as ended:
        pass
    assert ended.args == [""] and w.session is session and session.builds == 1
    after = [(i, image) for i, image in shown if i >= 45]
    assert [i for i, _ in after] == list(range(45, 60))  # the numbers of a decode from frame 0 ...
    for i, image in after:
        assert np.array_equal(image, full[i]), i  # ... and its pictures
    assert w.frame_count == 60 and not session.length_estimated  # known now: the end was reached
    assert "/60 " in w.position.text()


def test_a_seek_past_the_real_end_of_an_estimated_length_keeps_the_models(
    box_window, qtbot, tmp_path, wait_frames, monkeypatch
):
    """A duration that says more than the video holds (a longer audio track): a seek past its last frame
    ends in an error that keeps the models; the seek bar ends before that frame, and seeking on works."""
    import stip_rt.io.video_seek as video_seek

    monkeypatch.setattr(video_seek, "estimated_frame_count", lambda uri: 70)
    path = _video(tmp_path / "longer.mkv")
    w = box_window
    assert w.open_source(str(path))
    wait_frames(w, 2)
    session = w.session
    assert w.frame_count == 70 and w.seek.maximum() == 69
    with qtbot.waitSignal(w.run_ended, timeout=30000) as ended:
        w.seek_to(65)
    assert "longer.mkv: the start frame 65 is past the end of the video (60 frames" in ended.args[0]
    assert w.session is session and session.ready and w.statusBar().currentMessage() == ended.args[0]
    assert w.frame_count == 65 and w.seek.maximum() == 64 and w.seek.isEnabled()
    w.speed.setCurrentText("max")
    with qtbot.waitSignal(w.run_ended, timeout=30000) as ended:
        w.seek_to(50)
    assert ended.args == [""] and w.last_index == 59 and session.builds == 1
    assert w.frame_count == 60 and not session.length_estimated and w.seek.maximum() == 59
