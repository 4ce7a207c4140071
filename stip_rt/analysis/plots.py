"""Pictures of a :func:`~stip_rt.analysis.movement` table, with matplotlib.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no GUI backend
is touched; ``fig.savefig("x.png")`` renders with Agg, and Jupyter shows the figure inline).
Track colours are the annotated video's (:func:`stip_rt.io.draw.id_color`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, SupportsInt, cast

import cv2
import numpy as np

from ..errors import StipError

try:
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
except ImportError:
    raise StipError("the analysis plots need matplotlib: pip install 'stip-rt[analysis]'") from None

from ..io.draw import id_color
from ..io.image_source import find_images
from ..types import SourceInfo
from .angles import JOINT_ANGLES, TRUNK_LEAN

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

log = logging.getLogger(__name__)

_LEFT, _RIGHT = "#2a9d3f", "#e07b00"  # the skeleton's left (green) and right (orange)


def track_color(track_id: int) -> tuple[float, float, float]:
    """The track's colour in the annotated video, as matplotlib RGB in [0, 1]."""
    b, g, r = id_color(track_id)
    return r / 255, g / 255, b / 255


def still_frame(source: SourceInfo, base: str | Path | None = None) -> np.ndarray | None:
    """The first frame of the source as (H, W, 3) uint8 RGB, or None when it cannot be read.

    Only files and image folders are opened (a camera index or a stream URL is never opened).

    Args:
        source: the tracks file's source; ``source.uri`` is tried as given (relative to the
            working directory), then relative to ``base``.
        base: a second folder for a relative ``uri``, e.g. the tracks file's folder.
    """
    uri = source.uri
    path = Path(uri)
    if base is not None and not path.is_absolute() and not path.exists() and (Path(base) / path).exists():
        path = Path(base) / path
        uri = str(path)
    image = None
    try:
        if path.is_file():
            cap = cv2.VideoCapture(str(path))
            ok, image = cap.read()
            cap.release()
            if not ok:
                image = cv2.imread(str(path))
        elif path.is_dir() or any(c in uri for c in "*?["):
            images = find_images(uri)
            image = cv2.imread(str(images[0])) if images else None
    except (OSError, cv2.error, ValueError) as e:  # the still is a nicety: say why it is missing, go on
        log.warning("%s: cannot read the first frame (%s); plotting on a blank canvas", uri, e)
        return None
    if image is None:
        log.info("%s: not readable here; trajectories are drawn on a blank canvas", uri)
        return None
    return np.ascontiguousarray(image[..., ::-1])


def _col(df: pd.DataFrame, stem: str) -> str:
    """The smoothed column when there is one, else the raw one."""
    return f"{stem}_smooth" if f"{stem}_smooth" in df.columns else stem


def _label_end(ax: Axes, x: np.ndarray, y: np.ndarray, tid: int) -> None:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.any():
        i = np.flatnonzero(ok)[-1]
        ax.annotate(f"{tid}", (x[i], y[i]), xytext=(3, 3), textcoords="offset points", fontsize=8,
                    color="black", bbox={"boxstyle": "round,pad=0.15", "fc": track_color(tid), "ec": "none",
                                         "alpha": 0.85})  # fmt: skip


