"""Keypoint smoothing: a causal One-Euro filter for live use, a zero-phase smoother for recordings.

In both, keypoints whose score is below ``min_score`` (or not finite) never pull the filter:
they are passed through unchanged and the filter state keeps its last good value.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, filtfilt

from .config import OneEuroConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OneEuroState:
    """State of One-Euro filters over a set of keypoints (leading shape ``S``, e.g. (K,) or (T, K)).

    Attributes:
        x: S + (2,) filtered x, y in pixels (NaN before the first good sample).
        dx: S + (2,) filtered speed in px/s.
        t: S last update time in seconds (NaN before the first good sample).
    """

    x: np.ndarray
    dx: np.ndarray
    t: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> OneEuroState:
        return cls(np.full((*shape, 2), np.nan), np.zeros((*shape, 2)), np.full(shape, np.nan))


def one_euro_step(
    state: OneEuroState, t: float, keypoints: np.ndarray, cfg: OneEuroConfig, min_score: float
) -> tuple[OneEuroState, np.ndarray]:
    """Advance One-Euro filters by one sample (pure function, vectorised over any leading shape).

    Args:
        state: previous state, leading shape ``S`` matching ``keypoints``.
        t: time of this sample in seconds (must increase between calls).
        keypoints: S + (3,) x, y, score in pixels.
        cfg: ``min_cutoff`` (Hz), ``beta`` (1/px), ``d_cutoff`` (Hz).
        min_score: joints below this score (or non-finite) are passed through and do not update.

    Returns:
        ``(new_state, smoothed)`` with ``smoothed`` S + (3,) float32: x, y filtered where the joint was
        good, scores unchanged.
    """
    kp = np.asarray(keypoints, np.float64)
    # Whole-array arithmetic (np.where, no boolean indexing) on contiguous arrays: these arrays are
    # small, so numpy's per-call overhead dominates and strided or broadcast operands cost 2-3x.
    xy = kp[..., :2].copy()
    fin = np.isfinite(xy)
    good = kp[..., 2] >= min_score
    good &= fin[..., 0]
    good &= fin[..., 1]
    seen = np.isfinite(state.t)
    dt = np.where(seen, t - state.t, 1.0)
    np.maximum(dt, 1e-9, out=dt)
    dt = dt[..., None].repeat(2, axis=-1)  # per coordinate
    g = good[..., None].repeat(2, axis=-1)
    # A joint's first good sample starts its filter: previous = current, speed 0, so x̂ = x.
    prev = np.where(seen[..., None].repeat(2, axis=-1), state.x, xy)
    delta = xy - prev
    dx_hat = state.dx + dt / (dt + 1.0 / (2.0 * math.pi * cfg.d_cutoff)) * (delta / dt - state.dx)
    cutoff = np.abs(dx_hat)
    cutoff *= cfg.beta
    cutoff += cfg.min_cutoff
    cutoff *= 2.0 * math.pi
    x_hat = prev + dt / (dt + 1.0 / cutoff) * delta
    out = kp.astype(np.float32)
    out[..., :2] = np.where(g, x_hat, xy)
    return OneEuroState(np.where(g, x_hat, state.x), np.where(g, dx_hat, state.dx), np.where(good, t, state.t)), out


class OneEuroFilter:
    """One-Euro filters for one person's keypoints, called once per sample.

    Example:
        >>> f = OneEuroFilter(OneEuroConfig(), min_score=0.3)
        >>> smoothed = f(0.0, np.array([[10.0, 20.0, 0.9]]))
    """

    def __init__(self, cfg: OneEuroConfig, min_score: float) -> None:
        self.cfg = cfg
        self.min_score = min_score
        self.state: OneEuroState | None = None

    def __call__(self, t: float, keypoints: np.ndarray) -> np.ndarray:
        """Smooth (K, 3) keypoints at time ``t`` seconds; returns (K, 3) float32."""
        if self.state is None:
            self.state = OneEuroState.empty(keypoints.shape[:-1])
        self.state, out = one_euro_step(self.state, t, keypoints, self.cfg, self.min_score)
        return out


@dataclass(frozen=True, slots=True)
class SmoothedTrack:
    """One track's keypoints after offline smoothing.

    Attributes:
        frames: (T',) int64 frame indices: the input frames plus the frames of filled short gaps.
        keypoints: (T', K, 3) float32 x, y, score in pixels; NaN where ``missing``.
        filled: (T', K) bool, True where a joint was interpolated over a gap.
        missing: (T', K) bool, True where a joint has no value: on a frame of a filled track-level
            gap, a joint that was not interpolated (not good on both frames around the gap).
    """

    frames: np.ndarray
    keypoints: np.ndarray
    filled: np.ndarray
    missing: np.ndarray


def smooth_offline(
    frames: np.ndarray,
    keypoints: np.ndarray,
    fps: float,
    cutoff_hz: float = 6.0,
    order: int = 4,
    max_gap: int = 10,
    min_score: float = 0.3,
) -> SmoothedTrack:
    """Zero-phase smoothing of a whole recorded track, with interpolation of short gaps.

    Per joint and coordinate: samples with a score below ``min_score`` (or missing frames) are
    gaps; gaps of at most ``max_gap`` frames between two good samples are filled linearly (score
    interpolated too); every run of good samples is then filtered forwards and backwards with a
    Butterworth low-pass (``scipy.signal.filtfilt``), so there is no lag. Longer gaps split the
    run and are left as they were (low-score joints pass through unchanged). Interpolation needs
    a good sample on both sides: on the frames of a filled track-level gap, a joint that is not
    good on both frames around it is flagged in ``missing`` (x, y and score NaN), never
    extrapolated. Runs too short for the filter (``3 * (order + 1)`` samples or fewer) are left
    unfiltered. When ``cutoff_hz`` is at or above the Nyquist rate
    (``fps / 2``), nothing is filtered (only gaps are filled).

    Args:
        frames: (T,) strictly increasing frame indices of the track.
        keypoints: (T, K, 3) x, y, score in pixels.
        fps: frames per second of the source.
        cutoff_hz: low-pass cutoff in Hz (Sports2D's default Butterworth: order 4, 6 Hz).
        order: Butterworth order.
        max_gap: longest gap (frames) that is filled.
        min_score: joints below this score are treated as missing.

    Returns:
        A :class:`SmoothedTrack`.

    Raises:
        ValueError: frames not strictly increasing or shapes that do not match.
    """
    fr = np.asarray(frames, np.int64)
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim != 3 or kp.shape[-1] != 3 or kp.shape[0] != fr.shape[0]:
        raise ValueError(f"keypoints must be (T, K, 3) with T = len(frames) = {fr.shape[0]}, got {kp.shape}")
    if fr.size > 1 and np.any(np.diff(fr) <= 0):
        raise ValueError("frames must be strictly increasing")
    if fr.size == 0:
        none = np.zeros((0, kp.shape[1]), bool)
        return SmoothedTrack(fr, kp.astype(np.float32), none, none.copy())
    # The output grid: input frames plus frames inside short track-level gaps.
    grid = np.arange(fr[0], fr[-1] + 1)
    gap_after = np.diff(fr) - 1
    keep = np.zeros(grid.size, bool)
    keep[fr - fr[0]] = True
    for start, gap in zip(fr[:-1][gap_after > 0], gap_after[gap_after > 0]):
        if gap <= max_gap:
            keep[start - fr[0] + 1 : start - fr[0] + 1 + gap] = True
    full = np.full((grid.size, kp.shape[1], 3), np.nan)
    full[fr - fr[0]] = kp
    good = (full[..., 2] >= min_score) & np.isfinite(full[..., :2]).all(axis=-1)
    out = full.copy()
    filled = np.zeros(good.shape, bool)
    wn = cutoff_hz / (fps / 2.0)
    ba = butter(order, wn) if 0 < wn < 1 else None
    if ba is None:
        log.info("offline smoothing: cutoff %.3g Hz >= Nyquist %.3g Hz; filling gaps only", cutoff_hz, fps / 2)
    for k in range(kp.shape[1]):
        idx = np.flatnonzero(good[:, k])
        if idx.size == 0:
            continue
        # Fill short joint-level gaps between good samples.
        holes = np.flatnonzero(np.diff(idx) - 1 > 0)
        for h in holes:
            a, b = idx[h], idx[h + 1]
            if b - a - 1 <= max_gap:
                t = np.arange(a + 1, b)
                w = ((t - a) / (b - a))[:, None]
                out[t, k] = (1 - w) * full[a, k] + w * full[b, k]
                filled[t, k] = True
        ok = good[:, k] | filled[:, k]
        if ba is None:
            continue
        # Filter each contiguous run of good or filled samples.
        edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(np.int8), [0]])))
        for s, e in zip(edges[::2], edges[1::2]):
            padlen = 3 * max(len(ba[0]), len(ba[1]))
            if e - s > padlen:
                out[s:e, k, :2] = filtfilt(ba[0], ba[1], out[s:e, k, :2], axis=0, padlen=padlen)
    # Frames of a filled gap where a joint was not interpolated: no sample at all (NaN, flagged).
    missing = np.ones(grid.size, bool)
    missing[fr - fr[0]] = False
    missing = missing[:, None] & ~filled
    out[missing] = np.nan
    return SmoothedTrack(grid[keep], out[keep].astype(np.float32), filled[keep], missing[keep])
