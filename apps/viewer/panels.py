"""Side panels: run info, overlay controls, the track list and the people-count plot."""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .history import SessionHistory
from .options import ViewerOptions

try:  # the plot is optional: without pyqtgraph the panel says so
    import pyqtgraph as pg
except ImportError:  # pragma: no cover - pyqtgraph is in the viewer extra
    pg = None


class InfoPanel(QGroupBox):
    """Frames/s per stage, latency, people, dropped frames, device/backend/model."""

    FIELDS = ("source", "model", "detector", "backend", "fps", "stages", "latency", "people", "tracks",
              "dropped", "ui latency")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Run", parent)
        layout = QFormLayout(self)
        layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self._labels: dict[str, QLabel] = {}
        for name in self.FIELDS:
            label = QLabel("–")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self._labels[name] = label
            layout.addRow(f"{name}:", label)

    def set(self, name: str, text: str) -> None:
        self._labels[name].setText(text)

    def text(self, name: str) -> str:
        return self._labels[name].text()


class OverlayPanel(QGroupBox):
    """Toggles for each overlay, the keypoint-score threshold and smoothing."""

    changed = pyqtSignal()

    def __init__(self, options: ViewerOptions, parent: QWidget | None = None) -> None:
        super().__init__("Overlays", parent)
        layout = QVBoxLayout(self)
        self.boxes = QCheckBox("Boxes")
        self.skeleton = QCheckBox("Skeletons")
        self.ids = QCheckBox("Track ids")
        self.smoothing = QCheckBox("Smooth keypoints (restarts the run)")
        for box, value in ((self.boxes, options.show_boxes), (self.skeleton, options.show_skeleton),
                           (self.ids, options.show_ids), (self.smoothing, options.smoothing)):
            box.setChecked(value)
            box.toggled.connect(self.changed)
            layout.addWidget(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Keypoint score ≥"))
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold.setValue(round(options.kpt_threshold * 100))
        self.threshold_label = QLabel(f"{options.kpt_threshold:.2f}")
        self.threshold.valueChanged.connect(lambda v: self.threshold_label.setText(f"{v / 100:.2f}"))
        self.threshold.valueChanged.connect(self.changed)
        row.addWidget(self.threshold, 1)
        row.addWidget(self.threshold_label)
        layout.addLayout(row)

    def apply_to(self, options: ViewerOptions) -> ViewerOptions:
        from dataclasses import replace

        return replace(options, show_boxes=self.boxes.isChecked(), show_skeleton=self.skeleton.isChecked(),
                       show_ids=self.ids.isChecked(), smoothing=self.smoothing.isChecked(),
                       kpt_threshold=self.threshold.value() / 100)


class TrackList(QTableWidget):
    """One row per track id: when it appeared and how long it has been on screen."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["id", "first seen (s)", "last seen (s)", "on screen (s)"])
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSortingEnabled(False)

    def refresh(self, history: SessionHistory, fps: float) -> None:
        spans = sorted(history.spans.values(), key=lambda s: s.track_id)
        self.setRowCount(len(spans))
        for row, span in enumerate(spans):
            values = (str(span.track_id), f"{span.first_time:.1f}", f"{span.last_time:.1f}",
                      f"{span.seconds_on_screen(fps):.1f}")
            for col, text in enumerate(values):
                item = self.item(row, col)
                if item is None:
                    item = QTableWidgetItem()
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    self.setItem(row, col, item)
                item.setText(text)


class PeoplePlot(QWidget):
    """People count over time (pyqtgraph)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if pg is None:
            layout.addWidget(QLabel("install pyqtgraph for the plot"))
            self._curve = None
            return
        self._plot = pg.PlotWidget(background=(24, 24, 28))
        self._plot.setLabel("left", "people")
        self._plot.setLabel("bottom", "time", units="s")
        self._plot.showGrid(x=True, y=True, alpha=0.25)
        self._plot.setMouseEnabled(x=False, y=False)
        self._plot.setMinimumHeight(120)
        self._plot.setMaximumHeight(190)
        self._curve = self._plot.plot(pen=pg.mkPen((90, 200, 250), width=2), stepMode=None)
        layout.addWidget(self._plot)

    def refresh(self, history: SessionHistory) -> None:
        if self._curve is not None:
            self._curve.setData(list(history.times), list(history.people))
