"""What the window looks like: no stray tab bar, no clipped panel text (at the default size, a small one
and with a large font), the status bar back to normal after an error, and a text file refused as a
video in the status bar."""

from __future__ import annotations

import pytest
from PyQt6.QtCore import QPoint, QRect
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import QAbstractButton, QApplication, QLabel, QTabBar


def _tab_bars(window) -> list[list[str]]:
    return sorted(
        [bar.tabText(i) for i in range(bar.count())] for bar in window.findChildren(QTabBar) if bar.isVisible()
    )


def test_one_tab_bar_per_group_of_docks(box_window, qtbot) -> None:
    """Tabifying a second group of docks left a stale copy of its tab bar beside the picture (Qt 6.11), on
    screen until the event loop got round to removing it: the first pictures drawn must not have it."""
    QApplication.processEvents()  # paints and lays out, as the first frames on screen do
    assert _tab_bars(box_window) == [["Run", "Overlays"], ["Tracks", "Selected track", "People"]]
    qtbot.wait(50)
    assert _tab_bars(box_window) == [["Run", "Overlays"], ["Tracks", "Selected track", "People"]]


def _shown(widget, window) -> QRect:
    """The part of ``widget`` inside every widget around it (its visible rectangle, in window coordinates)."""
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        rect &= QRect(parent.mapTo(window, QPoint(0, 0)), parent.size())
        parent = parent.parentWidget()
    return rect


def _clipped(window, whole_rows: bool) -> list[str]:
    """The texts of the raised panels that do not fit where they are shown."""
    out = []
    for dock in window.docks.values():
        for w in dock.findChildren(QLabel) + dock.findChildren(QAbstractButton):
            if not w.isVisible() or not w.text():
                continue
            seen = _shown(w, window)
            wrap = isinstance(w, QLabel) and w.wordWrap()
            need_w = w.minimumSizeHint().width() if wrap else w.sizeHint().width()
            need_h = w.heightForWidth(w.width()) if wrap else w.sizeHint().height()
            if seen.width() < min(need_w, w.width()) or w.width() < need_w or (whole_rows and seen.height() < need_h):
                out.append(
                    f"{dock.objectName()}: {w.text()!r} needs {need_w}×{need_h}, shown {seen.width()}×{seen.height()}"
                )
    header = window.tracks.horizontalHeader()
    if window.tracks.isVisible():
        for i in range(header.count()):
            if header.sectionSize(i) < header.sectionSizeHint(i):
                out.append(f"Tracks: column {window.tracks.horizontalHeaderItem(i).text()!r} is cut")
    return out


@pytest.mark.parametrize(("size", "point_size"), [((1360, 820), None), ((900, 600), None), ((1360, 820), 13)])
def test_no_panel_text_is_clipped(make_window, qtbot, size, point_size) -> None:
    from apps.viewer.options import ViewerOptions

    app = QApplication.instance()
    font = app.font()
    if point_size:
        big = QFont(font)
        big.setPointSize(point_size)
        app.setFont(big)
    try:
        w = make_window(ViewerOptions(model="none"))
        w.resize(*size)
        qtbot.waitExposed(w)
        w.tracks.setRowCount(1)  # a row of values too
        for col, text in enumerate(("12345", "1234.5", "1234.5", "1234.5")):
            from PyQt6.QtWidgets import QTableWidgetItem

            w.tracks.setItem(0, col, QTableWidgetItem(text))
        clipped = []
        for tabs in (("Run", "Tracks"), ("Overlays", "Selected track"), ("Run", "People")):
            for name in tabs:
                w.docks[name].raise_()
            qtbot.wait(30)
            clipped += _clipped(w, whole_rows=size == (1360, 820) and not point_size)
        assert clipped == [], "\n".join(clipped)
    finally:
        app.setFont(font)


