"""Tracker settings: one frozen dataclass with its defaults in code, loaded from YAML.

The defaults live here, in code; their commented listing is the ``track:`` branch of
``stip_rt/defaults.yaml`` (``stip-rt config --defaults``; a test keeps it equal to the code). A
user tracker YAML (``--tracker FILE``) states only the keys it changes, without the ``track:``
level. Every threshold the tracker uses is a field here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..config import from_dict, read_yaml


@dataclass(frozen=True)
class OneEuroConfig:
    """Causal One-Euro keypoint smoothing (Casiez et al., CHI 2012).

    Attributes:
        enabled: smooth output keypoints of confirmed tracks.
        min_cutoff: cutoff frequency in Hz at zero speed (lower = smoother, more lag when slow).
        beta: speed coefficient in 1/px (higher = less lag when fast).
        d_cutoff: cutoff in Hz of the speed estimate.
    """

    enabled: bool = True
    min_cutoff: float = 1.0
    beta: float = 0.01
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError("smoothing: min_cutoff and d_cutoff must be > 0 and beta >= 0")


@dataclass(frozen=True)
class KalmanConfig:
    """Constant-velocity Kalman filter over (cx, cy, w, h) and their velocities.

    Noise standard deviations are these fractions of the box width (x, w) or height (y, h),
    as in ByteTrack / BoT-SORT, so a large near person and a small far one behave alike.

    Attributes:
        std_position: process and measurement std of position and size, fraction of box size.
        std_velocity: process std of the velocities per frame, fraction of box size.
    """

    std_position: float = 1.0 / 20.0
    std_velocity: float = 1.0 / 160.0

    def __post_init__(self) -> None:
        if self.std_position <= 0 or self.std_velocity <= 0:
            raise ValueError("kalman: std_position and std_velocity must be > 0")


@dataclass(frozen=True)
class TrackerConfig:
    """Everything the tracker decides with. See the ``track:`` branch of ``defaults.yaml`` and docs/tracking.md.

    Attributes:
        high_score: people with a score >= this are matched in the first stage.
        low_score: people with low_score <= score < high_score are matched in the second stage
            against the tracks left over; people below low_score are ignored.
        new_track_score: an unmatched person starts a track only with a score >= this.
        min_hits: matched frames (including the first) before a track is confirmed and output; its
            earlier frames are back-filled (``Tracker.backfill``, ``DelayedOutput``).
        tentative_max_misses: frames in a row a tentative track may go unmatched and still be
            confirmed later (0 = removed at its first miss).
        activate_first_frame: people who start a track on the tracker's first frame are confirmed at
            once (ByteTrack); there is no earlier frame to hold them against.
        max_age_s: seconds a lost track keeps predicting and can be re-found, then it is removed.
        box_similarity: box term of the cost, by name (``iou`` or ``giou``).
        oks_weight: weight of OKS in the similarity ``(1-w)·box + w·OKS`` when both sides have keypoints.
        keypoint_min_score: keypoints below this score are ignored by OKS and never pull the smoother.
        min_similarity_high: first stage: a pair needs at least this similarity to match.
        min_similarity_lost: first stage, for lost tracks (re-finding after a gap): minimum similarity.
        min_similarity_low: second stage (low-score people): minimum similarity.
        min_similarity_tentative: tentative tracks vs leftover high-score people: minimum similarity.
        output_box: ``kalman`` outputs the filtered box, ``detection`` the matched input box.
        gate: what the ``min_similarity_*`` gates apply to: ``box`` (the box similarity: motion decides
            what is possible, OKS only ranks the candidates) or ``combined`` (the mixed similarity).
        coast_buffer_per_s: after frames without detection (``Tracker.coast``, box-only detect every N), the
            tracks coasted since their last match are matched with buffered boxes (C-BIoU, Yang et al.
            2023): grown on every side by this fraction of their size per coasted second (coasted frames /
            ``fps``: 1.4 is 0.2 per coasted frame at 7 fps, 0.056 at 25); confirmed and lost ones in a second
            round after stage 1, tentative ones in stage 3. 0: plain IoU only.
        kalman: motion model noise.
        smoothing: causal One-Euro keypoint smoothing.
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.5
    min_hits: int = 2
    tentative_max_misses: int = 1
    activate_first_frame: bool = True
    max_age_s: float = 1.5
    box_similarity: Literal["iou", "giou"] = "iou"
    oks_weight: float = 0.5
    keypoint_min_score: float = 0.3
    min_similarity_high: float = 0.2
    min_similarity_lost: float = 0.05
    min_similarity_low: float = 0.4
    min_similarity_tentative: float = 0.3
    output_box: Literal["kalman", "detection"] = "kalman"
    gate: Literal["box", "combined"] = "combined"
    coast_buffer_per_s: float = 1.4
    kalman: KalmanConfig = field(default_factory=KalmanConfig)
    smoothing: OneEuroConfig = field(default_factory=OneEuroConfig)

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score <= 1.0:
            raise ValueError("need 0 <= low_score <= high_score <= 1")
        if not 0.0 <= self.new_track_score <= 1.0:
            raise ValueError("new_track_score must be in [0, 1]")
        if self.min_hits < 1:
            raise ValueError("min_hits must be >= 1")
        if self.tentative_max_misses < 0:
            raise ValueError("tentative_max_misses must be >= 0")
        if self.max_age_s < 0:
            raise ValueError("max_age_s must be >= 0")
        if not self.coast_buffer_per_s >= 0.0:
            raise ValueError("coast_buffer_per_s must be >= 0")
        if not 0.0 <= self.oks_weight <= 1.0:
            raise ValueError("oks_weight must be in [0, 1]")
        for name in ("min_similarity_high", "min_similarity_lost", "min_similarity_low", "min_similarity_tentative"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [-1, 1]")

    def max_age_frames(self, fps: float) -> int:
        """``max_age_s`` in frames at ``fps`` (at least 1)."""
        return max(1, math.ceil(self.max_age_s * fps))


def load_tracker_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrackerConfig:
    """Build a :class:`TrackerConfig` from a YAML file (differences only) and/or a mapping.

    Args:
        path: YAML file; None uses the defaults in code.
        overrides: extra keys applied on top of the file (already parsed, e.g. from ``--set``).

    Raises:
        ConfigError: missing file, invalid YAML, unknown key (with a suggestion) or bad value.
    """
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    if overrides:
        data = _merge(data, overrides)
    return from_dict(TrackerConfig, data, str(path) if path is not None else "tracker config")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
