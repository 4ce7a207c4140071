"""HOTA (Luiten et al., IJCV 2021), following TrackEval's ``metrics/hota.py`` step by step.

TrackEval itself is not a dependency: its PyPI release (1.3.0) requires ``opencv-python``, which
would install a second, conflicting ``cv2`` beside ``opencv-python-headless``. This is the same
algorithm on the same inputs (ids per frame and a similarity matrix per frame); the tests compare
it with a hand-checked case, and docs/tracking.md records the check against TrackEval itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

ALPHAS = np.arange(0.05, 0.99, 0.05)  # TrackEval's 19 localisation thresholds
_EPS = np.finfo("float").eps


@dataclass(frozen=True, slots=True)
class HotaResult:
    """HOTA counts and scores at each localisation threshold alpha (arrays of shape (19,)).

    Attributes:
        tp, fn, fp: detection true positives, misses and false positives per alpha.
        ass_a, ass_re, ass_pr: association accuracy / recall / precision per alpha.
        loc_a: mean similarity of the matches per alpha.
    """

    tp: np.ndarray
    fn: np.ndarray
    fp: np.ndarray
    ass_a: np.ndarray
    ass_re: np.ndarray
    ass_pr: np.ndarray
    loc_a: np.ndarray

    @property
    def det_a_alpha(self) -> np.ndarray:
        return self.tp / np.maximum(1.0, self.tp + self.fn + self.fp)

    @property
    def hota_alpha(self) -> np.ndarray:
        return np.sqrt(self.det_a_alpha * self.ass_a)

    @property
    def hota(self) -> float:
        """HOTA averaged over the alphas, in [0, 1]."""
        return float(self.hota_alpha.mean())

    @property
    def det_a(self) -> float:
        return float(self.det_a_alpha.mean())

    @property
    def ass_a_mean(self) -> float:
        return float(self.ass_a.mean())

    @property
    def loc_a_mean(self) -> float:
        return float(self.loc_a.mean())


def _relabel(ids_per_frame: Sequence[np.ndarray]) -> tuple[list[np.ndarray], int]:
    allv = (
        np.concatenate([np.asarray(i, np.int64).reshape(-1) for i in ids_per_frame])
        if ids_per_frame
        else np.zeros(0, np.int64)
    )
    uniq = np.unique(allv)
    return [np.searchsorted(uniq, np.asarray(i, np.int64).reshape(-1)) for i in ids_per_frame], len(uniq)


def hota(
    gt_ids: Sequence[np.ndarray],
    tracker_ids: Sequence[np.ndarray],
    similarities: Sequence[np.ndarray],
) -> HotaResult:
    """HOTA of one sequence.

    Args:
        gt_ids: per frame, (G_t,) ground-truth ids (any integers, unique within a frame).
        tracker_ids: per frame, (T_t,) tracker ids.
        similarities: per frame, (G_t, T_t) similarity in [0, 1] (box IoU, or OKS for poses).

    Returns:
        The :class:`HotaResult`.
    """
    gts, n_gt = _relabel(gt_ids)
    trs, n_tr = _relabel(tracker_ids)
    n_alpha = len(ALPHAS)
    z = np.zeros(n_alpha)
    num_gt = sum(len(g) for g in gts)
    num_tr = sum(len(t) for t in trs)
    if num_tr == 0 or num_gt == 0:
        return HotaResult(
            z.copy(),
            np.full(n_alpha, float(num_gt)),
            np.full(n_alpha, float(num_tr)),
            z.copy(),
            z.copy(),
            z.copy(),
            np.ones(n_alpha),
        )
    # 1. Global association: soft-matched counts of every gt id / tracker id pair.
    potential = np.zeros((n_gt, n_tr))
    gt_count = np.zeros((n_gt, 1))
    tr_count = np.zeros((1, n_tr))
    for g, t, sim in zip(gts, trs, similarities):
        sim = np.asarray(sim, np.float64).reshape(len(g), len(t))
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        sim_iou = np.zeros_like(sim)
        mask = denom > 0 + _EPS
        sim_iou[mask] = sim[mask] / denom[mask]
        potential[g[:, None], t[None, :]] += sim_iou
        gt_count[g] += 1
        tr_count[0, t] += 1
    alignment = potential / (gt_count + tr_count - potential)
    # 2. Per frame: match by alignment × similarity, then count at each alpha.
    tp, fn, fp, loc = z.copy(), z.copy(), z.copy(), z.copy()
    matches = np.zeros((n_alpha, n_gt, n_tr))
    for g, t, sim in zip(gts, trs, similarities):
        if len(g) == 0 or len(t) == 0:
            fp += len(t)
            fn += len(g)
            continue
        sim = np.asarray(sim, np.float64).reshape(len(g), len(t))
        rows, cols = linear_sum_assignment(-(alignment[g[:, None], t[None, :]] * sim))
        matched_sim = sim[rows, cols]
        for a, alpha in enumerate(ALPHAS):
            ok = matched_sim >= alpha - _EPS
            n = int(ok.sum())
            tp[a] += n
            fn[a] += len(g) - n
            fp[a] += len(t) - n
            if n:
                loc[a] += matched_sim[ok].sum()
                matches[a, g[rows[ok]], t[cols[ok]]] += 1
    # 3. Association scores per alpha, weighted by the matches.
    ass_a, ass_re, ass_pr = z.copy(), z.copy(), z.copy()
    for a in range(n_alpha):
        mc = matches[a]
        ass_a[a] = np.sum(mc * (mc / np.maximum(1, gt_count + tr_count - mc))) / max(1.0, tp[a])
        ass_re[a] = np.sum(mc * (mc / np.maximum(1, gt_count))) / max(1.0, tp[a])
        ass_pr[a] = np.sum(mc * (mc / np.maximum(1, tr_count))) / max(1.0, tp[a])
    loc_a = np.maximum(1e-10, loc) / np.maximum(1e-10, tp)
    return HotaResult(tp, fn, fp, ass_a, ass_re, ass_pr, loc_a)


def combine(results: Sequence[HotaResult]) -> HotaResult:
    """Combine sequences as TrackEval does: counts summed, AssA/AssRe/AssPr/LocA weighted by TP."""
    tp = _total(r.tp for r in results)
    w = np.maximum(1.0, tp)

    def wav(field: str) -> np.ndarray:
        return _total(getattr(r, field) * r.tp for r in results) / w

    loc = np.maximum(1e-10, _total(r.loc_a * r.tp for r in results)) / np.maximum(1e-10, tp)
    fn, fp = _total(r.fn for r in results), _total(r.fp for r in results)
    return HotaResult(tp, fn, fp, wav("ass_a"), wav("ass_re"), wav("ass_pr"), loc)


def _total(per_alpha: Iterable[np.ndarray]) -> np.ndarray:
    """Element-wise sum of per-alpha arrays (zeros for none)."""
    return sum(per_alpha, np.zeros(len(ALPHAS)))
