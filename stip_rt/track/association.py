"""Association: which track takes which person in a frame (the three matching stages).

The similarity of every track with every candidate person is computed once (box IoU/GIoU mixed
with OKS, :mod:`stip_rt.track.costs`); each stage then solves its own sub-block with
:func:`stip_rt.track.assignment.assign` (see docs/tracking.md):

1. confirmed and lost tracks vs high-score people; 1b. only after frames without detection
   (``Tracker.coast``): the tracks coasted since their last match that are left, their boxes
   buffered (C-BIoU), vs the high-score people left;
2. confirmed tracks still unmatched vs low-score people (ByteTrack);
3. tentative tracks vs the high-score people left.

The gates apply to the similarity itself; the matching weighs it by how recently the track was
seen (:func:`recency`), so that when two tracks could take the same person, the one seen a moment
ago wins over one lost for a second whose prediction has merely drifted onto that person.
"""

from __future__ import annotations

import numpy as np

from ..geometry import box_areas, iou_matrix, oks
from .assignment import assign
from .config import TrackerConfig
from .costs import BOX_SIMILARITIES, buffered_iou, combined_similarity
from .kalman import state_boxes
from .lifecycle import CONFIRMED, LOST, TENTATIVE
from .table import TrackTable

_NO_PAIRS = np.zeros((0, 2), np.int64)


