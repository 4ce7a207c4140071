"""Write a whole analysis to a folder: the movement CSV and the plots (what ``stip-rt analyze`` does)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SinkError
from ..io.read import TrackFile, read_tracks
from .kinematics import movement, require_pandas
from .summary import SUMMARY_NAME, summarize

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

CSV_NAME = "movement.csv"


def _float_text(value: object) -> str:
    """8 significant digits, always with a decimal point or an exponent (``190.0``, not ``190``), so
    that a float column whose values happen to be whole (a still person's speed, a keypoint on an
    integer pixel) is read back as float, not int."""
    text = f"{value:.8g}"
    return text if "." in text or "e" in text or "n" in text else f"{text}.0"


def write_analysis(
    tracks: TrackFile | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    plots: bool = True,
    max_angle_tracks: int = 50,
    **options: Any,
) -> dict[str, Path]:
    """Compute :func:`~stip_rt.analysis.movement` and write it with its plots into ``out_dir``.

    Files: ``movement.csv``; ``summary.csv`` (one row per track, :func:`~stip_rt.analysis.summary.summarize`);
    ``trajectories.png`` (over the source's first frame when readable),
    ``ground.png`` (with a scale or homography), ``speed.png``, ``timeline.png`` and
    ``angles/track_<id>.png`` (with keypoints; the ``max_angle_tracks`` longest tracks).

    Args:
        tracks: a :func:`~stip_rt.io.read.read_tracks` result or a path.
        out_dir: folder (created if missing).
        plots: False writes the CSVs only.
        max_angle_tracks: joint-angle figures for at most this many tracks.
        **options: keyword options of :func:`~stip_rt.analysis.movement` (``scale``, ``homography`` ...).

    Returns:
        name → path of every file written (``csv``, ``summary``, ``trajectories``, ``ground``, ``speed``,
        ``timeline``, ``angles/<id>``).

    Raises:
        SinkError: the folder cannot be written.
        StipError: as :func:`~stip_rt.analysis.movement`.
    """
    require_pandas()
    tf = tracks if isinstance(tracks, TrackFile) else read_tracks(tracks)
    df = movement(tf, **options)
    out = Path(out_dir)
    written: dict[str, Path] = {}
    try:
        out.mkdir(parents=True, exist_ok=True)
        written["csv"] = out / CSV_NAME
        df.to_csv(written["csv"], index=False, float_format=_float_text)
        written["summary"] = out / SUMMARY_NAME
        summarize(df).to_csv(written["summary"], index=False, float_format=_float_text)
        if plots:
            from . import plots as p

            figures: dict[str, Callable[[], Figure]] = {
                "trajectories": lambda: p.trajectories(df, tf.source, p.still_frame(tf.source, tf.path.parent)),
                "speed": lambda: p.speed(df),
                "timeline": lambda: p.timeline(df),
            }
            if "x_m" in df.columns:
                figures["ground"] = lambda: p.ground_trajectories(df)
            if df.attrs.get("keypoints"):
                longest = df[df["observed"]].groupby("track_id").size().sort_values(ascending=False, kind="stable")
                for tid in sorted(longest.index[:max_angle_tracks].tolist()):
                    if p.has_angles(df, tid):
                        figures[f"angles/{tid}"] = functools.partial(p.joint_angles, df, tid)
            for name, make in figures.items():
                path = out / ("angles/track_{}.png".format(name.split("/")[1]) if "/" in name else f"{name}.png")
                path.parent.mkdir(parents=True, exist_ok=True)
                make().savefig(path, dpi=110)
                written[name] = path
    except OSError as e:
        raise SinkError(f"{out}: cannot write the analysis ({e.strerror or e})") from None
    log.info("analysis of %s: %d rows, %d files in %s", tf.path, len(df), len(written), out)
    return written
