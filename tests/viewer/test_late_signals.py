"""A signal of a session the window no longer runs changes nothing, also when that session's Qt object
was deleted before the queued signal arrived: PyQt then calls the slot with ``sender()`` None, which
is what ``window.session`` is while no session is open (after Stop, or a failed start)."""

from __future__ import annotations

import gc

import numpy as np
from PyQt6.QtCore import Qt

from stip_rt.types import FrameResult, Tracks


def _emit_from_a_deleted_session(window, signal_name: str, slot, *args) -> None:
    """``signal_name`` of a session connected to ``slot`` as the window connects its own, emitted, then the
    session deleted (garbage-collected) before the event loop delivers the signal."""
    from apps.viewer.session import Session

    old = Session("clip.mp4", window.options)
    getattr(old, signal_name).connect(slot, Qt.ConnectionType.QueuedConnection)
    getattr(old, signal_name).emit(*args)
    del old
    gc.collect()


def test_the_late_end_of_a_deleted_session_while_none_is_open_changes_nothing(box_window, qtbot) -> None:
    w = box_window
    w.status_line.show("Stopped")
    _emit_from_a_deleted_session(w, "ended", w._run_ended, "")  # "reached the end"
    _emit_from_a_deleted_session(w, "ended", w._run_ended, "clip.mp4: cannot decode")
    with qtbot.assertNotEmitted(w.run_ended, wait=100):  # delivered meanwhile; an exception in a slot fails the test
        pass
    assert w.session is None
    assert w.status_line.message() == "Stopped"
    assert not w.status_line.showing_error


def test_a_late_frame_of_a_deleted_session_while_none_is_open_is_not_shown(box_window, qtbot) -> None:
    w = box_window
    result = FrameResult(7, 0.7, Tracks.empty(), {}, np.zeros((8, 8, 3), np.uint8))
    _emit_from_a_deleted_session(w, "frame", w._show_frame, np.zeros((8, 8, 3), np.uint8), result)
    with qtbot.assertNotEmitted(w.frame_shown, wait=100):
        pass
    assert w.frames_shown == 0
    assert w.last_index == -1
