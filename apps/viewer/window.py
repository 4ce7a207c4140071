"""The main window: the picture in the middle, controls on top, panels in dock widgets on the right."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import cv2
import numpy as np
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence, QMouseEvent
from PyQt6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolBar,
    QWidget,
)

from stip_rt.errors import StipError
from stip_rt.io.sinks import open_sink
from stip_rt.pipeline_stats import PipelineStats
from stip_rt.types import FrameResult

from .dialogs import HelpDialog, SettingsDialog, list_cameras
from .history import SessionHistory
from .options import (
    DEMO_ONLY,
    ViewerOptions,
    blame_remembered,
    missing_files,
    remembered_options,
    reset_options,
    save_options,
)
from .panels import InfoPanel, OverlayPanel, PeoplePlot, TrackList, TrackPlots
from .session import Session
from .video_view import VideoView

logger = logging.getLogger(__name__)

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.m4v);;All files (*)"
TRACKS_FILTER = "Tracks (*.jsonl *.csv *.json *.txt);;All files (*)"
SPEEDS = {"0.25×": 0.25, "0.5×": 0.5, "1×": 1.0, "2×": 2.0, "4×": 4.0, "max": 0.0}
DOCK_WIDTH = 310  # px: at 1180×710 the picture keeps ~840 px


class SeekSlider(QSlider):
    """A horizontal slider where a click on the groove jumps there (Qt's default only pages).

    Signals:
        jumped(int): the value the user chose, by clicking the groove or releasing the handle.
    """

    jumped = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.sliderReleased.connect(lambda: self.jumped.emit(self.value()))

    def value_at(self, x: float) -> int:
        """The value under widget x coordinate ``x``."""
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        style = self.style()
        groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderGroove, self)
        handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, self)
        span = max(1, groove.width() - handle.width())
        pos = round(x - groove.x() - handle.width() / 2)
        return QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), min(max(pos, 0), span), span)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.isEnabled():
            opt = QStyleOptionSlider()
            self.initStyleOption(opt)
            handle = self.style().subControlRect(
                QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, self
            )
            if not handle.contains(event.position().toPoint()):
                value = self.value_at(event.position().x())
                self.setValue(value)
                self.jumped.emit(value)
                event.accept()
                return
        super().mousePressEvent(event)


class MainWindow(QMainWindow):
    """stip-viewer's window.

    Args:
        options: initial options (e.g. the remembered ones with the command line's on top); None =
            the remembered ones.
        settings: where options are remembered (QSettings); None = the user's default.
        remembered: names of the fields of ``options`` that came from the remembered settings (errors
            they cause say so); default: read from ``settings`` when ``options`` is None, else none.
        cli: names of the fields given on the command line: used for this launch, not remembered.

    Signals:
        frame_shown(int): the index of each frame painted (tests and --quit-after use it).
        run_ended(str): a run ended; the error message, or empty.
    """

    frame_shown = pyqtSignal(int)
    run_ended = pyqtSignal(str)

    def __init__(self, options: ViewerOptions | None = None, settings: QSettings | None = None, *,
                 remembered: set[str] | None = None, cli: set[str] | None = None) -> None:  # fmt: skip
        super().__init__()
        self._settings = settings or QSettings("stip-rt", "stip-viewer")
        if options is None:
            options, found = remembered_options(self._settings)
            remembered = found if remembered is None else remembered
        self.options = options
        self._remembered = set(remembered or ())
        self._cli = set(cli or ())
        self._cli_values = {k: getattr(options, k) for k in self._cli}
        self.session: Session | None = None
        self.source: str | None = None
        self.history = SessionHistory()
        self.selected: int | None = None
        self.frames_shown = 0
        self.ui_latency_ms = 0.0
        self.last_image: np.ndarray | None = None
        self._last_result: FrameResult | None = None
        self._last_index = -1
        self._frame_count: int | None = None
        self._fps = 0.0
        self._max_frames: int | None = None
        self._starting_since: float | None = None
        self._step_text = ""
        self._plots_dirty = False
        self.help_dialog: HelpDialog | None = None
        self.setWindowTitle("stip-viewer")
        self.resize(1360, 820)
        self.setAcceptDrops(True)
        self._build_ui()
        self._tick = time.perf_counter()
        self._latency_timer = QTimer(self, interval=20, timeout=self._measure_latency)
        self._latency_timer.start()
        self._info_timer = QTimer(self, interval=500, timeout=self._refresh_info)
        self._plot_timer = QTimer(self, interval=1000, timeout=self._refresh_track_plots)
        # a child of the window, so it dies with it (a bare singleShot could fire into a deleted window)
        self._status_reset = QTimer(self, singleShot=True, interval=8000)
        self._status_reset.timeout.connect(lambda: self.statusBar().setStyleSheet(""))
        self._info_timer.start()
        self._plot_timer.start()

    # ---------------------------------------------------------------- layout
    def _build_ui(self) -> None:
        self.view = VideoView()
        self.view.clicked.connect(self._video_clicked)
        self.setCentralWidget(self.view)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self._action(file_menu, "Open &video…", self.open_file_dialog, QKeySequence.StandardKey.Open)
        self.camera_menu = file_menu.addMenu("Open &camera")
        self.camera_menu.aboutToShow.connect(self._fill_camera_menu)
        self._action(file_menu, "Open stream &URL…", self.open_url_dialog)
        file_menu.addSeparator()
        self.save_frame_action = self._action(file_menu, "Save &frame as PNG…", self.save_frame_dialog,
                                              QKeySequence("Ctrl+S"))  # fmt: skip
        self.export_action = self._action(file_menu, "&Export run (everything seen)…", self.export_run_dialog,
                                          QKeySequence("Ctrl+E"))  # fmt: skip
        file_menu.addSeparator()
        self._action(file_menu, "&Settings…", self.open_settings, QKeySequence("Ctrl+,"))
        self.reset_action = self._action(file_menu, "&Reset settings", self.reset_settings)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        rec_menu = menu.addMenu("&Record")
        self.record_action = self._action(rec_menu, "Start &recording…", self.toggle_recording, QKeySequence("Ctrl+R"))
        self.view_menu = menu.addMenu("&View")
        self.jump_action = self._action(self.view_menu, "&Jump to frame…", self.jump_dialog, QKeySequence("Ctrl+G"))
        self.trails_action = self._action(self.view_menu, "&Trails", lambda: self.overlays.trails.toggle(),
                                          QKeySequence("T"))  # fmt: skip
        self._action(self.view_menu, "&Clear selection", lambda: self.select_track(None), QKeySequence("Escape"))
        self.view_menu.addSeparator()
        help_menu = menu.addMenu("&Help")
        self.help_action = self._action(help_menu, "&Shortcuts…", self.show_help, QKeySequence("F1"))

        bar = QToolBar("Playback")
        bar.setMovable(False)
        self.addToolBar(bar)
        self.start_action = self._action(bar, "Start", self.toggle_run)
        self.pause_action = self._action(bar, "Pause", self.toggle_pause, QKeySequence("Space"))
        self.step_action = self._action(bar, "Step", self.step, QKeySequence("."))
        bar.addSeparator()
        bar.addWidget(QLabel(" speed "))
        self.speed = QComboBox()
        self.speed.addItems(list(SPEEDS))
        self.speed.setCurrentText("1×")
        self.speed.currentTextChanged.connect(self._speed_changed)
        bar.addWidget(self.speed)
        bar.addSeparator()
        self.seek = SeekSlider()
        self.seek.setEnabled(False)
        self.seek.setMinimumWidth(320)
        self.seek.jumped.connect(self.seek_to)
        bar.addWidget(self.seek)
        self.position = QLabel("  –  ")
        self.position.setMinimumWidth(150)
        bar.addWidget(self.position)

        self.info = InfoPanel()
        self.overlays = OverlayPanel(self.options)
        self.overlays.changed.connect(self._overlays_changed)
        self.tracks = TrackList()
        self.tracks.selected.connect(lambda tid: self.select_track(tid or None))
        self.plot = PeoplePlot()
        self.track_plots = TrackPlots()
        self.info.setTitle("")
        self.overlays.setTitle("")
        info_scroll = QScrollArea()  # the run info scrolls rather than forcing the window taller
        info_scroll.setWidget(self.info)
        info_scroll.setWidgetResizable(True)
        info_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.docks: dict[str, QDockWidget] = {}
        for name, widget in (("Run", info_scroll), ("Overlays", self.overlays), ("Tracks", self.tracks),
                             ("Selected track", self.track_plots), ("People", self.plot)):  # fmt: skip
            dock = QDockWidget(name, self)
            dock.setObjectName(name)
            dock.setWidget(widget)
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            self.view_menu.addAction(dock.toggleViewAction())
            self.docks[name] = dock
        self.tabifyDockWidget(self.docks["Run"], self.docks["Overlays"])
        self.tabifyDockWidget(self.docks["Tracks"], self.docks["Selected track"])
        self.tabifyDockWidget(self.docks["Tracks"], self.docks["People"])
        self.docks["Run"].raise_()
        self.docks["Tracks"].raise_()
        self.resizeDocks([self.docks["Run"]], [DOCK_WIDTH], Qt.Orientation.Horizontal)

        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        self.rec_label = QLabel("● REC")
        self.rec_label.setStyleSheet("color: white; background: #c81e1e; padding: 1px 6px; font-weight: bold;")
        self.rec_label.setVisible(False)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.rec_label)
        self.statusBar().showMessage("Ready — F1 lists the shortcuts")
        self._update_controls()

    def _action(self, parent, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        parent.addAction(action)
        if parent is not self and shortcut is not None:
            self.addAction(action)  # shortcuts work while the menu bar is hidden (offscreen too)
        return action

    def shortcuts(self) -> list[tuple[str, str]]:
        """(what, key) of every action with a shortcut, for the help panel."""
        out = []
        for action in self.actions():
            key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if key:
                out.append((action.text().replace("&", ""), key))
        out.append(("Select a track", "click it"))
        out.append(("Jump in the video", "click the seek bar"))
        return out

    def show_help(self) -> None:
        if self.help_dialog is None:
            self.help_dialog = HelpDialog(self.shortcuts(), self)
        self.help_dialog.show()
        self.help_dialog.raise_()

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

    def open_source(self, source: str, start: int = 0, max_frames: int | None = None,
                    keep_history: bool = False) -> bool:  # fmt: skip
        """Stop the current run and start one on ``source`` (building the models); errors go to the status bar.

        Args:
            source: video file, camera, stream URL or image folder.
            start: first frame.
            max_frames: stop after this many frames.
            keep_history: keep what was seen (a restart after a settings change): new ids start above
                the old ones.
        """
        self.stop_run()
        if not keep_history or source != self.source:
            self.history.clear()
            self.select_track(None)
        self.source = source
        self._max_frames = max_frames
        missing = missing_files(self.options, self._remembered)
        if missing:
            return self._fail_to_start(f"{', '.join(missing)}: file not found")
        next_id = self.history.max_id + 1 if self.history.max_id else None
        try:
            self.session = Session(source, self.options, start=start, speed=SPEEDS[self.speed.currentText()],
                                   max_frames=max_frames, next_id=next_id)  # fmt: skip
        except StipError as e:
            return self._fail_to_start(str(e))
        self.session.frame.connect(self._show_frame, Qt.ConnectionType.QueuedConnection)
        self.session.ended.connect(self._run_ended, Qt.ConnectionType.QueuedConnection)
        self.session.status.connect(self._starting_step, Qt.ConnectionType.QueuedConnection)
        self.session.seeked.connect(self._seeked, Qt.ConnectionType.QueuedConnection)
        self._starting_since = time.perf_counter()
        self._step_text = "preparing"
        self.session.start()
        self.setWindowTitle(f"stip-viewer — {Path(source).name if Path(source).exists() else source}")
        self._show_starting()
        self._update_controls()
        return True

    def _fail_to_start(self, message: str) -> bool:
        self.session = None
        self.show_error(message)
        self.run_ended.emit(self.statusBar().currentMessage())
        self._update_controls()
        return False

    # ---------------------------------------------------------------- starting
    def _starting_step(self, text: str, done: int, total: int) -> None:
        if self.sender() is not self.session or self._starting_since is None:
            return
        self._step_text = text
        self.progress.setVisible(True)
        self.progress.setRange(0, 1000 if total else 0)  # 0..0: busy
        if total:
            self.progress.setValue(round(1000 * done / total))
        self._show_starting()

    def _show_starting(self) -> None:
        if self._starting_since is None:
            return
        seconds = time.perf_counter() - self._starting_since
        text = f"Starting ({seconds:.0f} s): {self._step_text}…"
        self.statusBar().showMessage(text)
        self.view.set_message(text)
        self.progress.setVisible(True)

    @property
    def starting_step(self) -> str:
        """What starting is doing now (empty once frames arrive)."""
        return self._step_text if self._starting_since is not None else ""

    # ---------------------------------------------------------------- controls
    @property
    def running(self) -> bool:
        return self.session is not None and not self.session.finished

    def toggle_run(self) -> None:
        if self.session is not None and self.session.finished:
            self.seek_to(0)  # play again on the same models
        elif self.session is not None:
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
        self._starting_since = None
        self.progress.setVisible(False)
        self.statusBar().showMessage("Stopped")
        self._update_controls()

    def toggle_pause(self) -> None:
        if not self.running:
            return
        if self.session.sink.paused:
            self.session.sink.resume()
        else:
            self.session.sink.pause()
        self._update_controls()

    def step(self) -> None:
        if self.running:
            self.session.sink.step()
            self._update_controls()

    def seek_to(self, frame: int) -> None:
        """Continue from ``frame``: in the running session (models kept, ids never repeated), else a new run."""
        if self.source is None or not self._frame_count:
            return
        frame = max(0, min(int(frame), self._frame_count - 1))
        self.history.mark_break()
        self.seek.setValue(frame)
        if self.session is not None and self.session.ready:
            self.session.seek(frame)
            self.statusBar().showMessage(f"Seeking to frame {frame}")
            self._update_controls()
        elif self.session is None:
            self.open_source(self.source, start=frame, max_frames=self._max_frames, keep_history=True)

    def jump_dialog(self) -> None:
        if not self._frame_count:
            self.show_error("jump to frame: open a video file first")
            return
        frame, ok = QInputDialog.getInt(self, "Jump to frame", f"frame (0–{self._frame_count - 1}):",
                                        max(self._last_index, 0), 0, self._frame_count - 1)  # fmt: skip
        if ok:
            self.seek_to(frame)

    def _seeked(self, frame: int) -> None:
        if self.sender() is self.session:
            self.statusBar().showMessage(f"Playing from frame {frame}")
            self._update_controls()

    def _speed_changed(self, text: str) -> None:
        if self.session is not None:
            self.session.sink.speed = SPEEDS[text]

    def _changed(self, new: ViewerOptions) -> None:
        """Take ``new`` options from the user: remembered from now on (command-line ones too, once changed)."""
        default = ViewerOptions()
        for f in dataclasses.fields(ViewerOptions):
            value = getattr(new, f.name)
            if value != getattr(self.options, f.name):
                self._cli.discard(f.name)
                if value != getattr(default, f.name) and DEMO_ONLY.get(f.name) != value:
                    self._remembered.add(f.name)
                else:
                    self._remembered.discard(f.name)
        self.options = new
        save_options(self.options, self._settings, skip=self._cli)

    def _overlays_changed(self) -> None:
        new = self.overlays.apply_to(self.options)
        retrack = new.smoothing != self.options.smoothing
        self._changed(new)
        if self.session is None:
            return
        self.session.sink.set_options(new)
        if retrack and self.session.ready:
            self.history.mark_break()
            self.session.seek(max(self._last_index + 1, 0), options=new)  # the models stay
        elif self._last_result is not None and (self.session.sink.paused or self.session.finished):
            self._repaint_last()

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.options, self)
        if dialog.exec():
            self._changed(dialog.options())
            if self.session is not None and self.source is not None:
                self.open_source(self.source, start=max(self._last_index, 0), max_frames=self._max_frames,
                                 keep_history=True)  # fmt: skip

    def reset_settings(self) -> None:
        """Forget every remembered setting; options given on the command line stay for this launch."""
        reset_options(self._settings)
        self.options = dataclasses.replace(ViewerOptions(), **self._cli_values)
        self._remembered.clear()
        self.overlays.blockSignals(True)
        for box, value in ((self.overlays.boxes, self.options.show_boxes),
                           (self.overlays.skeleton, self.options.show_skeleton),
                           (self.overlays.ids, self.options.show_ids), (self.overlays.trails, self.options.show_trails),
                           (self.overlays.smoothing, self.options.smoothing)):  # fmt: skip
            box.setChecked(value)
        self.overlays.threshold.setValue(round(self.options.kpt_threshold * 100))
        self.overlays.blockSignals(False)
        if self.session is not None:
            self.session.sink.set_options(self.options)
        kept = f" (kept from the command line: {', '.join(sorted(self._cli))})" if self._cli else ""
        self.statusBar().showMessage(f"Settings reset to the defaults{kept}; they apply from the next Start")

    # ---------------------------------------------------------------- selection
    def select_track(self, track_id: int | None) -> None:
        """Highlight ``track_id`` on the video, in the list and in the per-track plots (None: clear)."""
        self.selected = track_id
        self.tracks.select_id(track_id)
        if self.session is not None:
            self.session.sink.selected = track_id
        self.track_plots.refresh(self.history, track_id)
        if track_id is not None:
            self.docks["Selected track"].raise_()
        if self._last_result is not None and self.session is not None and (
            self.session.sink.paused or self.session.finished
        ):
            self._repaint_last()

    def track_at(self, x: float, y: float) -> int | None:
        """The id of the person whose box holds frame pixel (x, y) in the last frame (the smallest box wins)."""
        if self._last_result is None:
            return None
        t = self._last_result.tracks
        b = t.boxes
        inside = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])
        if not inside.any():
            return None
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        return int(t.ids[np.flatnonzero(inside)[np.argmin(area[inside])]])

    def _video_clicked(self, x: float, y: float) -> None:
        self.select_track(self.track_at(x, y))

    def _repaint_last(self) -> None:
        if self.session is not None and self._last_result is not None:
            self.last_image = self.session.sink.render(self._last_result)
            self.view.set_frame(self.last_image)

    def _refresh_track_plots(self) -> None:
        if self.selected is not None and self._plots_dirty and self.docks["Selected track"].isVisible():
            self._plots_dirty = False
            self.track_plots.refresh(self.history, self.selected)

    # ---------------------------------------------------------------- saving
    def save_frame_dialog(self) -> None:
        if self.last_image is None:
            self.show_error("save frame: no frame shown yet")
            return
        name = f"frame_{max(self._last_index, 0):06d}.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save frame", name, "PNG (*.png);;JPEG (*.jpg)")
        if path:
            self.save_frame(Path(path))

    def save_frame(self, path: Path) -> bool:
        """Write the frame on screen, with its overlays, as an image (format from the suffix)."""
        if self.last_image is None:
            self.show_error("save frame: no frame shown yet")
            return False
        if not cv2.imwrite(str(path), self.last_image):
            self.show_error(f"save frame: cannot write {path}")
            return False
        self.statusBar().showMessage(f"Saved frame {self._last_index} to {path}")
        return True

    def export_run_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the run", "run.jsonl", TRACKS_FILTER)
        if path:
            self.export_run(Path(path))

    def export_run(self, path: Path) -> bool:
        """Write every frame seen so far (a frame seen again after a seek: its latest pass) to a tracks file.

        The format follows the suffix (``.jsonl``, ``.csv``, ``.json`` COCO, MOT ``.txt``...); video
        needs the pictures, which are not kept: use Record for that.
        """
        if self.history.run is None:
            self.show_error("export: nothing seen yet")
            return False
        try:
            sink = open_sink(path)
            if sink.needs_image:
                raise StipError(f"{path}: export writes tracks files (.jsonl, .csv, .json, .txt); "
                                "Record ▸ Start recording writes the annotated video")  # fmt: skip
            sink.open(self.history.run)
            try:
                for result in self.history.results():
                    sink.write(result)
            finally:
                sink.close()
        except (StipError, OSError) as e:
            self.show_error(f"export: {e}")
            return False
        self.statusBar().showMessage(f"Exported {len(self.history.frame_indices)} frames to {path}")
        return True

    def toggle_recording(self) -> None:
        if not self.running:
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
        """Record the annotated video and the tracks (default: ``<video>.jsonl`` and ``<video>.csv``) from now on."""
        if self.session is None:
            raise StipError("nothing is running to record")
        tracks = tracks if tracks is not None else [video.with_suffix(".jsonl"), video.with_suffix(".csv")]
        try:
            self.session.sink.start_recording([video, *tracks])
        except StipError as e:
            self.show_error(str(e))
            return
        self.statusBar().showMessage(f"Recording to {video}")
        self.rec_label.setToolTip(str(video))
        self._update_controls()

    def _update_controls(self) -> None:
        running = self.running
        paused = running and self.session.sink.paused
        self.start_action.setText("Stop" if running else "Play again" if self.session is not None else "Start")
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_action.setEnabled(running)
        self.step_action.setEnabled(running)
        self.seek.setEnabled(self.source is not None and bool(self._frame_count))
        recording = self.session is not None and self.session.sink.recording
        self.record_action.setText("Stop &recording" if recording else "Start &recording…")
        self.rec_label.setVisible(recording)
        self.view.set_badge("● REC" if recording else "")
        title = self.windowTitle().removeprefix("● REC ")
        self.setWindowTitle(f"● REC {title}" if recording else title)

    # ---------------------------------------------------------------- results (UI thread)
    def _show_frame(self, image: np.ndarray, result: FrameResult) -> None:
        if self.sender() is not self.session:
            return
        if self._starting_since is not None:
            self._starting_since = None
            self.progress.setVisible(False)
            self.view.set_message("")
            self.statusBar().showMessage(f"Running {self.source}")
        self.view.set_frame(image)
        self.last_image = image
        self._last_result = result
        run = self.session.sink.run if self.session is not None else None
        self.history.update(result, run)
        self._plots_dirty = True
        self._last_index = result.index
        self.frames_shown += 1
        if run is not None:
            src = run.source
            self._frame_count, self._fps = src.frame_count, src.fps
            if src.frame_count and not self.seek.isSliderDown():
                self.seek.setRange(0, max(src.frame_count - 1, 0))
                self.seek.setValue(result.index)
                self.seek.setEnabled(True)
            total = f"/{src.frame_count}" if src.frame_count else ""
            self.position.setText(f"  frame {result.index}{total}  {result.time:.1f}s")
        self.frame_shown.emit(result.index)

    def _run_ended(self, message: str) -> None:
        if self.sender() is not self.session:
            return  # a run that was stopped or replaced: its end says nothing about the current one
        self._starting_since = None
        self.progress.setVisible(False)
        if message:
            self.show_error(message)
            session, self.session = self.session, None
            session.stop()
        else:
            self.statusBar().showMessage("Finished — seek, or Play again (the models stay loaded)")
        self._update_controls()
        self.run_ended.emit(self.statusBar().currentMessage() if message else "")

    def show_error(self, message: str) -> None:
        """Errors never close the window: status bar in red, and on the picture when it is empty.

        An error that names a remembered setting says so (and how to forget it)."""
        message = blame_remembered(message, self.options, self._remembered)
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
        self._show_starting()
        if self.session is None or self.session.pipeline is None:
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
        people = self.history.people[-1] if self.history.people else 0
        self.info.set("people", "–" if people != people else str(int(people)))
        self.info.set("tracks", str(s.tracks))
        self.info.set("dropped", str(s.dropped))

    def closeEvent(self, event) -> None:
        self.stop_run()
        save_options(self.options, self._settings, skip=self._cli)
        if self.help_dialog is not None:
            self.help_dialog.close()
        super().closeEvent(event)
