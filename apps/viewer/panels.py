"""Side panels: run info, overlay controls, the track list, the people-count plot and the selected
track's plots; and their docks on the right of the window."""

from __future__ import annotations

from PyQt6.QtCore import QByteArray, QSize, Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QScrollArea,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from stip_rt.pipeline_stats import PipelineStats
from stip_rt.types import RunInfo

from .history import SessionHistory
from .options import ViewerOptions
from .plots import ANGLE_CURVES, PeoplePlot, TrackPlots  # noqa: F401 (their home before plots.py)

DOCK_WIDTH = 310  # px, at least (wider when a panel's text needs it): at 1180×710 the picture keeps ~840 px


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

    def show_stats(self, s: PipelineStats, people: float) -> None:
        """The pipeline's rates, latency, track and drop counts; ``people`` in the last frame (NaN: a break)."""
        self.set("fps", f"{s.fps:.1f}")
        self.set("stages", "  ".join(f"{k} {v:.0f}" for k, v in s.stage_fps.items()) or "–")
        lat = s.latency_ms
        self.set("latency", f"{lat.get('p50', 0):.0f} ms (p95 {lat.get('p95', 0):.0f})" if lat else "–")
        self.set("people", "–" if people != people else str(int(people)))
        self.set("tracks", str(s.tracks))
        self.set("dropped", str(s.dropped))

    def show_run(self, run: RunInfo) -> None:
        """The source, models and backend of the run."""
        self.set("source", f"{run.source.uri} ({run.source.width}×{run.source.height} @ {run.source.fps:.1f})")
        self.set("model", run.pose_model)
        self.set("detector", run.detector)
        self.set("backend", run.backend)


class OverlayPanel(QGroupBox):
    """Toggles for each overlay, the keypoint-score threshold and smoothing."""

    changed = pyqtSignal()

    def __init__(self, options: ViewerOptions, parent: QWidget | None = None) -> None:
        super().__init__("Overlays", parent)
        layout = QVBoxLayout(self)
        self.boxes = QCheckBox("Boxes")
        self.skeleton = QCheckBox("Skeletons")
        self.ids = QCheckBox("Track ids")
        self.trails = QCheckBox("Trails (T)")
        self.smoothing = QCheckBox("Smooth keypoints (from the current frame)")
        for box in (self.boxes, self.skeleton, self.ids, self.trails, self.smoothing):
            layout.addWidget(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Keypoint score ≥"))
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(0, 100)
        self.threshold_label = QLabel(f"{options.kpt_threshold:.2f}")
        row.addWidget(self.threshold, 1)
        row.addWidget(self.threshold_label)
        layout.addLayout(row)
        self.show_options(options)
        self.threshold.valueChanged.connect(lambda v: self.threshold_label.setText(f"{v / 100:.2f}"))
        for box in (self.boxes, self.skeleton, self.ids, self.trails, self.smoothing):
            box.toggled.connect(self.changed)
        self.threshold.valueChanged.connect(self.changed)

    def show_options(self, options: ViewerOptions) -> None:
        """Set the controls to ``options`` without emitting ``changed``."""
        self.blockSignals(True)
        for box, value in ((self.boxes, options.show_boxes), (self.skeleton, options.show_skeleton),
                           (self.ids, options.show_ids), (self.trails, options.show_trails),
                           (self.smoothing, options.smoothing)):  # fmt: skip
            box.setChecked(value)
        self.threshold.setValue(round(options.kpt_threshold * 100))
        self.blockSignals(False)

    def apply_to(self, options: ViewerOptions) -> ViewerOptions:
        from dataclasses import replace

        return replace(options, show_boxes=self.boxes.isChecked(), show_skeleton=self.skeleton.isChecked(),
                       show_ids=self.ids.isChecked(), show_trails=self.trails.isChecked(),
                       smoothing=self.smoothing.isChecked(),
                       kpt_threshold=self.threshold.value() / 100)


class TrackList(QTableWidget):
    """One row per track id: when it appeared and how long it has been on screen; a click selects it.

    Signals:
        selected(int): the id clicked (0: the selection was cleared).
    """

    selected = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["id", "first (s)", "last (s)", "on screen (s)"])
        rows, header = self.verticalHeader(), self.horizontalHeader()
        assert rows is not None and header is not None  # a table view always has both
        rows.setVisible(False)
        # every title readable; the table is at least that wide
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.setSortingEnabled(False)
        self._ids: list[int] = []
        self._current: int | None = None
        self.itemSelectionChanged.connect(self._selection_changed)

    def minimumSizeHint(self) -> QSize:
        """Wide enough for every column's title and values (the dock never clips them)."""
        header, bar = self.horizontalHeader(), self.verticalScrollBar()
        assert header is not None and bar is not None  # a table view always has both
        columns = sum(max(header.sectionSizeHint(i), self.sizeHintForColumn(i)) for i in range(self.columnCount()))
        width = columns + 2 * self.frameWidth() + bar.sizeHint().width()
        return QSize(width, super().minimumSizeHint().height())

    def refresh(self, history: SessionHistory, fps: float) -> None:
        spans = sorted(history.spans.values(), key=lambda s: s.track_id)
        self.blockSignals(True)
        self.setRowCount(len(spans))
        self._ids = [s.track_id for s in spans]
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
        self._show_current()
        self.blockSignals(False)

    def select_id(self, track_id: int | None) -> None:
        """Select the row of ``track_id`` (None clears) without emitting ``selected``."""
        self._current = track_id
        self.blockSignals(True)
        self._show_current()
        self.blockSignals(False)

    def _show_current(self) -> None:
        if self._current in self._ids:
            row = self._ids.index(self._current)
            if self.currentRow() != row or not self.selectedItems():
                self.selectRow(row)
        else:
            self.clearSelection()

    def _selection_changed(self) -> None:
        rows = {i.row() for i in self.selectedItems()}
        tid = self._ids[min(rows)] if rows and min(rows) < len(self._ids) else None
        self._current = tid
        self.selected.emit(tid or 0)


