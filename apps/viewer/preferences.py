"""Changing the options from the window: the overlay panel (applies at once), the settings dialog
(restarts the run where it was), and Reset settings. What is remembered is kept by
:class:`.options.OptionsState` (the window's ``prefs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .dialogs import SettingsDialog

if TYPE_CHECKING:
    from .window import MainWindow


def overlays_changed(window: MainWindow) -> None:
    """Take the overlay panel's state: redraw a paused or finished frame; smoothing re-tracks from the next
    frame of a running session (a finished one takes it at the next play or seek)."""
    new = window.overlays.apply_to(window.options)
    retrack = new.smoothing != window.options.smoothing
    window.prefs.change(new)
    session = window.session
    if session is None:
        return
    session.sink.set_options(new)
    if retrack and session.ready and not session.finished:
        window.history.mark_break()
        session.seek(max(window.last_index + 1, 0), options=new)  # the models stay
    elif session.sink.paused or session.finished:
        window.repaint_last()


def open_settings(window: MainWindow) -> None:
    """The settings dialog; accepted changes restart a running source from the frame on screen."""
    dialog = SettingsDialog(window.options, window)
    if dialog.exec():
        window.prefs.change(dialog.options())
        if window.session is not None and window.source is not None:
            window.open_source(window.source, start=max(window.last_index, 0), max_frames=window.max_frames,
                               keep_history=True)  # fmt: skip


def reset_settings(window: MainWindow) -> None:
    """Forget every remembered setting; options given on the command line stay for this launch."""
    window.prefs.reset()
    window.overlays.show_options(window.options)
    if window.session is not None:
        window.session.sink.set_options(window.options)
    cli = window.prefs.cli
    kept = f" (kept from the command line: {', '.join(sorted(cli))})" if cli else ""
    window.status_line.show(f"Settings reset to the defaults{kept}; they apply from the next Start")
