"""Box tracking metrics on MOTChallenge data: MOTA, MOTP, IDF1, ID switches (py-motmetrics) and HOTA.

A ground-truth box and a tracked box can match when their IoU is at least 0.5 (the MOTChallenge
rule). The IoU is :func:`stip_rt.geometry.iou_matrix`: motmetrics' own ``iou_matrix`` calls
``np.asfarray``, which numpy 2 removed. Ground-truth rows marked 0 in the 7th column are dropped before scoring, as
py-motmetrics (``min_confidence=1``) and TrackEval do for MOT15.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import StipError
from ..geometry import iou_matrix, xywh_to_xyxy
from ..io.mot import MotSequence
from .hota import HotaResult, combine, hota

OVERALL = "OVERALL"


@dataclass(frozen=True, slots=True)
class TrackingMetrics:
    """CLEAR-MOT, identity and HOTA scores of one sequence (or of all, combined).

    Attributes:
        mota: 1 − (misses + false positives + id switches) / ground-truth boxes.
        motp: mean IoU of the matched boxes (TrackEval's convention; motmetrics reports 1 − this).
        idf1: identity F1 (Ristani et al. 2016).
        idsw: number of identity switches.
        num_gt, num_pred, num_fp, num_misses: box counts.
        hota, deta, assa, loca: HOTA and its detection / association / localisation parts, in [0, 1].
        num_frames: frames scored.
    """

    mota: float
    motp: float
    idf1: float
    idsw: int
    num_gt: int
    num_pred: int
    num_fp: int
    num_misses: int
    hota: float
    deta: float
    assa: float
    loca: float
    num_frames: int


def require_motmetrics() -> types.ModuleType:
    """Import py-motmetrics, or say how to install it (StipError)."""
    try:
        import motmetrics
    except ImportError:
        raise StipError("tracking metrics need py-motmetrics: pip install 'stip-rt[track-eval]'") from None
    return motmetrics


def _per_frame(gt: MotSequence, res: MotSequence) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(frame, gt ids, tracker ids, IoU matrix) for every frame that has a box on either side."""
    g_rows, r_rows = gt.frame_rows(), res.frame_rows()
    empty = np.zeros(0, np.int64)
    out = []
    for f in sorted(set(g_rows) | set(r_rows)):
        gi, ri = g_rows.get(f, empty), r_rows.get(f, empty)
        iou = iou_matrix(xywh_to_xyxy(gt.boxes[gi]), xywh_to_xyxy(res.boxes[ri]))
        out.append((f, gt.ids[gi], res.ids[ri], iou))
    return out


def _check_unique(seq: MotSequence, what: str) -> None:
    if len(seq) and np.unique(np.stack([seq.frames, seq.ids], 1), axis=0).shape[0] != len(seq):
        raise StipError(f"{what}: an id appears twice in the same frame")


def _accumulate(gt: MotSequence, res: MotSequence, iou_threshold: float):
    mm = require_motmetrics()
    acc = mm.MOTAccumulator(auto_id=False)
    frames = _per_frame(gt, res)
    for f, g, t, iou in frames:
        dist = np.where(iou >= iou_threshold, 1.0 - iou, np.nan)
        acc.update(g.tolist(), t.tolist(), dist, frameid=f)
    h = hota([g for _, g, _, _ in frames], [t for _, _, t, _ in frames], [s for *_, s in frames])
    return acc, h


_MM_METRICS = [
    "mota",
    "motp",
    "idf1",
    "num_switches",
    "num_objects",
    "num_predictions",
    "num_false_positives",
    "num_misses",
    "num_frames",
]


def _metrics(row, h: HotaResult) -> TrackingMetrics:
    def val(key: str, default: float = 0.0) -> float:
        v = float(row[key])
        return default if np.isnan(v) else v

    return TrackingMetrics(
        mota=val("mota"),
        motp=1.0 - val("motp", 1.0),
        idf1=val("idf1"),
        idsw=int(row["num_switches"]),
        num_gt=int(row["num_objects"]),
        num_pred=int(row["num_predictions"]),
        num_fp=int(row["num_false_positives"]),
        num_misses=int(row["num_misses"]),
        hota=h.hota,
        deta=h.det_a,
        assa=h.ass_a_mean,
        loca=h.loc_a_mean,
        num_frames=int(row["num_frames"]),
    )


def evaluate_mot(
    sequences: Mapping[str, tuple[MotSequence, MotSequence]], iou_threshold: float = 0.5
) -> dict[str, TrackingMetrics]:
    """Score tracker results against ground truth, per sequence and combined.

    Args:
        sequences: name → (ground truth, results); ground truth should already be filtered
            (e.g. ``read_mot(gt, min_score=1)``).
        iou_threshold: minimum IoU for a match.

    Returns:
        name → metrics, plus ``OVERALL`` (counts summed over sequences; HOTA combined as TrackEval does)
        when there is more than one sequence.

    Raises:
        StipError: motmetrics missing, or an id repeated within a frame.
    """
    mm = require_motmetrics()
    names, accs, hotas = [], [], []
    for name, (gt, res) in sequences.items():
        _check_unique(gt, f"ground truth '{name}'")
        _check_unique(res, f"results '{name}'")
        acc, h = _accumulate(gt, res, iou_threshold)
        names.append(name)
        accs.append(acc)
        hotas.append(h)
    mh = mm.metrics.create()
    summary = mh.compute_many(accs, names=names, metrics=_MM_METRICS, generate_overall=len(names) > 1)
    out = {n: _metrics(summary.loc[n], h) for n, h in zip(names, hotas)}
    if len(names) > 1:
        out[OVERALL] = _metrics(summary.loc[OVERALL], combine(hotas))
    return out


def format_table(results: Mapping[str, TrackingMetrics]) -> str:
    """A plain-text table (percentages) of the metrics, one row per name."""
    head = (
        f"{'sequence':<28}{'MOTA':>7}{'IDF1':>7}{'HOTA':>7}{'DetA':>7}{'AssA':>7}{'MOTP':>7}{'IDSW':>6}"
        f"{'FP':>7}{'FN':>7}"
    )
    lines = [head]
    for name, m in results.items():
        lines.append(
            f"{name:<28}{100 * m.mota:7.1f}{100 * m.idf1:7.1f}{100 * m.hota:7.1f}{100 * m.deta:7.1f}"
            f"{100 * m.assa:7.1f}{100 * m.motp:7.1f}{m.idsw:6d}{m.num_fp:7d}{m.num_misses:7d}"
        )
    return "\n".join(lines)
