"""Per-frame, per-track movement quantities from a tracks file: position, speed, acceleration, joint angles.

Units are in the column names (``_px``, ``_m``, ``_px_s``, ``_m_s``, ``_m_s2``, ``_deg``, ``_deg_s``); see
docs/analysis.md for the full list. Raw columns come straight from the file (a keypoint below the
threshold is NaN); ``_smooth`` columns come from the zero-phase Butterworth smoother of
:func:`stip_rt.track.smoothing.smooth_offline` (in time, over the frame times), which also fills gaps
of up to ``max_gap`` frames (rows with ``observed`` False). Speeds and accelerations are central finite
differences over the file's frame times (variable frame rates and dropped frames included; ``frame / fps``
when a frame rate is given), computed separately on each run of consecutive frames.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ..errors import ConfigError, DataError, StipError
from ..io.read import TrackFile, read_tracks
from ..track.smoothing import smooth_offline
from .angles import ANGLE_NAMES, joint_angles
from .ground import GroundMap, load_homography, scale_map

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

Anchor = Literal["box", "hips"]

# movement()'s numeric options: option → (is the value valid, what it must be).
_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "scale": (lambda v: math.isfinite(v) and v > 0, "must be a positive number of metres per pixel"),
    "fps": (lambda v: math.isfinite(v) and v > 0, "must be a positive frame rate in frames per second"),
    "kpt_threshold": (lambda v: 0 <= v <= 1, "must be within [0, 1]"),
    "cutoff_hz": (lambda v: v > 0, "must be a positive frequency in Hz"),
    "kpt_cutoff_hz": (lambda v: v > 0, "must be a positive frequency in Hz"),
    "order": (lambda v: v >= 1, "must be a Butterworth order >= 1"),
    "max_gap": (lambda v: v >= 0, "must be a number of frames >= 0"),
}


def require_pandas() -> None:
    """Raise a :class:`StipError` with the pip command when pandas or matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        import pandas  # noqa: F401
    except ImportError as e:
        raise StipError(f"movement analysis needs {e.name}: pip install 'stip-rt[analysis]'") from None


@dataclass(frozen=True, slots=True)
class _Track:
    """One track's raw samples: frames (T,), times (T,) s, boxes (T, 4) px, scores (T,), keypoints (T, K, 3) or None."""

    frames: np.ndarray
    times: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None


def _collect(tf: TrackFile) -> dict[int, _Track]:
    """Group the file's measured rows by track id (frames in file order).

    Rows marked ``predicted`` (box-only detect every N: the tracker's prediction between detections,
    ``det_index`` −1 in :func:`~stip_rt.io.read.read_tracks`) are left out: they are frames without a
    measurement, filled like any other gap, never speeds of a constant-velocity guess.
    """
    rows: dict[int, list[tuple[int, float, np.ndarray, float, np.ndarray | None]]] = {}
    for fr in tf.frames:
        t = fr.tracks
        for i, tid in enumerate(t.ids.tolist()):
            if t.det_index[i] < 0:
                continue
            kp = None if t.keypoints is None else t.keypoints[i]
            rows.setdefault(int(tid), []).append((fr.frame, fr.time, t.boxes[i], float(t.scores[i]), kp))
    out = {}
    for tid in sorted(rows):
        r = sorted(rows[tid], key=lambda x: x[0])
        frames = np.array([x[0] for x in r], np.int64)
        if np.any(np.diff(frames) <= 0):
            raise DataError(f"{tf.path}: track {tid} appears twice in frame {frames[np.argmin(np.diff(frames))]}")
        kps = None if r[0][4] is None else np.stack([np.asarray(x[4]) for x in r]).astype(np.float64)
        out[tid] = _Track(frames, np.array([x[1] for x in r]), np.stack([x[2] for x in r]).astype(np.float64),
                          np.array([x[3] for x in r]), kps)  # fmt: skip
    return out