def test_the_status_bar_is_normal_again_after_an_error(box_window, qtbot, video, tmp_path, wait_frames) -> None:
    w = box_window
    with qtbot.waitSignal(w.run_ended, timeout=30000):
        w.open_source(str(tmp_path / "missing.mp4"))
    assert "missing.mp4: file not found" in w.status_line.message() and w.statusBar().styleSheet()  # red
    assert w.open_source(video)
    wait_frames(w, 2)  # a later open that works: the status bar is no longer red
    assert w.status_line.message().startswith("Running") and w.statusBar().styleSheet() == ""
    w.show_error("cannot write /x.png")
    assert w.statusBar().styleSheet()
    w.status_line.show("Saved frame 3 to /y.png")
    assert w.statusBar().styleSheet() == ""


def test_a_text_file_is_refused_in_the_status_bar(box_window, qtbot, tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not the frames you are looking for\n" * 20)
    w = box_window
    with qtbot.waitSignal(w.run_ended, timeout=30000) as ended:
        w.open_source(str(path))
    assert ended.args[0] == f"{path}: not a video or image (FFmpeg reads it as text, with its 'tty' format)"
    assert w.status_line.message() == ended.args[0] and w.session is None and w.frames_shown == 0


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _pg_texts_shown(plot, window) -> dict[str, bool]:
    """The legend entries and axis labels drawn inside ``plot`` (a pyqtgraph PlotWidget): whether each lies
    wholly within the part of the plot on screen."""
    seen = _shown(plot, window).translated(-plot.mapTo(window, QPoint(0, 0)))
    out = {}
    item = plot.getPlotItem()
    legend = item.legend
    texts = [label.item for _, label in legend.items] if legend is not None and legend.isVisible() else []
    texts += [plot.getAxis(side).label for side in ("left", "bottom") if plot.getAxis(side).isVisible()]
    for text in texts:  # QGraphicsTextItems
        if not text.isVisible():
            continue
        m = text.document().documentMargin()  # blank around the glyphs
        rect = plot.mapFromScene(text.mapRectToScene(text.boundingRect().adjusted(m, m, -m, -m))).boundingRect()
        out[text.toPlainText().strip()] = seen.contains(rect.translated(plot.viewport().pos()))
    return out


def test_the_selected_track_plots_fit_a_small_window(make_window, qtbot) -> None:
    """At 900×600 the joint-angle legend had a third row below the plot and the speed axis label was cut:
    every curve is named where it can be read, and every text drawn in a plot lies inside it."""
    from apps.viewer.options import ViewerOptions
    from apps.viewer.panels import ANGLE_CURVES
    from apps.viewer.plots import _legend_name

    w = make_window(ViewerOptions(model="none"))
    w.resize(900, 600)
    qtbot.waitExposed(w)
    w.docks["Selected track"].raise_()
    qtbot.wait(50)
    panel = w.track_plots
    names = {"speed": ["raw", "smoothed"], "angle": [_legend_name(c) for c in ANGLE_CURVES]}
    for plot, wanted in ((panel.speed_plot, names["speed"]), (panel.angle_plot, names["angle"])):
        assert plot.isVisible() and _shown(plot, w).size() == plot.size(), "the plot itself is cut"
        drawn = _pg_texts_shown(plot, w)
        assert all(drawn.values()), f"cut in the plot: {[t for t, ok in drawn.items() if not ok]}"
        labels = [lbl for lbl in panel.findChildren(QLabel) if lbl.isVisible() and lbl.text()]
        for label in labels:  # names given beside the plot must be wholly shown
            seen = _shown(label, w)
            assert seen.height() >= label.heightForWidth(label.width()) and seen.width() == label.width(), label.text()
        beside = " ".join(lbl.text() for lbl in labels)
        missing = [n for n in wanted if n not in drawn and n not in beside]
        assert not missing, f"curves named nowhere: {missing}"
        axis = plot.getAxis("left")
        assert axis.label.isVisible() or any(u in beside for u in ("px/s", "°")), "the units are shown nowhere"
    w.docks["People"].raise_()
    qtbot.wait(50)
    drawn = _pg_texts_shown(w.plot._plot, w)
    assert "people" in drawn and all(drawn.values()), drawn
