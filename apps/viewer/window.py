"""The main window: the picture in the middle, controls on top, panels in dock widgets on the right.

The window composes the pieces and wires them together; it owns the run (a :class:`.session.Session`:
starting, stopping, the frames it shows). The pieces: the menu bar (:mod:`.menus`), the playback
toolbar and its controls (:mod:`.transport`), the panels and their docks (:mod:`.panels`), the
selected track (:mod:`.selection`), the status line (:mod:`.status`), saving and recording
(:mod:`.saving`), option changes (:mod:`.preferences`; what is remembered: :class:`.options.OptionsState`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PyQt6.QtWidgets import QMainWindow

from stip_rt.errors import StipError
from stip_rt.types import FrameResult

from . import preferences, saving, transport
from .actions import shortcuts
from .dialogs import HelpDialog
from .history import SessionHistory
from .menus import build_menus
from .options import OptionsState, ViewerOptions, remembered_options
from .panels import InfoPanel, OverlayPanel, PeoplePlot, TrackList, TrackPlots, dock_panels
from .selection import TrackSelection, track_at
from .session import Session
from .status import LatencyMeter, StatusLine
from .transport import PlaybackBar
from .video_view import VideoView

logger = logging.getLogger(__name__)


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
        settings = settings or QSettings("stip-rt", "stip-viewer")
        if options is None:
            options, found = remembered_options(settings)
            remembered = found if remembered is None else remembered
        self.prefs = OptionsState(options, settings, remembered or (), cli or ())
        self.session: Session | None = None
        self.source: str | None = None
        self.history = SessionHistory()
        self.frames_shown = 0
        self.last_image: np.ndarray | None = None
        self._last_result: FrameResult | None = None
        self._last_index = -1
        self.frame_count: int | None = None
        self._fps = 0.0
        self.max_frames: int | None = None
        self.help_dialog: HelpDialog | None = None
        self.setWindowTitle("stip-viewer")
        self.resize(1360, 820)
        self.setAcceptDrops(True)
        self._build_ui()
        self.latency = LatencyMeter(self)
        self._info_timer = QTimer(self)
        self._info_timer.setInterval(500)
        self._info_timer.timeout.connect(self._refresh_info)
        self._info_timer.start()

    # ---------------------------------------------------------------- layout
    def _build_ui(self) -> None:
        self.view = VideoView()
        self.view.clicked.connect(self._video_clicked)
        self.setCentralWidget(self.view)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
        self.menus = build_menus(self)
        m = self.menus  # the window's attribute names of before (tests and other helpers use them)
        self.camera_menu, self.view_menu, self.record_action = m.camera, m.view, m.record
        self.save_frame_action, self.export_action, self.reset_action = m.save_frame, m.export, m.reset
        self.jump_action, self.trails_action, self.help_action = m.jump, m.trails, m.help

        self.playback = PlaybackBar(self, start=self.toggle_run, pause=self.toggle_pause, step=self.step)
        self.addToolBar(self.playback)
        self.speed, self.seek, self.position = self.playback.speed, self.playback.seek, self.playback.position
        self.speed.currentTextChanged.connect(lambda text: transport.set_speed(self, text))
        self.seek.jumped.connect(self.seek_to)

        self.info = InfoPanel()
        self.overlays = OverlayPanel(self.options)
        self.overlays.changed.connect(lambda: preferences.overlays_changed(self))
        self.tracks = TrackList()
        self.tracks.selected.connect(lambda tid: self.select_track(tid or None))
        self.plot = PeoplePlot()
        self.track_plots = TrackPlots()
        self.docks = dock_panels(self, self.view_menu, info=self.info, overlays=self.overlays, tracks=self.tracks,
                                 track_plots=self.track_plots, plot=self.plot)  # fmt: skip
        self.selection = TrackSelection(self.history, self.tracks, self.track_plots, self.docks["Selected track"])

        self.status_line = StatusLine(self, self.view)
        self.progress, self.rec_label = self.status_line.progress, self.status_line.rec_label
        self.status_line.show("Ready — F1 lists the shortcuts")
        self.update_controls()

    @property
    def options(self) -> ViewerOptions:
        return self.prefs.options

    @property
    def last_index(self) -> int:
        """The index of the frame on screen (-1: none yet)."""
        return self._last_index

    @property
    def ui_latency_ms(self) -> float:
        return self.latency.ms

    def shortcuts(self) -> list[tuple[str, str]]:
        """(what, key) of every action with a shortcut, for the help panel."""
        return shortcuts(self)

    def show_help(self) -> None:
        if self.help_dialog is None:
            self.help_dialog = HelpDialog(self.shortcuts(), self)
        self.help_dialog.show()
        self.help_dialog.raise_()

    # ---------------------------------------------------------------- sources
    def dragEnterEvent(self, event: QDragEnterEvent | None) -> None:
        mime = event.mimeData() if event is not None else None
        if event is not None and mime is not None and mime.hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent | None) -> None:
        mime = event.mimeData() if event is not None else None
        urls = mime.urls() if mime is not None else []
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
            self.frame_count = None  # known again from the new source's first frame
        self.source = source
        self.max_frames = max_frames
        missing = self.prefs.missing_files()
        if missing:
            return self._fail_to_start(f"{', '.join(missing)}: file not found")
        next_id = self.history.max_id + 1 if self.history.max_id else None
        try:
            self.session = Session(source, self.options, start=start, speed=self.playback.speed_factor,
                                   max_frames=max_frames, next_id=next_id)  # fmt: skip
        except StipError as e:
            return self._fail_to_start(str(e))
        for signal, slot in ((self.session.frame, self._show_frame), (self.session.ended, self._run_ended),
                             (self.session.status, self._starting_step), (self.session.seeked, self._seeked)):
            # PyQt6's stubs leave out connect()'s documented second argument, the connection type
            signal.connect(slot, Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]
        self.status_line.begin_start()
        self.session.start()
        self.setWindowTitle(f"stip-viewer — {Path(source).name if Path(source).exists() else source}")
        self.status_line.show_starting()
        self.update_controls()
        return True

    def _fail_to_start(self, message: str) -> bool:
        self.session = None
        self.show_error(message)
        self.run_ended.emit(self.status_line.message())
        self.update_controls()
        return False

    def _current_sender(self) -> Session | None:
        """The session running now, when the signal being handled comes from it; else None.

        A stopped or replaced session's queued signals still arrive; one whose Qt object was deleted
        meanwhile comes with ``sender()`` None, the very value of ``self.session`` while none is open.
        """
        session = self.session
        return session if session is not None and self.sender() is session else None

    def _starting_step(self, text: str, done: int, total: int) -> None:
        if self._current_sender() is not None and self.status_line.starting:
            self.status_line.start_step(text, done, total)

    @property
    def starting_step(self) -> str:
        """What starting is doing now (empty once frames arrive)."""
        return self.status_line.step

    # ---------------------------------------------------------------- controls
    @property
    def running(self) -> bool:
        return self.session is not None and not self.session.finished

    def toggle_run(self) -> None:
        """Start/Stop/Play again (see :func:`.transport.toggle_run`)."""
        transport.toggle_run(self)

    def stop_run(self) -> None:
        if self.session is None:
            return
        session, self.session = self.session, None
        session.frame.disconnect()
        session.stop()
        self.status_line.end_start()
        self.status_line.show("Stopped")
        self.update_controls()

    def toggle_pause(self) -> None:
        transport.toggle_pause(self)

    def step(self) -> None:
        transport.step(self)

    def seek_to(self, frame: int) -> None:
        """Continue from ``frame``: in the running session (models kept, ids never repeated), else a new run."""
        transport.seek_to(self, frame)

    def _seeked(self, frame: int) -> None:
        if self._current_sender() is not None:
            self.status_line.show(f"Playing from frame {frame}")
            self.update_controls()

    def update_controls(self) -> None:
        """Label and enable the controls, and show whether it records, from the session's state."""
        session, running = self.session, self.running
        recording = session is not None and session.sink.recording
        self.playback.set_state(running=running, paused=session is not None and running and session.sink.paused,
                                started=session is not None,
                                seekable=self.source is not None and bool(self.frame_count))  # fmt: skip
        self.record_action.setText("Stop &recording" if recording else "Start &recording…")
        self.status_line.show_recording(recording)

    # ---------------------------------------------------------------- options
    def _changed(self, new: ViewerOptions) -> None:
        """Take ``new`` options from the user: remembered from now on (command-line ones too, once changed)."""
        self.prefs.change(new)

    # ---------------------------------------------------------------- selection (see selection.py)
    @property
    def selected(self) -> int | None:
        return self.selection.track_id

    def select_track(self, track_id: int | None) -> None:
        """Highlight ``track_id`` on the video, in the list and in the per-track plots (None: clear)."""
        self.selection.select(track_id)
        if self.session is not None:
            self.session.sink.selected = track_id
            if self.session.sink.paused or self.session.finished:
                self.repaint_last()

    def _video_clicked(self, x: float, y: float) -> None:
        self.select_track(None if self._last_result is None else track_at(self._last_result.tracks, x, y))

    def repaint_last(self) -> None:
        if self.session is not None and self._last_result is not None:
            self.last_image = self.session.sink.render(self._last_result)
            self.view.set_frame(self.last_image)

    # ---------------------------------------------------------------- saving (see saving.py)
    def save_frame(self, path: Path) -> bool:
        """Write the frame on screen, with its overlays, as an image (format from the suffix)."""
        return saving.save_frame(self, path)

    def export_run(self, path: Path) -> bool:
        """Write every frame seen so far to a tracks file (format from the suffix)."""
        return saving.export_run(self, path)

    def toggle_recording(self) -> None:
        saving.toggle_recording(self)

    def start_recording(self, video: Path, tracks: list[Path] | None = None) -> None:
        """Record the annotated video and the tracks (default: ``<video>.jsonl`` and ``<video>.csv``) from now on."""
        saving.start_recording(self, video, tracks)

    # ---------------------------------------------------------------- results (UI thread)
    def _show_frame(self, image: np.ndarray, result: FrameResult) -> None:
        session = self._current_sender()
        if session is None:
            return
        if self.status_line.starting:
            self.status_line.end_start()
            self.view.set_message("")
            self.status_line.show(f"Running {self.source}")
        self.view.set_frame(image)
        self.last_image = image
        self._last_result = result
        run = session.sink.run
        self.history.update(result, run)
        self.selection.frame_added()
        self._last_index = result.index
        self.frames_shown += 1
        if run is not None:
            self.frame_count, self._fps = session.frame_count, run.source.fps
            self.playback.show_position(result.index, result.time, self.frame_count, session.length_estimated)
        self.frame_shown.emit(result.index)

    def _run_ended(self, message: str) -> None:
        session = self._current_sender()
        if session is None:
            return  # a run that was stopped or replaced: its end says nothing about the current one
        self.status_line.end_start()
        if message:
            self.show_error(message)
            if not session.finished:  # a seek past the end of a video whose length was estimated keeps the models
                self.session = None
                session.stop()
        else:
            self.status_line.show("Finished — seek, or Play again (the models stay loaded)")
        if session.frame_count and self.frame_count:  # a length estimated from the duration, now known
            self.frame_count = session.frame_count
            self.playback.set_length(self.frame_count, session.length_estimated)
        self.update_controls()
        self.run_ended.emit(self.status_line.message() if message else "")

    def show_error(self, message: str) -> None:
        """Errors never close the window: status bar in red, and on the picture when it is empty.

        An error that names a remembered setting says so (and how to forget it)."""
        message = self.prefs.blame(message)
        logger.warning("%s", message)
        self.status_line.error(message)

    def _refresh_info(self) -> None:
        self.info.set("ui latency", f"{self.latency.ms:.0f} ms")
        self.tracks.refresh(self.history, self._fps)
        self.plot.refresh(self.history)
        self.status_line.show_starting()
        if self.session is None or self.session.pipeline is None:
            return
        self.info.show_stats(self.session.pipeline.stats(), self.history.people[-1] if self.history.people else 0)
        if self.session.sink.run is not None:
            self.info.show_run(self.session.sink.run)

    def closeEvent(self, event: QCloseEvent | None) -> None:
        self.stop_run()
        self.prefs.save()
        if self.help_dialog is not None:
            self.help_dialog.close()
        super().closeEvent(event)
