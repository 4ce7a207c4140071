"""The status line: messages, errors in red, the steps of starting a run with their progress, the
recording indicator; and the UI-latency meter shown in the run info."""

from __future__ import annotations

import time

from PyQt6.QtCore import QObject, QTimer
from PyQt6.QtWidgets import QLabel, QMainWindow, QProgressBar, QStatusBar

from .video_view import VideoView

ERROR_STYLE = "color: #e05050;"
ERROR_SECONDS = 8  # an error stays red this long, or until the next message
REC = "● REC"


class StatusLine(QObject):
    """The window's status bar and the messages on the picture.

    Starting a run (building models, downloads) can take a while: :meth:`begin_start` … :meth:`end_start`
    bracket it, :meth:`start_step` reports each step, and :meth:`show_starting` (called by the window's
    info timer too) shows ``Starting (N s): step…`` in the status bar and on the picture.

    Attributes:
        progress: the progress bar of the current starting step (hidden otherwise).
        rec_label: the red ``● REC`` label, visible while recording.
    """

    def __init__(self, window: QMainWindow, view: VideoView) -> None:
        super().__init__(window)
        self._window = window
        self._view = view
        bar = window.statusBar()
        assert bar is not None  # QMainWindow.statusBar() makes one when the window has none
        self._bar: QStatusBar = bar
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setVisible(False)
        self.rec_label = QLabel(REC)
        self.rec_label.setStyleSheet("color: white; background: #c81e1e; padding: 1px 6px; font-weight: bold;")
        self.rec_label.setVisible(False)
        self._bar.addPermanentWidget(self.progress)
        self._bar.addPermanentWidget(self.rec_label)
        # a child of this child of the window, so it dies with it (a bare singleShot could fire into a deleted window)
        self._reset = QTimer(self)
        self._reset.setSingleShot(True)
        self._reset.setInterval(ERROR_SECONDS * 1000)
        self._reset.timeout.connect(self._end_error)
        self._since: float | None = None
        self._step = ""

    def show(self, message: str) -> None:
        """``message`` in the normal style (an error shown before is over)."""
        self._end_error()
        self._bar.showMessage(message)

    @property
    def showing_error(self) -> bool:
        """The status bar shows an error (in red)."""
        return bool(self._bar.styleSheet())

    def message(self) -> str:
        """The message shown now."""
        return self._bar.currentMessage()

    def error(self, message: str) -> None:
        """``message`` in red in the status bar (for a while) and on the picture."""
        self._bar.setStyleSheet(ERROR_STYLE)
        self._bar.showMessage(message)
        self._reset.start()
        self._view.set_message(f"⚠ {message}")

    def _end_error(self) -> None:
        self._reset.stop()
        if self._bar.styleSheet():
            self._bar.setStyleSheet("")

    # ---------------------------------------------------------------- starting a run
    @property
    def starting(self) -> bool:
        """A run is starting: no frame has arrived yet."""
        return self._since is not None

    @property
    def step(self) -> str:
        """What starting is doing now (empty once frames arrive)."""
        return self._step if self._since is not None else ""

    def begin_start(self) -> None:
        self._since = time.perf_counter()
        self._step = "preparing"

    def start_step(self, text: str, done: int, total: int) -> None:
        """Starting is at step ``text``, ``done`` of ``total`` units (total 0: unknown, a busy bar)."""
        self._step = text
        self.progress.setVisible(True)
        self.progress.setRange(0, 1000 if total else 0)  # 0..0: busy
        if total:
            self.progress.setValue(round(1000 * done / total))
        self.show_starting()

    def show_starting(self) -> None:
        """Show how long starting has taken and its step (nothing once started)."""
        if self._since is None:
            return
        seconds = time.perf_counter() - self._since
        text = f"Starting ({seconds:.0f} s): {self._step}…"
        self.show(text)
        self._view.set_message(text)
        self.progress.setVisible(True)

    def end_start(self) -> None:
        """Starting is over (the first frame came, or the run ended or was stopped)."""
        self._since = None
        self.progress.setVisible(False)

    # ---------------------------------------------------------------- recording
    def show_recording(self, recording: bool) -> None:
        """The ``● REC`` label, badge on the picture and window-title prefix, while ``recording``."""
        self.rec_label.setVisible(recording)
        self._view.set_badge(REC if recording else "")
        title = self._window.windowTitle().removeprefix(f"{REC} ")
        self._window.setWindowTitle(f"{REC} {title}" if recording else title)


class LatencyMeter(QObject):
    """How late the UI thread runs: the lateness of a 20 ms timer, decaying peak (ms)."""

    INTERVAL_MS = 20

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.ms = 0.0
        self._tick = time.perf_counter()
        self._timer = QTimer(self)
        self._timer.setInterval(self.INTERVAL_MS)
        self._timer.timeout.connect(self._measure)
        self._timer.start()

    def _measure(self) -> None:
        now = time.perf_counter()
        late = (now - self._tick - self.INTERVAL_MS / 1000) * 1000
        self._tick = now
        self.ms = max(late, 0.9 * self.ms)
