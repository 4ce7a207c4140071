"""The plots of the side panels (pyqtgraph): the people count over time and the selected track's speed
and joint angles.

The track plots are small (a dock beside the picture, 95 px tall at 900×600): what their curves are and
their units are said in a heading above each plot, which wraps to the panel's width, not in a legend or
an axis label drawn inside the plot, which a small plot cuts (or which covers the curves).
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

from stip_rt.errors import StipError

from .history import SessionHistory

try:  # the plot is optional: without pyqtgraph the panel says so
    import pyqtgraph as pg
except ImportError:  # pragma: no cover - pyqtgraph is in the viewer extra
    pg = None

PLOT_HEIGHT = 90  # px at least: the axes and a few grid lines
TRACK_PLOT_HEIGHT = 50  # px at least, each of the selected track's plots (small windows: 900×600), axes aside
TIME_AXIS_HEIGHT = 35  # px: the time axis, its ticks and label (under the lowest of the selected track's plots)


def _plot_widget(left: str | None = None, height: int = PLOT_HEIGHT) -> pg.PlotWidget:
    """A dark plot over time (s); ``left``: the label of its vertical axis (None: none, the heading says it)."""
    plot = pg.PlotWidget(background=(24, 24, 28))
    if left:
        plot.setLabel("left", left)
    plot.setLabel("bottom", "time", units="s")
    plot.showGrid(x=True, y=True, alpha=0.25)
    plot.setMouseEnabled(x=False, y=False)
    plot.setMinimumHeight(height)
    plot.getAxis("left").enableAutoSIPrefix(False)
    return plot


def _heading(what: str, rows: list[dict[str, tuple[int, int, int]]]) -> QLabel:
    """The heading of a plot: ``what`` (the quantity and its units), then each curve's name after a line in its
    colour, in ``rows`` (fixed lines: a wrapped label is not given the height of its lines in a dock), in a
    size smaller than the panel's text."""
    lines = [
        " &nbsp;".join(
            f'<span style="color:#{r:02x}{g:02x}{b:02x}">━━</span>&nbsp;{name}' for name, (r, g, b) in row.items()
        )
        for row in rows
    ]
    label = QLabel(f"<b>{what}</b> &nbsp;" + "<br>".join(lines))
    font = label.font()
    font.setPointSizeF(max(font.pointSizeF() - 1, 7.0))
    label.setFont(font)
    return label


class PeoplePlot(QWidget):
    """People count over time (pyqtgraph); a seek breaks the line (NaN points are gaps)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        if pg is None:
            layout.addWidget(QLabel("install pyqtgraph for the plot"))
            self._curve = None
            return
        self._plot = _plot_widget("people")  # a count: no SI prefix ("people (x0.001)" on an empty plot)
        self._plot.setYRange(0, 1, padding=0)
        self._plot.getViewBox().setLimits(yMin=0)
        self._curve = self._plot.plot(pen=pg.mkPen((90, 200, 250), width=2), connect="finite")
        layout.addWidget(self._plot)

    def refresh(self, history: SessionHistory) -> None:
        if self._curve is None:
            return
        times = np.asarray(history.times, np.float64)
        people = np.asarray(history.people, np.float64)
        self._curve.setData(times, people, connect="finite")
        top = np.nanmax(people) if np.isfinite(people).any() else 0
        self._plot.setYRange(0, max(1.0, float(top)) * 1.05, padding=0)

    def y_range(self) -> tuple[float, float]:
        """The visible range of the people axis."""
        lo, hi = self._plot.getViewBox().viewRange()[1]
        return float(lo), float(hi)

    def series(self) -> tuple[np.ndarray, np.ndarray]:
        """The plotted (time, people) points; NaN where the line is broken; none without pyqtgraph."""
        if self._curve is None:
            return np.empty(0), np.empty(0)
        x, y = self._curve.getData()
        return np.asarray(x if x is not None else []), np.asarray(y if y is not None else [])


#: Joint angles plotted for the selected track (those the skeleton has), with their colours.
ANGLE_CURVES = {"left_knee": (80, 180, 255), "right_knee": (255, 140, 60), "left_elbow": (120, 230, 120),
                "right_elbow": (230, 110, 200), "left_hip": (60, 220, 200),
                "right_hip": (250, 90, 90), "trunk_lean": (240, 240, 120)}  # fmt: skip


def _legend_name(column: str) -> str:
    """``left_knee`` → ``L knee`` (short, so that the legend fits the panel)."""
    side, _, joint = column.partition("_")
    return f"{side[0].upper()} {joint}" if side in ("left", "right") else column.replace("_", " ")


def _rows(curves: dict[str, tuple[int, int, int]], first: int) -> list[dict[str, tuple[int, int, int]]]:
    """``curves`` in two rows: ``first`` of them beside the heading's title, the rest below."""
    items = list(curves.items())
    return [dict(items[:first]), dict(items[first:])]


