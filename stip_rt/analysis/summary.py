"""One row per track from :func:`~stip_rt.analysis.movement`'s table: duration, frames, distance, speed, joint angles.

Units are in the column names as in ``movement.csv`` (``_s``, ``_px``, ``_m``, ``_px_s``, ``_m_s2``,
``_deg``, ``_deg_s``); docs/analysis.md says how each column is computed. Statistics use the
``_smooth`` columns when the table has them (the raw ones after ``smooth=False``), only rows with
``observed`` True and only finite values; a statistic with no such value is NaN, never 0.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .angles import ANGLE_NAMES
from .kinematics import require_pandas

if TYPE_CHECKING:
    import pandas as pd

SUMMARY_NAME = "summary.csv"

INT_COLUMNS = ("track_id", "first_frame", "last_frame", "frames_observed", "frames_filled", "frames_missing")
"""The summary's integer columns; every other column is float64."""


def _smooth_or_raw(columns: pd.Index, name: str) -> str | None:
    """``name + "_smooth"`` when the table has it, else ``name`` when it has that, else None."""
    for col in (f"{name}_smooth", name):
        if col in columns:
            return col
    return None


def _stat(values: np.ndarray, how: str) -> float:
    """``how`` (``mean``, ``median``, ``min``, ``max``, ``peak`` = max of |value|) of the finite values; NaN if none."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return math.nan
    if how == "peak":
        return float(np.max(np.abs(v)))
    return float(getattr(np, how)(v))


def _distance(frames: np.ndarray, xy: np.ndarray) -> float:
    """Path length of (T, 2) positions over steps of one frame with both ends finite; NaN when there is no such step."""
    step = np.hypot(*np.diff(xy, axis=0).T)
    ok = (np.diff(frames) == 1) & np.isfinite(step)
    return float(step[ok].sum()) if ok.any() else math.nan


def _units(columns: pd.Index) -> list[str]:
    """``px``, plus ``m`` when the table has metre columns."""
    return ["px", *(["m"] if "x_m" in columns else [])]


def _angles(columns: pd.Index) -> list[str]:
    """The joint angles (:data:`~stip_rt.analysis.angles.ANGLE_NAMES` order) that the table has."""
    return [name for name in ANGLE_NAMES if f"{name}_deg" in columns]


def summary_columns(columns: pd.Index) -> list[str]:
    """The column names :func:`summarize` gives for a movement table with these columns, in order."""
    out = ["track_id", "first_frame", "last_frame", "start_time_s", "end_time_s", "duration_s", "frames_observed",
           "frames_filled", "frames_missing"]  # fmt: skip
    for unit in _units(columns):
        out += [
            f"distance_{unit}",
            *(f"speed_{unit}_s_{s}" for s in ("mean", "median", "max")),
            f"accel_{unit}_s2_peak",
        ]
    for name in _angles(columns):
        out += [f"{name}_deg_{s}" for s in ("min", "max", "range", "mean")] + [f"{name}_deg_s_peak"]
    return out


def _track_row(t: pd.DataFrame, columns: pd.Index) -> dict[str, float]:
    """The summary row of one track's rows (sorted by frame)."""
    frames = t["frame"].to_numpy(np.int64)
    observed = t["observed"].to_numpy(bool)
    seen_frames, seen_times = frames[observed], t["time"].to_numpy(np.float64)[observed]
    row: dict[str, float] = {
        "first_frame": int(seen_frames[0]),
        "last_frame": int(seen_frames[-1]),
        "start_time_s": float(seen_times[0]),
        "end_time_s": float(seen_times[-1]),
        "duration_s": float(seen_times[-1] - seen_times[0]),
        "frames_observed": int(observed.sum()),
        "frames_filled": int((~observed).sum()),
        "frames_missing": int(seen_frames[-1] - seen_frames[0] + 1 - len(frames)),
    }

    def seen(name: str) -> np.ndarray:
        col = _smooth_or_raw(columns, name)
        return np.full(int(observed.sum()), math.nan) if col is None else t[col].to_numpy(np.float64)[observed]

    for unit in _units(columns):
        x, y = (_smooth_or_raw(columns, f"{c}_{unit}") for c in ("x", "y"))
        assert x is not None and y is not None  # movement() always has x_px/y_px, and x_m with y_m
        row[f"distance_{unit}"] = _distance(frames, t[[x, y]].to_numpy(np.float64))
        speed = seen(f"speed_{unit}_s")
        for s in ("mean", "median", "max"):
            row[f"speed_{unit}_s_{s}"] = _stat(speed, s)
        row[f"accel_{unit}_s2_peak"] = _stat(seen(f"accel_{unit}_s2"), "peak")
    for name in _angles(columns):
        deg = seen(f"{name}_deg")
        lo, hi = _stat(deg, "min"), _stat(deg, "max")
        row |= {f"{name}_deg_min": lo, f"{name}_deg_max": hi, f"{name}_deg_range": hi - lo,
                f"{name}_deg_mean": _stat(deg, "mean")}  # fmt: skip
        row[f"{name}_deg_s_peak"] = _stat(seen(f"{name}_deg_s"), "peak")
    return row


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per track of a :func:`~stip_rt.analysis.movement` table (what ``summary.csv`` holds).

    Per track: first/last observed frame and time, ``duration_s`` (last − first observed time),
    ``frames_observed``, ``frames_filled`` (gaps the smoother filled), ``frames_missing`` (frames in
    longer gaps); per unit (``px``, and ``m`` with a scale or homography): ``distance_<unit>`` (path
    length over steps of one frame), ``speed_<unit>_s_mean|median|max`` and ``accel_<unit>_s2_peak``
    (largest |acceleration|); per joint angle: ``<angle>_deg_min|max|range|mean`` and
    ``<angle>_deg_s_peak`` (largest |angular velocity|, °/s). Statistics use the ``_smooth`` columns
    when the table has them, else the raw ones, and only observed rows with finite values (the
    distance also runs through filled frames); NaN where there is none.

    Args:
        df: :func:`~stip_rt.analysis.movement`'s DataFrame (at least ``track_id``, ``frame``,
            ``time``, ``observed``, ``x_px``, ``y_px``).

    Returns:
        A DataFrame sorted by ``track_id``, columns as :func:`summary_columns` (``track_id``, frames
        and frame counts int64, the rest float64); ``attrs["smoothed"]`` says whether the ``_smooth``
        columns were used, and the movement table's ``attrs`` are kept.

    Raises:
        StipError: pandas is not installed (the message gives the pip command).
    """
    require_pandas()
    import pandas as pd

    columns = summary_columns(df.columns)
    rows = []
    for _, t in df.groupby("track_id", sort=True):
        t = t.sort_values("frame", kind="stable")
        if t["observed"].any():
            rows.append({"track_id": int(t["track_id"].iloc[0]), **_track_row(t, df.columns)})
    out = pd.DataFrame(rows, columns=columns)
    out = out.astype({c: np.int64 if c in INT_COLUMNS else np.float64 for c in columns})
    out.attrs.update(df.attrs)
    out.attrs["smoothed"] = "x_px_smooth" in df.columns
    return out


def longest_table(summary: pd.DataFrame, n: int = 5) -> str:
    """A short text table of the ``n`` longest tracks (by ``duration_s``, then observed frames) for a console.

    Distance and speeds in metres when the summary has them, else pixels; numbers with 2 decimals, NaN as ``-``.

    Args:
        summary: :func:`summarize`'s DataFrame (or ``summary.csv`` read back).
        n: rows at most.

    Returns:
        Lines without a trailing newline; ``"no tracks"`` for an empty summary.
    """
    if summary.empty:
        return "no tracks"
    unit = "m" if "distance_m" in summary.columns else "px"
    top = summary.sort_values(["duration_s", "frames_observed", "track_id"], ascending=[False, False, True],
                              kind="stable").head(n)  # fmt: skip
    shown = {"track_id": "track", "frames_observed": "observed", "frames_filled": "filled"}  # short headers
    cols = ["track_id", "duration_s", "frames_observed", "frames_filled", f"distance_{unit}",
            f"speed_{unit}_s_median", f"speed_{unit}_s_max"]  # fmt: skip
    table = top[cols].rename(columns=shown)
    title = f"longest tracks ({len(top)} of {len(summary)}):"
    return title + "\n" + table.to_string(index=False, float_format=lambda v: f"{v:.2f}", na_rep="-")