def _start_end_legend(ax: Axes) -> None:
    handles = [
        Line2D([], [], color="0.3", marker="o", ls="", markersize=5, label="start"),
        Line2D([], [], color="0.3", lw=2, label="path (smoothed)"),
        Line2D([], [], color="0.3", marker="s", ls="", markersize=5, label="end, with track id"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)


def _by_track(df: pd.DataFrame) -> Iterator[tuple[int, pd.DataFrame]]:
    """(track id, its rows with :func:`_with_breaks`) in id order; the ``track_id`` column holds integers."""
    for tid, g in df.groupby("track_id", sort=True):
        yield int(cast(SupportsInt, tid)), _with_breaks(g)


def _with_breaks(g: pd.DataFrame) -> pd.DataFrame:
    """One track's rows with an all-NaN row inside each gap that was not filled (frames missing), so
    that a plotted line breaks there instead of joining the two sides with a straight segment."""
    import pandas as pd

    frames = g["frame"].to_numpy()
    gaps = np.flatnonzero(np.diff(frames) > 1)
    if not gaps.size:
        return g
    blank = pd.DataFrame(np.nan, index=range(gaps.size), columns=[c for c in g.columns if g[c].dtype.kind in "fiu"])
    blank["frame"] = frames[gaps] + 0.5
    if "time" in blank.columns:
        t = g["time"].to_numpy(np.float64)
        blank["time"] = (t[gaps] + t[gaps + 1]) / 2
    rows = pd.concat([g.reset_index(drop=True), blank], ignore_index=True)
    return rows.sort_values("frame", kind="stable").reset_index(drop=True)


def trajectories(df: pd.DataFrame, source: SourceInfo, background: np.ndarray | None = None) -> Figure:
    """Each track's path in the image (position column, smoothed if present) over a still frame.

    Args:
        df: a :func:`~stip_rt.analysis.movement` table.
        source: the tracks file's source (its size sets the axes).
        background: (H, W, 3) uint8 RGB still; None draws a light grey canvas of the source size.

    Returns:
        The figure.
    """
    w, h = source.width, source.height
    fig = Figure(figsize=(10, 8.2 * h / w + 0.9), layout="constrained")
    ax = fig.add_subplot()
    if background is not None:
        ax.imshow(background, extent=(0, w, h, 0), alpha=0.75)
    else:
        ax.set_facecolor("0.93")
    x_col, y_col = _col(df, "x_px"), _col(df, "y_px")
    for tid, g in _by_track(df):
        x, y = g[x_col].to_numpy(), g[y_col].to_numpy()
        c = track_color(tid)
        ax.plot(x, y, color="black", lw=3.2, alpha=0.5, solid_capstyle="round")  # outline: visible on any frame
        ax.plot(x, y, color=c, lw=2, solid_capstyle="round")
        ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if ok.size:
            ax.plot(x[ok[0]], y[ok[0]], "o", color=c, mec="black", ms=5)
            ax.plot(x[ok[-1]], y[ok[-1]], "s", color=c, mec="black", ms=5)
        _label_end(ax, x, y, tid)
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_aspect("equal")
    anchor = "hip midpoint" if df.attrs.get("anchor") == "hips" else "box bottom centre"
    ax.set_title(f"Trajectories ({anchor}) — {Path(source.uri).name}")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    _start_end_legend(ax)
    return fig


def ground_trajectories(df: pd.DataFrame) -> Figure:
    """Each track's path in metres (``x_m``/``y_m``, smoothed if present), equal axes.

    Raises:
        KeyError: the table has no metre columns (no scale or homography was given).
    """
    x_col, y_col = _col(df, "x_m"), _col(df, "y_m")
    if x_col not in df.columns:
        raise KeyError("no x_m column: give a scale or a homography to movement()")
    fig = Figure(figsize=(9, 7.5), layout="constrained")
    ax = fig.add_subplot()
    for tid, g in _by_track(df):
        x, y = g[x_col].to_numpy(), g[y_col].to_numpy()
        c = track_color(tid)
        ax.plot(x, y, color=c, lw=2)
        ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if ok.size:
            ax.plot(x[ok[0]], y[ok[0]], "o", color=c, mec="black", ms=5)
            ax.plot(x[ok[-1]], y[ok[-1]], "s", color=c, mec="black", ms=5)
        _label_end(ax, x, y, tid)
    ax.set_aspect("equal", adjustable="datalim")
    ground = str(df.attrs.get("ground") or "")
    if ground.startswith("scale"):
        ax.invert_yaxis()  # a scaled image keeps the image's axes: y down
    ax.grid(alpha=0.3)
    ax.set_title(f"Trajectories on the ground plane ({ground})" if ground else "Trajectories on the ground plane")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    _start_end_legend(ax)
    return fig


def _pick_tracks(df: pd.DataFrame, max_tracks: int) -> tuple[list[int], str]:
    counts = df.groupby("track_id")["observed"].sum()
    ids = sorted(counts.index.tolist())
    if len(ids) <= max_tracks:
        return ids, ""
    keep = sorted(counts.sort_values(ascending=False, kind="stable").index[:max_tracks].tolist())
    return keep, f" ({max_tracks} longest of {len(ids)} tracks)"


def _grid(n: int, panel: tuple[float, float]) -> tuple[int, int, tuple[float, float]]:
    cols = max(1, min(n, math.ceil(math.sqrt(n * 1.5))))
    rows = max(1, math.ceil(n / cols))
    return rows, cols, (panel[0] * cols + 0.6, panel[1] * rows + 0.9)


def speed(df: pd.DataFrame, unit: str | None = None, max_tracks: int = 30) -> Figure:
    """Speed over time, one small panel per track (shared axes): raw thin, smoothed bold.

    Args:
        df: a :func:`~stip_rt.analysis.movement` table.
        unit: ``m`` or ``px``; None takes metres when the table has them.
        max_tracks: at most this many panels (the longest tracks).

    Returns:
        The figure.
    """
    unit = unit or ("m" if "speed_m_s" in df.columns else "px")
    raw, sm = f"speed_{unit}_s", f"speed_{unit}_s_smooth"
    ids, note = _pick_tracks(df, max_tracks)
    rows, cols, size = _grid(max(1, len(ids)), (3.0, 2.0))
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(rows, cols, sharey=True, squeeze=False)  # own time range: short tracks stay readable
    finite = df[sm if sm in df.columns else raw].to_numpy(np.float64)
    finite = finite[np.isfinite(finite)]
    top = float(np.percentile(finite, 99.5)) * 1.15 if finite.size else 1.0
    for ax, tid in zip(axes.flat, ids):
        g = _with_breaks(df[df["track_id"] == tid])
        c = track_color(tid)
        ax.plot(g["time"], g[raw], color=c, lw=0.8, alpha=0.55)
        if sm in g.columns:
            ax.plot(g["time"], g[sm], color=c, lw=2)
            ax.plot(g["time"], g[sm], color="black", lw=0.6, alpha=0.6)
        ax.set_title(f"track {tid}", fontsize=9, pad=2)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(ids) :]:
        ax.set_visible(False)
    if top > 0:
        axes[0, 0].set_ylim(0, top)
    units = "m/s" if unit == "m" else "px/s"
    fig.suptitle(f"Speed over time{note} — thin: raw, bold: smoothed")
    fig.supxlabel("time (s)")
    fig.supylabel(f"speed ({units})")
    return fig


