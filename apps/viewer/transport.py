"""Playback: the toolbar (Start/Stop, Pause, Step, the speed, the seek slider, the frame position) and
what its controls do to the window's run (a :class:`.session.Session`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QKeySequence, QMouseEvent
from PyQt6.QtWidgets import (
    QAbstractSlider,
    QComboBox,
    QInputDialog,
    QLabel,
    QMainWindow,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolBar,
    QWidget,
)

from .actions import add_action
from .dialogs import open_video_dialog

if TYPE_CHECKING:
    from .window import MainWindow

#: Playback speeds offered (label → factor of the source's frame rate; 0 = as fast as possible).
SPEEDS = {"0.25×": 0.25, "0.5×": 0.5, "1×": 1.0, "2×": 2.0, "4×": 4.0, "max": 0.0}


class SeekSlider(QSlider):
    """A horizontal slider where a click on the groove jumps there (Qt's default only pages).

    Signals:
        jumped(int): the value the user chose, by clicking the groove, releasing the handle, or with
            the keys and the wheel (arrows, Page Up/Down, Home/End: once they pause for 250 ms, so
            that holding a key or turning the wheel seeks once, to where it stopped).
    """

    jumped = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.sliderReleased.connect(lambda: self.jumped.emit(self.value()))
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(250)
        self._target = 0
        self._settle.timeout.connect(lambda: self.jumped.emit(self._target))
        self.actionTriggered.connect(self._moved_by_keys_or_wheel)

    def _moved_by_keys_or_wheel(self, action: int) -> None:
        if action != QAbstractSlider.SliderAction.SliderMove:  # a drag seeks when the handle is released
            self._target = self.sliderPosition()  # the new position (playback may move the handle meanwhile)
            self._settle.start()

    def value_at(self, x: float) -> int:
        """The value under widget x coordinate ``x``."""
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        style = self._style()
        groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderGroove, self)
        handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, self)
        span = max(1, groove.width() - handle.width())
        pos = round(x - groove.x() - handle.width() / 2)
        return QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), min(max(pos, 0), span), span)

    def _style(self) -> QStyle:
        style = self.style()
        assert style is not None  # QWidget.style() falls back to the application's style
        return style

    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        if event is not None and event.button() == Qt.MouseButton.LeftButton and self.isEnabled():
            opt = QStyleOptionSlider()
            self.initStyleOption(opt)
            handle = self._style().subControlRect(
                QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, self
            )
            if not handle.contains(event.position().toPoint()):
                value = self.value_at(event.position().x())
                self.setValue(value)
                self.jumped.emit(value)
                event.accept()
                return
        super().mousePressEvent(event)


class PlaybackBar(QToolBar):
    """The "Playback" toolbar of ``window``; its actions belong to the window (their shortcuts work everywhere).

    Args:
        window: the main window (owner of the actions).
        start, pause, step: what the Start/Stop, Pause/Resume and Step actions call.

    The window connects ``speed.currentTextChanged`` and ``seek.jumped``.

    Attributes:
        start_action, pause_action (Space), step_action (.): run controls.
        speed: the speed choice (a key of :data:`SPEEDS`).
        seek: the seek slider (disabled until the source has a known frame count).
        position: ``frame i/n  t s``.
    """

    def __init__(self, window: QMainWindow, *, start: Callable[[], object], pause: Callable[[], object],
                 step: Callable[[], object]) -> None:  # fmt: skip
        super().__init__("Playback", window)
        self.setMovable(False)
        self.start_action = add_action(window, self, "Start", start)
        self.pause_action = add_action(window, self, "Pause", pause, QKeySequence("Space"))
        self.step_action = add_action(window, self, "Step", step, QKeySequence("."))
        self.addSeparator()
        self.addWidget(QLabel(" speed "))
        self.speed = QComboBox()
        self.speed.addItems(list(SPEEDS))
        self.speed.setCurrentText("1×")
        self.addWidget(self.speed)
        self.addSeparator()
        self.seek = SeekSlider()
        self.seek.setEnabled(False)
        self.seek.setMinimumWidth(320)
        self.addWidget(self.seek)
        self.position = QLabel("  –  ")
        self._index, self._seconds = 0, 0.0
        self.position.setMinimumWidth(150)
        self.addWidget(self.position)

    @property
    def speed_factor(self) -> float:
        """The chosen speed as a factor of the source's frame rate (0: as fast as possible)."""
        return SPEEDS[self.speed.currentText()]

    def set_state(self, *, running: bool, paused: bool, started: bool, seekable: bool) -> None:
        """Label and enable the controls: ``started`` = a session exists (finished or not)."""
        self.start_action.setText("Stop" if running else "Play again" if started else "Start")
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_action.setEnabled(running)
        self.step_action.setEnabled(running)
        self.seek.setEnabled(seekable)

    def show_position(self, index: int, seconds: float, frame_count: int | None, estimated: bool = False) -> None:
        """Frame ``index`` (at ``seconds``) of ``frame_count`` (None/0: unknown, e.g. a camera; ``estimated``:
        from the video's duration, shown as ``~N``) is on screen."""
        if frame_count and not self.seek.isSliderDown():
            self.seek.setRange(0, max(frame_count - 1, 0))
            self.seek.setValue(index)
            self.seek.setEnabled(True)
        self._index, self._seconds = index, seconds
        self._show_text(frame_count, estimated)

    def set_length(self, frame_count: int, estimated: bool) -> None:
        """The video has ``frame_count`` frames (``estimated``: from its duration): the seek bar ends at the last."""
        self.seek.setRange(0, max(frame_count - 1, 0))
        self._show_text(frame_count, estimated)

    def _show_text(self, frame_count: int | None, estimated: bool) -> None:
        total = f"/{'~' if estimated else ''}{frame_count}" if frame_count else ""
        self.position.setText(f"  frame {self._index}{total}  {self._seconds:.1f}s")


# ---------------------------------------------------------------- what the controls do
def toggle_run(window: MainWindow) -> None:
    """Start (asking for a video when there is no source), Stop, or Play again on the same models."""
    if window.session is not None and window.session.finished:
        seek_to(window, 0)  # play again on the same models
    elif window.session is not None:
        window.stop_run()
    elif window.source is not None:
        window.open_source(window.source)
    else:
        open_video_dialog(window)


def toggle_pause(window: MainWindow) -> None:
    if window.session is None or not window.running:
        return
    if window.session.sink.paused:
        window.session.sink.resume()
    else:
        window.session.sink.pause()
    window.update_controls()


def step(window: MainWindow) -> None:
    """One frame, while paused."""
    if window.session is not None and window.running:
        window.session.sink.step()
        window.update_controls()


def set_speed(window: MainWindow, text: str) -> None:
    """Play at speed ``text`` (a key of :data:`SPEEDS`)."""
    if window.session is not None:
        window.session.sink.set_speed(SPEEDS[text])


def seek_to(window: MainWindow, frame: int) -> None:
    """Continue from ``frame``: in the running session (models kept, ids never repeated), else a new run."""
    if window.source is None or not window.frame_count:
        return
    frame = max(0, min(int(frame), window.frame_count - 1))
    window.history.mark_break()
    window.seek.setValue(frame)
    if window.session is not None and window.session.ready:
        window.session.seek(frame)
        window.status_line.show(f"Seeking to frame {frame}")
        window.update_controls()
    elif window.session is None:
        window.open_source(window.source, start=frame, max_frames=window.max_frames, keep_history=True)


def jump_dialog(window: MainWindow) -> None:
    """Ask for a frame number and seek there."""
    if not window.frame_count:
        window.show_error("jump to frame: open a video file first")
        return
    frame, ok = QInputDialog.getInt(window, "Jump to frame", f"frame (0–{window.frame_count - 1}):",
                                    max(window.last_index, 0), 0, window.frame_count - 1)  # fmt: skip
    if ok:
        seek_to(window, frame)
