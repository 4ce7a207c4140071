"""The selected track: chosen in the track list or by a click on the video; highlighted in the list,
outlined on the video (the sink draws it) and plotted (speed, joint angles) in the "Selected track" dock."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QObject, QTimer
from PyQt6.QtWidgets import QDockWidget

from stip_rt.types import Tracks

from .history import SessionHistory
from .panels import TrackList, TrackPlots

PLOT_REFRESH_MS = 1000  # the plots of the selected track follow new frames this often


def track_at(tracks: Tracks, x: float, y: float) -> int | None:
    """The id of the person whose box holds frame pixel (x, y), the smallest box winning; None: nobody."""
    b = tracks.boxes
    inside = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])
    if not inside.any():
        return None
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return int(tracks.ids[np.flatnonzero(inside)[np.argmin(area[inside])]])


class TrackSelection(QObject):
    """Which track is selected, shown in the track list and the per-track plots (refreshed while frames come).

    Args:
        history: what the session has seen (the plots are computed from it).
        tracks: the track list.
        plots: the per-track plots.
        dock: the dock of the plots (raised on a selection; hidden: the plots wait).
    """

    def __init__(self, history: SessionHistory, tracks: TrackList, plots: TrackPlots, dock: QDockWidget) -> None:
        super().__init__(dock)
        self.track_id: int | None = None
        self._history, self._tracks, self._plots, self._dock = history, tracks, plots, dock
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(PLOT_REFRESH_MS)
        self._timer.timeout.connect(self._refresh_plots)
        self._timer.start()

    def select(self, track_id: int | None) -> None:
        """Select ``track_id`` (None: clear) in the list and the plots; raise the plots on a selection."""
        self.track_id = track_id
        self._tracks.select_id(track_id)
        self._plots.refresh(self._history, track_id)
        if track_id is not None:
            self._dock.raise_()

    def frame_added(self) -> None:
        """A frame came: the plots refresh at the next tick."""
        self._dirty = True

    def _refresh_plots(self) -> None:
        if self.track_id is not None and self._dirty and self._dock.isVisible():
            self._dirty = False
            self._plots.refresh(self._history, self.track_id)
