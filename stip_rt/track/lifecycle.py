"""A track's lifecycle: its states, activation of new tracks, and how a frame advances every state.

Every rule is a whole-array operation on the :class:`~stip_rt.track.table.TrackTable` rows (see
docs/tracking.md for the policy: ByteTrack-like activation, tentative tracks kept for back-filling,
lost tracks re-found for ``max_age_s``).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from .config import TrackerConfig
from .kalman import state_boxes


class TrackState(IntEnum):
    """Lifecycle of a track.

    TENTATIVE: born, not yet output (its rows are kept for back-filling); removed after more than
        ``tentative_max_misses`` frames without a match.
    CONFIRMED: matched ``min_hits`` times (or born on the first frame); output on every frame it is matched.
    LOST: confirmed but unmatched; keeps predicting (size frozen) and can be re-found for ``max_age_s``;
        removed early when its predicted box is degenerate or outside the frame.
    REMOVED: gone for good; its id is never reused.
    """

    TENTATIVE = 0
    CONFIRMED = 1
    LOST = 2
    REMOVED = 3


# Plain ints for the per-frame array arithmetic (IntEnum attribute access is slow).
TENTATIVE, CONFIRMED, LOST, REMOVED = (int(s) for s in TrackState)
_MISSED = np.array([REMOVED, LOST, LOST, REMOVED], np.int64)  # state after a frame without a match


def born_confirmed(config: TrackerConfig, first_frame: bool) -> bool:
    """True when new tracks are output at once: ``min_hits`` 1, or born on the tracker's first frame
    (``activate_first_frame``); else they start tentative."""
    return config.min_hits <= 1 or (first_frame and config.activate_first_frame)


def advance_states(
    state: np.ndarray,
    hits: np.ndarray,
    missed: np.ndarray,
    matched: np.ndarray,
    config: TrackerConfig,
    max_age: int,
    unreachable: np.ndarray,
) -> np.ndarray:
    """Every track's state after a frame with detections.

    Matched: confirmed, unless tentative with fewer than ``min_hits`` hits. Unmatched: tentative →
    removed after ``tentative_max_misses`` frames, confirmed → lost, lost too long or unreachable →
    removed.

    Args:
        state: (T,) int64 states before this frame.
        hits: (T,) matched frames so far, this one included.
        missed: (T,) frames since each track's last match (0 for the matched ones) that age it
            (``Tracker.coast``-ed frames are no misses of a tentative track).
        matched: (T,) bool, matched in this frame.
        config: the settings; max_age: ``max_age_s`` in frames.
        unreachable: (T,) bool, the predicted state can never match again (:func:`unreachable`).

    Returns:
        (T,) int64 new states.
    """
    young = (state == TENTATIVE) & (hits < config.min_hits)
    missed_state = _MISSED[state]
    missed_state[(state == TENTATIVE) & (missed <= config.tentative_max_misses)] = TENTATIVE
    new = np.where(matched, np.where(young, TENTATIVE, CONFIRMED), missed_state)
    lost = new == LOST
    lost &= (missed > max_age) | unreachable
    new[lost] = REMOVED
    return new


def coast_states(state: np.ndarray, missed: np.ndarray, max_age: int, unreachable: np.ndarray) -> np.ndarray:
    """Every track's state after a frame without detections (``Tracker.coast``): not a miss.

    Tentative and confirmed tracks keep their state, a lost one too until it has been lost too long;
    a confirmed or lost track whose prediction is out of reach is removed (as it would be once missed).

    Args:
        state: (T,) int64 states before this frame.
        missed: (T,) frames since each track's last match that age it.
        max_age: ``max_age_s`` in frames.
        unreachable: (T,) bool, see :func:`unreachable`.

    Returns:
        (T,) int64 new states.
    """
    gone = (state != TENTATIVE) & unreachable
    gone |= (state == LOST) & (missed > max_age)
    return np.where(gone, REMOVED, state)


def unreachable(x: np.ndarray, frame_size: tuple[int, int] | None) -> np.ndarray:
    """(T,) True where the predicted state ``x`` (T, 8) can never match again: a non-finite or
    sub-pixel size, or (with ``frame_size`` (width, height) px) a box wholly outside the frame."""
    wh = x[:, 2:4]
    bad = ~(np.isfinite(x[:, :4]).all(axis=1) & (wh >= 1.0).all(axis=1))
    if frame_size is not None:
        b = state_boxes(x)
        w, h = frame_size
        bad |= (b[:, 2] <= 0) | (b[:, 3] <= 0) | (b[:, 0] >= w) | (b[:, 1] >= h)
    return bad