def associate(
    table: TrackTable,
    x_pred: np.ndarray,
    boxes: np.ndarray,
    kpts: np.ndarray | None,
    cand: np.ndarray,
    is_high: np.ndarray,
    config: TrackerConfig,
    sigmas: np.ndarray | None,
    prev_frame: int | None,
    max_age: int,
    buffer: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The three matching stages.

    Args:
        table: the live tracks (states, last keypoints).
        x_pred: (T, 8) predicted states of the table rows.
        boxes: (N, 4) xyxy boxes of all people; kpts: (N, K, 3) or None.
        cand: (C,) indices of the people with score >= low_score; is_high: (C,) score >= high_score.
        config: the settings.
        sigmas: (K,) OKS sigmas of the schema, or None (no keypoints known yet).
        prev_frame: the previous frame's index (keypoints of tracks matched there take part in OKS).
        max_age: frames a lost track is kept (``max_age_s`` in frames; see :func:`recency`).
        buffer: (T,) buffer scale of each track's box (:func:`~stip_rt.track.costs.buffered_iou`), > 0 for
            the tracks coasted since their last match (``Tracker.coast``: their predictions are less sure);
            None: no buffering (stages 1b and the buffered stage 3 are skipped).

    Returns:
        ``(matches, births)``: (M, 2) int64 (table row, person) pairs, and the high-score people
        left unmatched.
    """
    cfg = config
    if not cand.size:
        return _NO_PAIRS, cand
    sim, gate_on = similarity(
        table, state_boxes(x_pred), boxes[cand], None if kpts is None else kpts[cand], cfg, sigmas, prev_frame
    )
    weight = None if prev_frame is None else recency(table.last, prev_frame, max_age)
    # the buffered similarity of the tracks coasted since their last match (the others' plain one)
    wide = None
    if buffer is not None and (buffer > 0).any():
        rows = (buffer > 0).nonzero()[0]
        wide_sim = sim.copy()
        wide_sim[rows] = buffered_iou(state_boxes(x_pred[rows]), boxes[cand], buffer[rows])
        wide_gate = wide_sim.copy() if gate_on is None else gate_on.copy()
        wide_gate[rows] = wide_sim[rows]
        wide = _weighed(wide_sim, wide_gate, weight), rows
    sim, gate_on = _weighed(sim, gate_on, weight)
    state = table.state
    high = is_high.nonzero()[0]  # positions in cand
    confirmed = (state == CONFIRMED).nonzero()[0]
    # Stage 1: confirmed and lost tracks vs high-score people.
    lost = (state == LOST).nonzero()[0]
    pool = np.concatenate([confirmed, lost])
    gate1 = np.repeat([cfg.min_similarity_high, cfg.min_similarity_lost], [confirmed.size, lost.size])[:, None]
    m1, free_t, free_d = _match(sim, gate_on, pool, high, gate1)
    if wide is not None and free_t.size and free_d.size:
        # 1b. the coasted ones left, with their boxes buffered (C-BIoU's second round), vs the people left
        (w_sim, w_gate), rows = wide
        left = free_t[np.isin(pool[free_t], rows)]  # positions in pool
        m1b, free_b, free_d2 = _match(w_sim, w_gate, pool[left], high[free_d], gate1[left])
        if m1b.size:
            m1 = np.concatenate([m1, m1b])
            free_t = np.setdiff1d(free_t, left[np.setdiff1d(np.arange(left.size), free_b)])
            free_d = free_d[free_d2]
    high_left = high[free_d]
    # Stage 2: confirmed tracks still unmatched vs low-score people (ByteTrack).
    pool2 = pool[free_t[: free_t.searchsorted(confirmed.size)]]  # the pool starts with the confirmed
    m2, _, _ = _match(sim, gate_on, pool2, (~is_high).nonzero()[0], cfg.min_similarity_low)
    # Stage 3: tentative tracks vs the high-score people left (coasted ones buffered).
    tentative = (state == TENTATIVE).nonzero()[0]
    s3, g3 = (sim, gate_on) if wide is None else wide[0]
    m3, _, free_d = _match(s3, g3, tentative, high_left, cfg.min_similarity_tentative)
    matches = np.concatenate([m1, m2, m3])
    matches[:, 1] = cand[matches[:, 1]]
    return matches, cand[high_left[free_d]]


def _weighed(
    sim: np.ndarray, gate_on: np.ndarray | None, weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(sim, gate_on)`` for the matching: gate on the similarity, match on it weighed by recency (if any)."""
    if weight is None:
        return sim, gate_on
    return sim * weight[:, None], sim if gate_on is None else gate_on


def recency(last: np.ndarray, prev_frame: int, max_age: int) -> np.ndarray:
    """(T,) weight of each track's similarities in the matching: ``1 - missed / (max_age + 1)``.

    ``missed`` is the number of frames since the track's last match, before this one (0 for a track
    matched in the previous frame, whose weight is 1). A lost track's claim thus fades linearly over
    the time it is kept, like the track confidence of Hybrid-SORT. The gates are not weighed: a lost
    track alone near a person re-finds it as before; the weight only decides between tracks that
    compete for the same person (the assignment maximises the weighed sum).

    Args:
        last: (T,) frame index of each track's last match.
        prev_frame: the previous frame's index.
        max_age: frames a lost track is kept (``max_age_s`` in frames).
    """
    missed = np.maximum(prev_frame - last, 0)
    return 1.0 - missed / (max_age + 1.0)


def similarity(
    table: TrackTable,
    pred_boxes: np.ndarray,
    boxes: np.ndarray,
    kpts: np.ndarray | None,
    config: TrackerConfig,
    sigmas: np.ndarray | None,
    prev_frame: int | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(T, C) similarity of every track (predicted box) with every candidate, and the gate values.

    Args:
        table: the live tracks (their last keypoints and the boxes those were seen in).
        pred_boxes: (T, 4) predicted xyxy boxes of the tracks (table rows).
        boxes: (C, 4) xyxy boxes of the candidate people.
        kpts: (C, K, 3) their keypoints, or None.
        config: the settings; sigmas: (K,) OKS sigmas or None; prev_frame: see :func:`associate`.

    Returns:
        ``(similarity, gate_on)``: gate_on is the box similarity with ``gate: box``, else None
        (the gates apply to the similarity itself).
    """
    cfg = config
    box_sim = BOX_SIMILARITIES[cfg.box_similarity](pred_boxes, boxes)
    gate_on = box_sim if cfg.gate == "box" else None
    tab = table
    if kpts is None or cfg.oks_weight == 0.0 or tab.num_keypoints is None or sigmas is None or prev_frame is None:
        return box_sim, gate_on
    # OKS only where the boxes overlap (elsewhere it is ~0 and the box term alone decides) and only
    # with keypoints from the previous frame: a lost track's pose is stale, the box re-finds it.
    overlap = box_sim > 0 if cfg.box_similarity == "iou" else iou_matrix(pred_boxes, boxes) > 0
    overlap &= (tab.has_kpts & (tab.last == prev_frame))[:, None]
    r, c = overlap.nonzero()
    if r.size == 0:
        return box_sim, gate_on
    # Move the track's last keypoints with the box: same relative position in the predicted box.
    tk = tab.moved_keypoints(r, pred_boxes[r])
    # OKS at the new person's box area, over the joints seen on both sides (docs/tracking.md).
    areas = np.maximum(box_areas(boxes[c]), 1e-9)
    sim = np.full(box_sim.shape, np.nan)
    sim[r, c] = oks(tk, kpts[c], areas, sigmas, cfg.keypoint_min_score)
    return combined_similarity(box_sim, sim, cfg.oks_weight), gate_on


def _match(
    sim: np.ndarray, gate_on: np.ndarray | None, rows: np.ndarray, cols: np.ndarray, gate: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Assign tracks ``rows`` to candidates ``cols`` on the sub-block of ``sim`` (``gate``: a float or (R, 1) per row).

    Returns:
        ``(pairs, free_rows, free_cols)``: (P, 2) int64 (row, col) values taken from ``rows``/``cols``,
        and the positions in ``rows``/``cols`` left unmatched.
    """
    if rows.size == 0 or cols.size == 0:
        return _NO_PAIRS, np.arange(rows.size), np.arange(cols.size)
    r = rows[:, None]
    pairs, free_r, free_c = assign(sim[r, cols], gate, None if gate_on is None else gate_on[r, cols])
    pairs[:, 0] = rows[pairs[:, 0]]
    pairs[:, 1] = cols[pairs[:, 1]]
    return pairs, free_r, free_c
