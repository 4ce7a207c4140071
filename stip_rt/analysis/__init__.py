"""Movement analysis of tracks files: positions, speeds, joint angles (:func:`movement`), per-track summaries
(:func:`summarize`) and plots.

Example::

    from stip_rt.io import read_tracks
    from stip_rt.analysis import movement, plots, summarize

    tracks = read_tracks("tracks.jsonl")
    df = movement(tracks, scale=0.02)          # metres per pixel; or homography="ground.yaml"
    per_track = summarize(df)                  # one row per track: duration, distance, speeds, angle ranges
    plots.speed(df).savefig("speed.png")

Needs pandas and matplotlib (``pip install 'stip-rt[analysis]'``); importing this package does not.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "movement": "kinematics",
    "GroundMap": "ground",
    "scale_map": "ground",
    "fit_homography": "ground",
    "load_homography": "ground",
    "joint_angles": "angles",
    "ANGLE_NAMES": "angles",
    "write_analysis": "report",
    "summarize": "summary",
}

__all__ = sorted([*_EXPORTS, "plots"])


def __getattr__(name: str) -> Any:
    if name == "plots":
        return importlib.import_module(f"{__name__}.plots")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