def dock_panels(window: QMainWindow, view_menu: QMenu, *, info: InfoPanel, overlays: OverlayPanel,
                tracks: TrackList, track_plots: TrackPlots, plot: PeoplePlot) -> dict[str, QDockWidget]:  # fmt: skip
    """Dock the panels on the right of ``window``: Run | Overlays tabbed above Tracks | Selected track | People.

    Each dock's show/hide action goes into ``view_menu``. Returns the docks by title (also their object
    names, under which Qt saves their state).
    """
    info.setTitle("")
    overlays.setTitle("")
    info_scroll = QScrollArea()  # the run info scrolls rather than forcing the window taller
    info_scroll.setWidget(info)
    info_scroll.setWidgetResizable(True)
    info_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    # the values wrap to the dock's width; the scroll area is never narrower than the panel can be
    info_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    bar = info_scroll.verticalScrollBar()
    assert bar is not None  # a scroll area always has one
    info_scroll.setMinimumWidth(info.minimumSizeHint().width() + bar.sizeHint().width())
    docks: dict[str, QDockWidget] = {}
    for name, widget in (("Run", info_scroll), ("Overlays", overlays), ("Tracks", tracks),
                         ("Selected track", track_plots), ("People", plot)):  # fmt: skip
        dock = QDockWidget(name, window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        view_menu.addAction(dock.toggleViewAction())
        docks[name] = dock
    window.restoreState(_tabbed_layout(list(docks), [["Run", "Overlays"], ["Tracks", "Selected track", "People"]]))
    docks["Run"].raise_()
    docks["Tracks"].raise_()
    window.resizeDocks([docks["Run"]], [DOCK_WIDTH], Qt.Orientation.Horizontal)
    return docks


def _tabbed_layout(names: list[str], groups: list[list[str]]) -> QByteArray:
    """The saved state of a window whose docks ``names`` (object names) are stacked on the right, ``groups``
    of them tabbed.

    Made on a throwaway window and restored on the real one: tabifying a second group on a window leaves a
    stale copy of that group's tab bar on screen (Qt 6.11), restoring a state does not.
    """
    template = QMainWindow()  # no parent: deleted when this returns
    template.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)
    docks = {}
    for name in names:
        docks[name] = QDockWidget(name, template)
        docks[name].setObjectName(name)
        template.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, docks[name])
    for first, *rest in groups:
        for other in rest:
            template.tabifyDockWidget(docks[first], docks[other])
    return template.saveState()