def _smooth(frames: np.ndarray, times: np.ndarray, kp: np.ndarray, fps: float, cutoff: float, order: int,
            max_gap: int, min_score: float) -> np.ndarray:  # fmt: skip
    """:func:`smooth_offline` of (T, K, 3) keypoints around each joint's straight-line trend; (T', K, 3) on its grid.

    The filter is linear, so subtracting a least-squares line per joint and coordinate (fitted to its
    good samples) and adding it back after filtering changes nothing in the middle of a track, but
    removes the start-up transient of ``filtfilt`` at the ends: steady motion comes out exact. The
    line and the filter are in time (``times``, seconds of the frames): at uneven frame steps (a
    variable frame rate, stalls) the smoother resamples onto an even time grid, so curved paths and
    angles keep the cutoff in Hz whatever the local frame rate.
    A joint the smoother did not interpolate on a filled frame (``missing``) is NaN, whatever ``min_score``.
    """
    kp = np.asarray(kp, np.float64)
    good = (kp[..., 2] >= min_score) & np.isfinite(kp[..., :2]).all(-1)
    t = np.asarray(times, np.float64) - (times[0] if len(times) else 0.0)
    slope = np.zeros((kp.shape[1], 2))
    offset = np.zeros_like(slope)
    for k in range(kp.shape[1]):
        if good[:, k].sum() >= 2:
            a = np.stack([t[good[:, k]], np.ones(good[:, k].sum())], 1)
            (slope[k], offset[k]), *_ = np.linalg.lstsq(a, kp[good[:, k], k, :2], rcond=None)
    detrended = kp.copy()
    detrended[..., :2] -= t[:, None, None] * slope + offset
    sm = smooth_offline(
        frames, detrended, fps, cutoff_hz=cutoff, order=order, max_gap=max_gap, min_score=min_score, times=t
    )
    out = sm.keypoints.astype(np.float64)
    tg = np.interp(sm.frames, frames, t) if len(frames) else np.zeros(0)
    out[..., :2] += tg[:, None, None] * slope + offset
    out[sm.missing | ~(out[..., 2] >= min_score), :2] = np.nan
    return out


def _smooth_xy(frames: np.ndarray, times: np.ndarray, xy: np.ndarray, fps: float, cutoff: float, order: int,
               max_gap: int) -> np.ndarray:  # fmt: skip
    """Smooth (T, 2) points (NaN = missing) at ``times`` (T,) s; returns (T', 2) on the smoother's grid."""
    kp = np.concatenate([xy, np.isfinite(xy).all(1, keepdims=True).astype(np.float64)], 1)[:, None]
    return _smooth(frames, times, kp, fps, cutoff, order, max_gap, 0.5)[:, 0, :2]


_TIME_ROUNDING = 1e-4  # s: the tracks file's times have 4 decimals (docs/formats.md)


def file_rate(tf: TrackFile) -> float | None:
    """The mean frame rate of the file's times, ``(last frame - first frame) / (last time - first time)``.

    None when the file has fewer than two frames or its times do not advance (nothing to measure).
    """
    if len(tf.frames) < 2:
        return None
    first, last = tf.frames[0], tf.frames[-1]
    span = last.time - first.time
    if not (math.isfinite(span) and span > 0 and last.frame > first.frame):
        return None
    return (last.frame - first.frame) / span


def _clock(frames: np.ndarray, times: np.ndarray, fps: float, from_frames: bool) -> np.ndarray:
    """(T,) seconds of a track's frames: the file's times, or ``frame / fps`` when ``from_frames``.

    Times that agree with a steady ``fps`` up to the file's rounding (0.1 ms) are replaced by the
    exact steady clock (rounding noise would otherwise show up in accelerations); times that do not
    increase (a broken clock) fall back to it too.
    """
    frames = np.asarray(frames, np.int64)
    if from_frames or len(frames) == 0:
        return frames / fps
    t = np.asarray(times, np.float64)
    steady = t[0] + (frames - frames[0]) / fps
    if np.all(np.abs(t - steady) <= _TIME_ROUNDING):
        return steady
    if not (np.isfinite(t).all() and np.all(np.diff(t) > 0)):
        log.warning("frame times do not increase from frame %d on; using frame / %.4g fps", frames[0], fps)
        return steady
    return t


