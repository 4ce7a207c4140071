"""Window actions: one helper that makes an action (with its shortcut working everywhere in the window)
and the shortcuts table that the help panel lists."""

from __future__ import annotations

from collections.abc import Callable

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMainWindow, QMenu, QToolBar

#: Ways of doing things that are not actions, listed after the keyboard shortcuts.
MOUSE_SHORTCUTS = [("Select a track", "click it"), ("Jump in the video", "click the seek bar")]


def add_action(window: QMainWindow, parent: QMainWindow | QMenu | QToolBar, text: str, slot: Callable[[], object],
               shortcut: QKeySequence | QKeySequence.StandardKey | None = None) -> QAction:  # fmt: skip
    """A new action of ``window``, shown in ``parent`` (a menu or a toolbar) and calling ``slot``.

    A shortcut works in the whole window, also while the menu bar is hidden (and offscreen), because
    the action is added to the window too.
    """
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(shortcut)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(slot)
    parent.addAction(action)
    if parent is not window and shortcut is not None:
        window.addAction(action)
    return action


def shortcuts(window: QMainWindow) -> list[tuple[str, str]]:
    """(what, key) of every action of ``window`` with a shortcut, then the mouse gestures, for the help panel."""
    out = []
    for action in window.actions():
        key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if key:
            out.append((action.text().replace("&", ""), key))
    return out + MOUSE_SHORTCUTS