def has_angles(df: pd.DataFrame, track_id: int) -> bool:
    """True when the track has at least one finite joint angle."""
    g = df[df["track_id"] == track_id]
    cols = [c for c in df.columns if c.endswith("_deg")]
    return bool(cols) and bool(np.isfinite(g[cols].to_numpy(np.float64)).any())


def joint_angles(df: pd.DataFrame, track_id: int) -> Figure:
    """One track's joint angles over time: knees, elbows, hips, shoulders (left and right) and trunk lean.

    Raw values are thin and faint, smoothed ones bold; left is green, right orange (as in the skeleton).

    Args:
        df: a :func:`~stip_rt.analysis.movement` table with keypoints.
        track_id: the track.

    Returns:
        The figure.

    Raises:
        KeyError: the table has no joint angles (a box-only tracks file).
    """
    if not any(c.endswith("_deg") for c in df.columns):
        raise KeyError("no joint-angle columns: the tracks file has no keypoints")
    g = _with_breaks(df[df["track_id"] == track_id])
    joints = list(dict.fromkeys(name.split("_", 1)[1] for name in JOINT_ANGLES))
    fig = Figure(figsize=(10, 10), layout="constrained")
    axes = fig.subplots(len(joints) + 1, 1, sharex=True)
    t = g["time"].to_numpy()
    for ax, joint in zip(axes, joints):
        for side, color in (("left", _LEFT), ("right", _RIGHT)):
            col = f"{side}_{joint}_deg"
            if col in g.columns:
                ax.plot(t, g[col], color=color, lw=0.8, alpha=0.45)
            if f"{col}_smooth" in g.columns:
                ax.plot(t, g[f"{col}_smooth"], color=color, lw=1.8)
        ax.set_ylabel(f"{joint} (°)")
        ax.set_ylim(0, 185)
        ax.set_yticks([0, 45, 90, 135, 180])
        ax.grid(alpha=0.3)
    ax = axes[-1]
    col = f"{TRUNK_LEAN}_deg"
    if col in g.columns:
        ax.plot(t, g[col], color="0.35", lw=0.8, alpha=0.45)
    if f"{col}_smooth" in g.columns:
        ax.plot(t, g[f"{col}_smooth"], color="0.1", lw=1.8)
    ax.axhline(0, color="0.5", lw=0.8, ls="--")
    ax.set_ylabel("trunk lean (°)")
    ax.grid(alpha=0.3)
    ax.set_xlabel("time (s)")
    handles = [
        Line2D([], [], color=_LEFT, lw=1.8, label="left"),
        Line2D([], [], color=_RIGHT, lw=1.8, label="right"),
        Line2D([], [], color="0.1", lw=1.8, label="trunk (+ = leaning to image right)"),
        Line2D([], [], color="0.4", lw=0.8, alpha=0.6, label="thin: raw, bold: smoothed"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=9, frameon=False)
    fig.suptitle(f"Joint angles of track {track_id} (image plane; 180° = straight limb)")
    return fig


def timeline(df: pd.DataFrame) -> Figure:
    """When each track is present: one bar per track over time (a Gantt chart); gaps are frames without it.

    Filled frames (``observed`` False) are drawn hatched.
    """
    ids = sorted(df["track_id"].unique().tolist())
    fps = float(df.attrs.get("fps") or 0) or 1.0
    fig = Figure(figsize=(10, min(2 + 0.28 * len(ids), 30)), layout="constrained")
    ax = fig.add_subplot()
    for row, tid in enumerate(ids):
        g = df[df["track_id"] == tid]
        frames = g["frame"].to_numpy()
        times = g["time"].to_numpy()
        styles: tuple[tuple[bool, dict[str, Any]], ...] = ((True, {}), (False, {"hatch": "////", "alpha": 0.45}))
        for observed, style in styles:
            sel = g["observed"].to_numpy() == observed
            f, t = frames[sel], times[sel]
            if f.size == 0:
                continue
            cuts = np.flatnonzero(np.diff(f) != 1) + 1
            spans = [(t[s], t[e - 1] - t[s] + 1 / fps) for s, e in zip(np.r_[0, cuts], np.r_[cuts, f.size])]
            ax.broken_barh(spans, (row - 0.4, 0.8), facecolors=track_color(tid), edgecolor="0.2", lw=0.3, **style)
    ax.set_yticks(range(len(ids)), [str(i) for i in ids], fontsize=8 if len(ids) > 30 else 9)
    ax.set_ylim(max(len(ids), 1) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("track id")
    ax.set_title(f"Track timeline ({len(ids)} tracks)")
    if not df["observed"].all():
        ax.legend(handles=[Line2D([], [], color="0.5", lw=6, label="observed"),
                           Line2D([], [], color="0.5", lw=6, alpha=0.45, label="gap filled by smoothing")],
                  loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)  # fmt: skip
    return fig
