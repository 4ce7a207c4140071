"""The dialogs: settings, shortcuts, opening a video file, a stream URL or a camera (the camera list)."""

from __future__ import annotations

import dataclasses
import glob
import sys
from typing import TYPE_CHECKING

from PyQt6.QtGui import QAction
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from stip_rt.detect.config import DETECTORS as DETECTOR_NAMES
from stip_rt.paths import zoo_names
from stip_rt.runtime.config import BACKENDS as BACKEND_NAMES
from stip_rt.runtime.config import DEVICES as DEVICE_NAMES
from stip_rt.runtime.config import PRECISIONS as PRECISION_NAMES

from .options import ViewerOptions

if TYPE_CHECKING:
    from .window import MainWindow

# the lists come from the library (torch-free homes): "" = the default, "none" = boxes only
POSE_MODELS = ["", "none", *zoo_names()]
DETECTORS = ["", *DETECTOR_NAMES]
BACKENDS = list(BACKEND_NAMES)
DEVICES = list(DEVICE_NAMES)
PRECISIONS = list(PRECISION_NAMES)
VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.m4v);;All files (*)"


def list_cameras(max_index: int = 4) -> list[str]:
    """Camera ids a user can pick: ``/dev/video*`` on Linux, else indices that open with OpenCV."""
    if sys.platform.startswith("linux"):
        return sorted(glob.glob("/dev/video*"))
    import cv2

    found = []
    for i in range(max_index + 1):
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            found.append(str(i))
        cap.release()
    return found


def _combo(values: list[str], current: str, editable: bool = False) -> QComboBox:
    box = QComboBox()
    box.setEditable(editable)
    box.addItems(values)
    if current not in values:
        box.addItem(current)
    box.setCurrentText(current)
    return box


class _PathEdit(QWidget):
    def __init__(self, text: str, caption: str, filters: str) -> None:
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit(text)
        browse = QPushButton("…")
        browse.setFixedWidth(32)
        browse.clicked.connect(lambda: self._browse(caption, filters))
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def _browse(self, caption: str, filters: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, caption, "", filters)
        if path:
            self.edit.setText(path)

    def text(self) -> str:
        return self.edit.text().strip()


class SettingsDialog(QDialog):
    """Model, weights, detector, backend, device and tracker; the window remembers them (QSettings)."""

    def __init__(self, options: ViewerOptions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("stip-viewer settings")
        self.setMinimumWidth(520)
        self._options = options
        form = QFormLayout(self)
        self.model = _combo(POSE_MODELS, options.model, editable=True)
        self.model.setToolTip(
            "empty = default (STIP-W32 when its weights are cached, else HRNet-W32); none = boxes only"
        )
        self.weights = _PathEdit(options.weights, "Pose checkpoint", "Checkpoints (*.pth *.pt);;All files (*)")
        self.weights.setToolTip("empty = weights cache; 'random' = random weights (for trying the app)")
        self.detector = _combo(DETECTORS, options.detector, editable=True)
        self.detections = _PathEdit(options.detections, "Detections file", "Detections (*.json *.txt);;All (*)")
        self.backend = _combo(BACKENDS, options.backend)
        self.device = _combo(DEVICES, options.device, editable=True)
        self.precision = _combo(PRECISIONS, options.precision)
        self.tracker = _PathEdit(options.tracker, "Tracker config", "YAML (*.yaml *.yml)")
        self.det_every = QSpinBox()
        self.det_every.setRange(1, 60)
        self.det_every.setValue(options.det_every)
        for label, widget in (("Pose model", self.model), ("Pose weights", self.weights),
                              ("Detector", self.detector), ("Detections file", self.detections),
                              ("Backend", self.backend), ("Device", self.device), ("Precision", self.precision),
                              ("Tracker config", self.tracker), ("Detect every N frames", self.det_every)):
            form.addRow(label, widget)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def options(self) -> ViewerOptions:
        return dataclasses.replace(
            self._options, model=self.model.currentText().strip(), weights=self.weights.text(),
            detector=self.detector.currentText().strip(), detections=self.detections.text(),
            backend=self.backend.currentText(), device=self.device.currentText().strip(),
            precision=self.precision.currentText(), tracker=self.tracker.text(), det_every=self.det_every.value(),
        )


class HelpDialog(QDialog):
    """The keyboard shortcuts (F1), listed from the window's actions, and how to study a run."""

    def __init__(self, shortcuts: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("stip-viewer shortcuts")
        rows = "".join(f"<tr><td><b>{key}</b></td><td>&nbsp;&nbsp;{text}</td></tr>" for text, key in shortcuts)
        self.text = (
            f"<table>{rows}</table><p>Click a track (in the list or on the video) to select it: the "
            "<i>Selected track</i> panel plots its speed and joint angles. Click the seek bar to jump there; "
            "seeking keeps the models and never reuses a track id. File ▸ Export run writes everything seen "
            "so far; Record writes from now on.</p>"
        )
        label = QLabel(self.text)
        label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def open_video_dialog(window: MainWindow) -> None:
    """Ask for a video file and open it."""
    path, _ = QFileDialog.getOpenFileName(window, "Open video", "", VIDEO_FILTER)
    if path:
        window.open_source(path)


def open_url_dialog(window: MainWindow) -> None:
    """Ask for a stream URL and open it."""
    url, ok = QInputDialog.getText(window, "Open stream", "RTSP / HTTP / HLS URL:")
    if ok and url.strip():
        window.open_source(url.strip())


def fill_camera_menu(window: MainWindow, menu: QMenu) -> None:
    """List the cameras found, each opening itself (the list is made each time the menu opens)."""
    menu.clear()
    cameras = list_cameras()
    if not cameras:
        none_found = QAction("no camera found", menu)
        none_found.setEnabled(False)
        menu.addAction(none_found)
    for cam in cameras:
        menu.addAction(cam, lambda c=cam: window.open_source(c))