def _rate(values: np.ndarray, frames: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``d values / dt`` of (T, ...) values: central differences over ``times`` (T,) s, per run of frames.

    A frame step other than 1 (a gap that was not filled) cuts the differences; a run of one frame,
    and a sample next to a NaN, give NaN.
    """
    out = np.full(np.shape(values), np.nan)
    cuts = np.flatnonzero(np.diff(frames) != 1) + 1
    for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(frames)]):
        if e - s >= 2:
            out[s:e] = np.gradient(values[s:e], times[s:e], axis=0)
    return out


def _derivatives(xy: np.ndarray, frames: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speed ``|d xy / dt|`` and its rate of change ``d speed / dt`` of (T, 2) points, per run of frames.

    Args:
        xy: (T, 2) positions (NaN = missing).
        frames: (T,) frame indices; a step other than 1 cuts the differences.
        times: (T,) seconds of those frames.
    """
    v = _rate(xy, frames, times)
    speed = np.hypot(v[:, 0], v[:, 1])
    return speed, _rate(speed, frames, times)


def _anchor(tr: _Track, names: tuple[str, ...] | None, anchor: Anchor, thr: float) -> np.ndarray:
    """(T, 2) position in pixels: box bottom centre, or hip midpoint (NaN when a hip is below threshold)."""
    if anchor == "box":
        return np.stack([(tr.boxes[:, 0] + tr.boxes[:, 2]) / 2, tr.boxes[:, 3]], 1)
    assert names is not None and tr.keypoints is not None
    hips = tr.keypoints[:, [names.index("left_hip"), names.index("right_hip")]]
    xy = hips[..., :2].mean(1)
    xy[(hips[..., 2] < thr).any(1)] = np.nan
    return xy


def _track_columns(tid: int, tr: _Track, names: tuple[str, ...] | None, ground: GroundMap | None, fps: float,
                   opts: dict) -> dict[str, np.ndarray]:  # fmt: skip
    """All columns of one track, on the smoother's grid (observed frames plus filled short gaps)."""
    smooth, thr = opts["smooth"], opts["kpt_threshold"]
    order, max_gap = opts["order"], opts["max_gap"]
    raw = _anchor(tr, names, opts["anchor"], thr)
    if smooth:
        grid = smooth_offline(tr.frames, np.zeros((len(tr.frames), 0, 3)), fps, max_gap=max_gap).frames
    else:
        grid = tr.frames
    at = np.searchsorted(grid, tr.frames)

    def on_grid(values: np.ndarray) -> np.ndarray:
        out = np.full((len(grid), *values.shape[1:]), np.nan)
        out[at] = values
        return out

    clock = _clock(tr.frames, tr.times, fps, opts["from_frames"])
    times = np.interp(grid, tr.frames, clock) if len(grid) else np.zeros(0)
    cols: dict[str, np.ndarray] = {
        "track_id": np.full(len(grid), tid, np.int64),
        "frame": grid,
        "time": times,
        "observed": np.isin(grid, tr.frames),
        "score": on_grid(tr.scores),
    }
    pos = {"px": on_grid(raw)}
    if ground is not None:
        pos["m"] = ground(pos["px"])
    for unit, xy in pos.items():
        cols[f"x_{unit}"], cols[f"y_{unit}"] = xy[:, 0], xy[:, 1]
        if smooth:
            sm = _smooth_xy(tr.frames, clock, xy[at], fps, opts["cutoff_hz"], order, max_gap)
            cols[f"x_{unit}_smooth"], cols[f"y_{unit}_smooth"] = sm[:, 0], sm[:, 1]
    for unit, xy in pos.items():
        deriv = {"": _derivatives(xy, grid, times)}
        if smooth:
            sxy = np.stack([cols[f"x_{unit}_smooth"], cols[f"y_{unit}_smooth"]], 1)
            deriv["_smooth"] = _derivatives(sxy, grid, times)
        for i, stem in enumerate((f"speed_{unit}_s", f"accel_{unit}_s2")):
            for suffix, values in deriv.items():
                cols[f"{stem}{suffix}"] = values[i]
    if names is None or tr.keypoints is None:
        return cols
    kp = on_grid(tr.keypoints)
    kp_xy = kp[..., :2].copy()
    kp_xy[~(kp[..., 2] >= thr)] = np.nan
    angles = {"": joint_angles(kp_xy, names)}
    if smooth:
        sk_xy = _smooth(tr.frames, clock, tr.keypoints, fps, opts["kpt_cutoff_hz"], order, max_gap, thr)[..., :2]
        angles["_smooth"] = joint_angles(sk_xy, names)
    for name in ANGLE_NAMES:
        for suffix, by_name in angles.items():
            if name in by_name:
                cols[f"{name}_deg{suffix}"] = by_name[name]
    for name in ANGLE_NAMES:  # angular velocities, over the same clock as the speeds
        for suffix, by_name in angles.items():
            if name in by_name:
                cols[f"{name}_deg_s{suffix}"] = _rate(by_name[name], grid, times)
    for k, name in enumerate(names):
        cols[f"{name}_x_px"], cols[f"{name}_y_px"] = kp_xy[:, k, 0], kp_xy[:, k, 1]
        cols[f"{name}_score"] = kp[:, k, 2]
        if smooth:
            cols[f"{name}_x_px_smooth"], cols[f"{name}_y_px_smooth"] = sk_xy[:, k, 0], sk_xy[:, k, 1]
    return cols


def check_options(flags: Mapping[str, str] | None = None, **options: float | None) -> None:
    """Raise a :class:`ConfigError` for the first numeric option of :func:`movement` out of its range.

    Args:
        flags: option name → the command-line flag that gave it (``cutoff_hz`` → ``--cutoff``): the
            message then starts ``--cutoff 0: ...``, else with the keyword, ``cutoff_hz=0.0: ...``.
        **options: :func:`movement` keywords (``scale``, ``fps``, ``kpt_threshold``, ``cutoff_hz``,
            ``kpt_cutoff_hz``, ``order``, ``max_gap``); None is not checked (no scale, the header's fps).

    Raises:
        ConfigError: naming the option (or its flag) and its value, and saying what was expected.
    """
    names = flags or {}
    for name, value in options.items():
        valid, expected = _RULES[name]
        if value is not None and not valid(value):
            shown = f"{names[name]} {value:g}" if name in names else f"{name}={value!r}"
            raise ConfigError(f"{shown}: {expected}")


_RATE_TOLERANCE = 0.05  # the header's frame rate is trusted while the file's times agree with it this well


def _sample_rate(tf: TrackFile) -> float:
    """Frames per second of the file, for the smoother: the header's, unless the file's times disagree.

    A camera reports a nominal rate (30) but may deliver fewer frames (15 in dim light), and a phone
    video's header rate is only nominal: the times in the file are what the speeds use, so their
    mean rate wins when it is more than 5 % off the header's (a warning says so), and stands in for
    a header with no rate.

    Raises:
        ConfigError: neither the header nor the times give a rate (a single frame without fps).
    """
    header, measured = tf.source.fps, file_rate(tf)
    has_header = math.isfinite(header) and header > 0
    if measured is None:
        if not has_header:
            raise ConfigError(f"{tf.path}: no frame rate in the header; give the frame rate (fps, or analyze --fps)")
        return header
    if not has_header:
        log.info("%s: no frame rate in the header; the frame times give %.4g fps", tf.path, measured)
        return measured
    if abs(measured / header - 1) > _RATE_TOLERANCE:
        log.warning("%s: the header says %.4g fps but the frame times give %.4g fps (a camera's nominal rate, or a "
                    "variable frame rate); smoothing at %.4g fps", tf.path, header, measured, measured)  # fmt: skip
        return measured
    return header


def _ground(scale: float | None, homography: GroundMap | str | os.PathLike[str] | None) -> GroundMap | None:
    if scale is not None and homography is not None:
        raise ConfigError("give a scale or a homography, not both")
    if scale is not None:
        return scale_map(scale)
    if homography is None or isinstance(homography, GroundMap):
        return homography
    return load_homography(homography)


def movement(
    tracks: TrackFile | str | os.PathLike[str],
    *,
    scale: float | None = None,
    homography: GroundMap | str | os.PathLike[str] | None = None,
    kpt_threshold: float = 0.3,
    smooth: bool = True,
    cutoff_hz: float = 2.0,
    kpt_cutoff_hz: float = 6.0,
    order: int = 4,
    max_gap: int = 10,
    anchor: Anchor = "box",
    fps: float | None = None,
) -> pd.DataFrame:
    """Movement quantities per track and frame, one row each (columns and units in docs/analysis.md).

    Args:
        tracks: a :func:`~stip_rt.io.read.read_tracks` result, or a path to read.
        scale: metres per pixel (uniform), for ``_m`` columns; excludes ``homography``.
        homography: a :class:`~stip_rt.analysis.ground.GroundMap` or a homography file
            (:func:`~stip_rt.analysis.ground.load_homography`), for ``_m`` columns on the ground plane.
        kpt_threshold: keypoints with a lower score are NaN (and do not pull the smoother).
        smooth: add ``_smooth`` columns (zero-phase Butterworth, gaps of up to ``max_gap`` frames filled).
        cutoff_hz: low-pass cutoff of the position (and so the speed) in Hz.
        kpt_cutoff_hz: low-pass cutoff of the keypoints (and so the joint angles) in Hz.
        order: Butterworth order.
        max_gap: longest gap in a track (frames) that the smoother fills.
        anchor: a person's position: ``box`` = bottom centre of the box (the feet: the point on the
            ground plane), ``hips`` = midpoint of the hips (needs keypoints).
        fps: frames per second to use instead of the file's: times become ``frame / fps`` (for a file
            with no rate or a wrong one). None: times are the file's, and the smoother's rate is the
            header's, or the rate of the file's times when the header has none or is more than 5 % off.

    Returns:
        A pandas DataFrame sorted by ``track_id`` then ``frame``. ``df.attrs`` holds ``fps``,
        ``ground`` (how metres were made, or None), ``anchor`` and ``keypoints`` (joint names or None).

    Raises:
        StipError: pandas is not installed (the message gives the pip command).
        DataError: unreadable tracks file (see :func:`~stip_rt.io.read.read_tracks`).
        ConfigError: a bad option (a number out of range as :func:`check_options` says, degenerate
            homography, no frame rate in the header or the times and none given, ``hips`` without keypoints).
    """
    require_pandas()
    import pandas as pd

    tf = tracks if isinstance(tracks, TrackFile) else read_tracks(tracks)
    check_options(scale=scale, fps=fps, kpt_threshold=kpt_threshold, cutoff_hz=cutoff_hz,
                  kpt_cutoff_hz=kpt_cutoff_hz, order=order, max_gap=max_gap)  # fmt: skip
    ground = _ground(scale, homography)
    rate = float(fps) if fps is not None else _sample_rate(tf)
    if anchor not in ("box", "hips"):
        raise ConfigError(f"anchor {anchor!r}: expected 'box' or 'hips'")
    names = tf.skeleton.keypoints if tf.skeleton is not None else None
    if anchor == "hips" and (names is None or not {"left_hip", "right_hip"} <= set(names)):
        raise ConfigError(f"{tf.path}: anchor 'hips' needs keypoints with left_hip and right_hip")
    for what, hz in (("positions", cutoff_hz), ("keypoints", kpt_cutoff_hz if names is not None else 0.0)):
        if smooth and hz >= rate / 2:
            log.warning("cutoff %.3g Hz is at or above the Nyquist frequency (half of %.3g fps: %.3g Hz): %s are not "
                        "smoothed", hz, rate, rate / 2, what)  # fmt: skip
    opts = {"from_frames": fps is not None, "smooth": smooth, "kpt_threshold": kpt_threshold, "cutoff_hz": cutoff_hz,
            "kpt_cutoff_hz": kpt_cutoff_hz, "order": order, "max_gap": max_gap, "anchor": anchor}  # fmt: skip
    parts = [_track_columns(tid, tr, names, ground, rate, opts) for tid, tr in _collect(tf).items()]
    if parts:
        df = pd.concat([pd.DataFrame(p) for p in parts], ignore_index=True)
    else:
        empty = _Track(np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 4)), np.zeros(0),
                       None if names is None else np.zeros((0, len(names), 3)))  # fmt: skip
        df = pd.DataFrame(_track_columns(0, empty, names, ground, rate, opts))
    df.attrs.update(fps=rate, ground=None if ground is None else ground.source, anchor=anchor,
                    keypoints=None if names is None else list(names))  # fmt: skip
    return df
