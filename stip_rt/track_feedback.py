"""The pipeline's one feedback edge (track → pose): the tracks a frame without detection takes its boxes from.

:class:`~stip_rt.stages.TrackStep` publishes to a :class:`TrackFeedback` after each item;
:class:`~stip_rt.stages.PoseStep` waits on it for frames that are not detection frames (detect-every-N,
see ``docs/pipeline.md``, "Detect every N and pose batches").
"""

from __future__ import annotations

import threading

from .track.guide import GuideSnapshot
from .types import Frame, Tracks

_POLL = 0.05  # seconds between checks of the cancel flag while waiting for tracks


class TrackFeedback:
    """What the pose step waits for on frames without detection: the tracks of the item before.

    The track step publishes, after each item, either a
    :class:`~stip_rt.track.guide.GuideSnapshot` (with detect-every-N, the tracker's
    :meth:`~stip_rt.track.tracker.Tracker.guide_snapshot`: every person matched in the last update,
    tentative ones too) or, for a tracker without one, its plain output tracks. :meth:`tracks_for`
    turns it into the boxes of the frame the pose step actually processes: a snapshot is predicted
    to that frame's index and time (a live source may have dropped frames in between; variable-rate
    video steps by time), on the pose step's thread, from copies the track thread no longer touches.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._seq = -1
        self._published: Tracks | GuideSnapshot | None = None

    def publish(self, seq: int, tracks: Tracks | GuideSnapshot) -> None:
        """The tracks (or guide snapshot) after item ``seq`` (called in ``seq`` order; not changed afterwards)."""
        with self._cond:
            self._seq, self._published = seq, tracks
            self._cond.notify_all()

    def tracks_for(self, seq: int, frame: Frame, cancel: threading.Event | None = None) -> Tracks | None:
        """The tracks to take ``frame``'s boxes from, once item ``seq`` (the item before it) or a later
        one is published.

        Args:
            seq: the item to wait for; < 0: none (empty tracks at once).
            frame: the frame the boxes are for (its ``index`` and ``time`` pick the guide's prediction).
            cancel: stop waiting when set.

        Returns:
            The published tracks (a snapshot's :meth:`~stip_rt.track.guide.GuideSnapshot.guide` for
            ``frame``); None when ``cancel`` was set first.
        """
        if seq < 0:
            return Tracks.empty()
        with self._cond:
            while self._seq < seq:
                if cancel is not None and cancel.is_set():
                    return None
                self._cond.wait(_POLL)
            published = self._published
        if isinstance(published, GuideSnapshot):  # immutable: predicted outside the lock
            return published.guide(frame.index, frame.time)
        return published
