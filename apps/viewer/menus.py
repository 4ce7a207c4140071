"""The menu bar (File, Record, View, Help): each action wired to what it does. Every shortcut is set
here (and on the playback toolbar, :mod:`.transport`); F1 lists them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMenu, QMenuBar

from . import dialogs, preferences, saving, transport
from .actions import add_action

if TYPE_CHECKING:
    from .window import MainWindow


@dataclass(frozen=True)
class Menus:
    """The menus and actions that the window changes or tests trigger."""

    camera: QMenu
    view: QMenu
    save_frame: QAction
    export: QAction
    reset: QAction
    record: QAction
    jump: QAction
    trails: QAction
    help: QAction


def _menu(parent: QMenuBar | QMenu, title: str) -> QMenu:
    """A new menu ``title`` in ``parent`` (as Qt's ``addMenu(title)``, which the stubs type as optional)."""
    menu = QMenu(title, parent)
    parent.addMenu(menu)
    return menu


def build_menus(window: MainWindow) -> Menus:
    """Fill ``window``'s menu bar, each action wired to what it does. The View menu ends with a
    separator: the window adds the panels' show/hide actions after it."""
    key, std = QKeySequence, QKeySequence.StandardKey
    bar = window.menuBar()
    assert bar is not None  # QMainWindow.menuBar() makes one when the window has none
    file_menu = _menu(bar, "&File")
    add_action(window, file_menu, "Open &video…", lambda: dialogs.open_video_dialog(window), std.Open)
    camera = _menu(file_menu, "Open &camera")
    camera.aboutToShow.connect(lambda: dialogs.fill_camera_menu(window, camera))
    add_action(window, file_menu, "Open stream &URL…", lambda: dialogs.open_url_dialog(window))
    file_menu.addSeparator()
    save_frame = add_action(window, file_menu, "Save &frame as PNG…", lambda: saving.save_frame_dialog(window),
                            key("Ctrl+S"))  # fmt: skip
    export = add_action(window, file_menu, "&Export run (everything seen)…", lambda: saving.export_run_dialog(window),
                        key("Ctrl+E"))  # fmt: skip
    file_menu.addSeparator()
    add_action(window, file_menu, "&Settings…", lambda: preferences.open_settings(window), key("Ctrl+,"))
    reset = add_action(window, file_menu, "&Reset settings", lambda: preferences.reset_settings(window))
    file_menu.addSeparator()
    add_action(window, file_menu, "&Quit", window.close, std.Quit)
    rec_menu = _menu(bar, "&Record")
    record = add_action(window, rec_menu, "Start &recording…", window.toggle_recording, key("Ctrl+R"))
    view = _menu(bar, "&View")
    jump = add_action(window, view, "&Jump to frame…", lambda: transport.jump_dialog(window), key("Ctrl+G"))
    trails = add_action(window, view, "&Trails", lambda: window.overlays.trails.toggle(), key("T"))
    add_action(window, view, "&Clear selection", lambda: window.select_track(None), key("Escape"))
    view.addSeparator()
    help_menu = _menu(bar, "&Help")
    help_ = add_action(window, help_menu, "&Shortcuts…", window.show_help, key("F1"))
    return Menus(camera, view, save_frame, export, reset, record, jump, trails, help_)