class TrackPlots(QWidget):
    """The selected track: speed (px/s, raw and smoothed) and joint angles (degrees) over time.

    Computed with :func:`stip_rt.analysis.movement` on what the session has seen of that track.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)  # the panel is no taller than with the legends in the plots (small windows)
        self.title = QLabel("Select a track (click it in the list or on the video)")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.track_id: int | None = None
        self.frame: object = None  # the last movement() table (pandas DataFrame), for tests and export
        if pg is None:
            layout.addWidget(QLabel("install pyqtgraph for the plots"))
            return
        speed_curves = {"raw": (150, 150, 160), "smoothed": (90, 200, 250)}
        self.speed_heading = _heading("speed (px/s)", [speed_curves])
        self.speed_plot = _plot_widget(height=TRACK_PLOT_HEIGHT)
        self._speed, self._speed_s = (
            self.speed_plot.plot(pen=pg.mkPen(color, width=1 if name == "raw" else 2), connect="finite")
            for name, color in speed_curves.items()
        )
        self.angle_heading = _heading(
            "joint angles (°)", _rows({_legend_name(n): c for n, c in ANGLE_CURVES.items()}, 3)
        )
        self.angle_plot = _plot_widget(height=TRACK_PLOT_HEIGHT + TIME_AXIS_HEIGHT)
        self._angles = {name: self.angle_plot.plot(pen=pg.mkPen(color, width=2), connect="finite")
                        for name, color in ANGLE_CURVES.items()}  # fmt: skip
        self.angle_plot.setXLink(self.speed_plot)
        layout.addWidget(self.speed_heading)
        layout.addWidget(self.speed_plot, 2)
        layout.addWidget(self.angle_heading)
        layout.addWidget(self.angle_plot, 3)  # its plot as tall as the speed plot's, and the time axis
        self._set({}, None)

    def refresh(self, history: SessionHistory, track_id: int | None) -> None:
        """Recompute the plots of ``track_id`` (None clears them) from ``history``."""
        self.track_id = track_id
        if track_id is None or track_id not in history.spans or history.run is None:
            self.title.setText("Select a track (click it in the list or on the video)")
            self.frame = None
            self._set({}, None)
            return
        try:
            from stip_rt.analysis import movement

            df = movement(history.track_file({track_id}))
        except StipError as e:
            self.title.setText(f"track {track_id}: {e}")
            return
        self.frame = df
        n = int(df["observed"].sum())
        self.title.setText(f"track {track_id}: {n} frames, speed of the box bottom centre, joint angles in the image")
        self._set({c: df[c].to_numpy(np.float64) for c in df.columns if c != "observed"}, df["time"].to_numpy())

    def _set(self, cols: dict[str, np.ndarray], t: np.ndarray | None) -> None:
        if pg is None:
            return
        t = np.zeros(0) if t is None else t
        nan = np.full(len(t), np.nan)
        self._speed.setData(t, cols.get("speed_px_s", nan))
        self._speed_s.setData(t, cols.get("speed_px_s_smooth", nan))
        has_angles = False
        for name, curve in self._angles.items():
            values = cols.get(f"{name}_deg_smooth", cols.get(f"{name}_deg"))
            has_angles |= values is not None
            curve.setData(t, values if values is not None else nan)
        show_angles = has_angles or not cols  # box-only tracking: speed only
        self.angle_plot.setVisible(show_angles)
        self.angle_heading.setVisible(show_angles)
        self.speed_plot.showAxis("bottom", not show_angles)  # the same times as the angle plot below it
        self.speed_plot.setMinimumHeight(TRACK_PLOT_HEIGHT + (0 if show_angles else TIME_AXIS_HEIGHT))
