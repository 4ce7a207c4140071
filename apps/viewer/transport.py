"""The playback toolbar: Start/Stop, Pause, Step, the speed, the seek slider and the frame position."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QKeySequence, QMouseEvent
from PyQt6.QtWidgets import QComboBox, QLabel, QMainWindow, QSlider, QStyle, QStyleOptionSlider, QToolBar, QWidget

from .actions import add_action

#: Playback speeds offered (label → factor of the source's frame rate; 0 = as fast as possible).
SPEEDS = {"0.25×": 0.25, "0.5×": 0.5, "1×": 1.0, "2×": 2.0, "4×": 4.0, "max": 0.0}


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

    def show_position(self, index: int, seconds: float, frame_count: int | None) -> None:
        """Frame ``index`` (at ``seconds``) of ``frame_count`` (None/0: unknown, e.g. a camera) is on screen."""
        if frame_count and not self.seek.isSliderDown():
            self.seek.setRange(0, max(frame_count - 1, 0))
            self.seek.setValue(index)
            self.seek.setEnabled(True)
        total = f"/{frame_count}" if frame_count else ""
        self.position.setText(f"  frame {index}{total}  {seconds:.1f}s")
