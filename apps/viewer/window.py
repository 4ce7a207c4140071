"""The main window: picture in the middle, controls on top, run info and tracks on the right."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence
from PyQt6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QSlider,
    QSplitter,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from stip_rt.errors import StipError
from stip_rt.pipeline_stats import PipelineStats
from stip_rt.types import FrameResult

from .dialogs import SettingsDialog, list_cameras
from .history import SessionHistory
from .options import ViewerOptions, load_options, save_options
from .panels import InfoPanel, OverlayPanel, PeoplePlot, TrackList
from .session import Session
from .video_view import VideoView

logger = logging.getLogger(__name__)

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.m4v);;All files (*)"
SPEEDS = {"0.25×": 0.25, "0.5×": 0.5, "1×": 1.0, "2×": 2.0, "4×": 4.0, "max": 0.0}


class MainWindow(QMainWindow):
    """stip-viewer's window.

    Args:
        options: initial options (e.g. from the command line); None = the remembered ones.
        settings: where options are remembered (QSettings); None = the user's default.

    Signals:
        frame_shown(int): the index of each frame painted (tests and --quit-after use it).
        run_ended(str): a run ended; the error message, or empty.
    """

    frame_shown = pyqtSignal(int)
    run_ended = pyqtSignal(str)

    def __init__(self, options: ViewerOptions | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        self._settings = settings or QSettings("stip-rt", "stip-viewer")
        self.options = options or load_options(self._settings)
        self.session: Session | None = None
        self.source: str | None = None
        self.history = SessionHistory()
        self.frames_shown = 0
        self.ui_latency_ms = 0.0
        self._last_index = -1
        self._frame_count: int | None = None
        self._fps = 0.0
        self._max_frames: int | None = None
        self.setWindowTitle("stip-viewer")
        self.resize(1360, 820)
        self.setAcceptDrops(True)
        self._build_ui()
        self._tick = time.perf_counter()
        self._latency_timer = QTimer(self, interval=20, timeout=self._measure_latency)
        self._latency_timer.start()
        self._info_timer = QTimer(self, interval=500, timeout=self._refresh_info)
        # a child of the window, so it dies with it (a bare singleShot could fire into a deleted window)
        self._status_reset = QTimer(self, singleShot=True, interval=8000)
        self._status_reset.timeout.connect(lambda: self.statusBar().setStyleSheet(""))
        self._info_timer.start()

    # ---------------------------------------------------------------- layout
    def _build_ui(self) -> None:
        self.view = VideoView()
        self.setCentralWidget(self.view)
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self._action(file_menu, "Open &video…", self.open_file_dialog, QKeySequence.StandardKey.Open)
        self.camera_menu = file_menu.addMenu("Open &camera")
        self.camera_menu.aboutToShow.connect(self._fill_camera_menu)
        self._action(file_menu, "Open stream &URL…", self.open_url_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "&Settings…", self.open_settings)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        rec_menu = menu.addMenu("&Record")
        self.record_action = self._action(rec_menu, "Start &recording…", self.toggle_recording)

        bar = QToolBar("Playback")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.start_action = self._action(bar, "Start", self.toggle_run)
        self.pause_action = self._action(bar, "Pause", self.toggle_pause, QKeySequence("Space"))
        self.step_action = self._action(bar, "Step", self.step)
        bar.addSeparator()
        bar.addWidget(QLabel(" speed "))
        self.speed = QComboBox()
        self.speed.addItems(list(SPEEDS))
        self.speed.setCurrentText("1×")
        self.speed.currentTextChanged.connect(self._speed_changed)
        bar.addWidget(self.speed)
        bar.addSeparator()
        self.seek = QSlider(Qt.Orientation.Horizontal)
        self.seek.setEnabled(False)
        self.seek.setMinimumWidth(320)
        self.seek.sliderReleased.connect(lambda: self.seek_to(self.seek.value()))
        bar.addWidget(self.seek)
        self.position = QLabel("  –  ")
        self.position.setMinimumWidth(120)
        bar.addWidget(self.position)

        self.info = InfoPanel()
        self.overlays = OverlayPanel(self.options)
        self.overlays.changed.connect(self._overlays_changed)
        self.tracks = TrackList()
        self.plot = PeoplePlot()
        side = QWidget()
        col = QVBoxLayout(side)
        col.addWidget(self.info)
        col.addWidget(self.overlays)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tracks)
        split.addWidget(self.plot)
        col.addWidget(split, 1)
        dock = QDockWidget("Session", self)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        dock.setWidget(side)
        dock.setMinimumWidth(360)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.statusBar().showMessage("Ready")
        self._update_controls()

    def _action(self, parent, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        parent.addAction(action)
        return action

    # ---------------------------------------------------------------- sources
    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", "", VIDEO_FILTER)
        if path:
            self.open_source(path)

    def open_url_dialog(self) -> None:
        url, ok = QInputDialog.getText(self, "Open stream", "RTSP / HTTP / HLS URL:")
        if ok and url.strip():
            self.open_source(url.strip())

    def _fill_camera_menu(self) -> None:
        self.camera_menu.clear()
        cameras = list_cameras()
        if not cameras:
            self.camera_menu.addAction("no camera found").setEnabled(False)
        for cam in cameras:
            self.camera_menu.addAction(cam, lambda c=cam: self.open_source(c))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.open_source(urls[0].toLocalFile() or urls[0].toString())

    def open_source(self, source: str, start: int = 0, max_frames: int | None = None) -> bool:
        """Stop the current run and start one on ``source``; errors go to the status bar."""
        self.stop_run()
        self.source = source
        self._max_frames = max_frames
        if start == 0:
            self.history.clear()
        try:
            self.session = Session(source, self.options, start=start, speed=SPEEDS[self.speed.currentText()],
                                   max_frames=max_frames)
            self.session.frame.connect(self._show_frame, Qt.ConnectionType.QueuedConnection)
            self.session.ended.connect(self._run_ended, Qt.ConnectionType.QueuedConnection)
            self.session.start()
        except StipError as e:
            self.session = None
            self.show_error(str(e))
            self.run_ended.emit(str(e))
            return False
        self.setWindowTitle(f"stip-viewer — {Path(source).name if Path(source).exists() else source}")
        self.statusBar().showMessage(f"Running {source}")
        self.view.set_message("Starting…")
        self._update_controls()
        return True

    # ---------------------------------------------------------------- controls
    def toggle_run(self) -> None:
        if self.session is not None:
            self.stop_run()
        elif self.source is not None:
            self.open_source(self.source)
        else:
            self.open_file_dialog()

    def stop_run(self) -> None:
        if self.session is None:
            return
        session, self.session = self.session, None
        session.frame.disconnect()
        session.stop()
        self.statusBar().showMessage("Stopped")
        self._update_controls()

    def toggle_pause(self) -> None:
        if self.session is None:
            return
        if self.session.sink.paused:
            self.session.sink.resume()
        else:
            self.session.sink.pause()
        self._update_controls()

    def step(self) -> None:
        if self.session is not None:
            self.session.sink.step()
            self._update_controls()

    def seek_to(self, frame: int) -> None:
        if self.source is not None and self._frame_count:
            self.open_source(self.source, start=max(0, min(frame, self._frame_count - 1)))

    def _speed_changed(self, text: str) -> None:
        if self.session is not None:
            self.session.sink.speed = SPEEDS[text]

    def _overlays_changed(self) -> None:
        new = self.overlays.apply_to(self.options)
        restart = new.smoothing != self.options.smoothing
        self.options = new
        save_options(self.options, self._settings)
        if self.session is not None:
            self.session.sink.set_options(new)
            if restart and self.source is not None:
                self.open_source(self.source, start=max(self._last_index, 0))

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.options, self)
        if dialog.exec():
            self.options = dialog.options()
            save_options(self.options, self._settings)
            if self.session is not None and self.source is not None:
                self.open_source(self.source, start=max(self._last_index, 0))

    def toggle_recording(self) -> None:
        if self.session is None:
            self.show_error("start a run before recording")
            return
        if self.session.sink.recording:
            self.session.sink.stop_recording()
            self.statusBar().showMessage("Recording saved")
        else:
            path, _ = QFileDialog.getSaveFileName(self, "Record annotated video", "session.mp4", VIDEO_FILTER)
            if path:
                self.start_recording(Path(path))
        self._update_controls()

    def start_recording(self, video: Path, tracks: list[Path] | None = None) -> None:
        """Record the annotated video and the tracks (default: ``<video>.jsonl`` and ``<video>.csv``)."""
        if self.session is None:
            raise StipError("nothing is running to record")
        tracks = tracks if tracks is not None else [video.with_suffix(".jsonl"), video.with_suffix(".csv")]
        try:
            self.session.sink.start_recording([video, *tracks])
        except StipError as e:
            self.show_error(str(e))
            return
        self.statusBar().showMessage(f"Recording to {video}")
        self._update_controls()

    def _update_controls(self) -> None:
        running = self.session is not None
        paused = running and self.session.sink.paused
        self.start_action.setText("Stop" if running else "Start")
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_action.setEnabled(running)
        self.step_action.setEnabled(running)
        self.seek.setEnabled(running and bool(self._frame_count))
        recording = running and self.session.sink.recording
        self.record_action.setText("Stop &recording" if recording else "Start &recording…")

    # ---------------------------------------------------------------- results (UI thread)
    def _show_frame(self, image: np.ndarray, result: FrameResult) -> None:
        self.view.set_frame(image)
        self.history.update(result)
        self._last_index = result.index
        self.frames_shown += 1
        if self.session is not None and self.session.sink.run is not None:
            src = self.session.sink.run.source
            self._frame_count, self._fps = src.frame_count, src.fps
            if src.frame_count and not self.seek.isSliderDown():
                self.seek.setRange(0, max(src.frame_count - 1, 0))
                self.seek.setValue(result.index)
            total = f"/{src.frame_count}" if src.frame_count else ""
            self.position.setText(f"  frame {result.index}{total}  {result.time:.1f}s")
        self.frame_shown.emit(result.index)

    def _run_ended(self, message: str) -> None:
        if message:
            self.show_error(message)
        else:
            self.statusBar().showMessage("Finished")
        if self.session is not None and self.sender() is self.session:
            self.session = None
        self._update_controls()
        self.run_ended.emit(message)

    def show_error(self, message: str) -> None:
        """Errors never close the window: status bar in red, and on the picture when it is empty."""
        logger.warning("%s", message)
        self.statusBar().setStyleSheet("color: #e05050;")
        self.statusBar().showMessage(message)
        self._status_reset.start()
        self.view.set_message(f"⚠ {message}")

    def _measure_latency(self) -> None:
        now = time.perf_counter()
        late = (now - self._tick - 0.020) * 1000
        self._tick = now
        self.ui_latency_ms = max(late, 0.9 * self.ui_latency_ms)

    def _refresh_info(self) -> None:
        self.info.set("ui latency", f"{self.ui_latency_ms:.0f} ms")
        self.tracks.refresh(self.history, self._fps)
        self.plot.refresh(self.history)
        if self.session is None:
            return
        self._show_stats(self.session.pipeline.stats())
        run = self.session.sink.run
        if run is not None:
            self.info.set("source", f"{run.source.uri} ({run.source.width}×{run.source.height} @ {run.source.fps:.1f})")
            self.info.set("model", run.pose_model)
            self.info.set("detector", run.detector)
            self.info.set("backend", run.backend)

    def _show_stats(self, s: PipelineStats) -> None:
        self.info.set("fps", f"{s.fps:.1f}")
        self.info.set("stages", "  ".join(f"{k} {v:.0f}" for k, v in s.stage_fps.items()) or "–")
        lat = s.latency_ms
        self.info.set("latency", f"{lat.get('p50', 0):.0f} ms (p95 {lat.get('p95', 0):.0f})" if lat else "–")
        self.info.set("people", str(len(self.history.people) and self.history.people[-1]))
        self.info.set("tracks", str(s.tracks))
        self.info.set("dropped", str(s.dropped))

    def closeEvent(self, event) -> None:
        self.stop_run()
        save_options(self.options, self._settings)
        super().closeEvent(event)

