"""Sources, sinks (writers), readers and drawing.

The main entry points are importable from here (loaded on first use, so importing one
submodule such as ``stip_rt.io.coco`` does not pull in PyAV or OpenCV)::

    from stip_rt.io import open_source, open_sink, read_tracks, tracks_to_dataframe, draw_tracks
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "open_source": "sources",
    "SourceConfig": "source_config",
    "open_sink": "sinks",
    "read_tracks": "read",
    "tracks_to_dataframe": "read",
    "TrackFile": "read",
    "draw_people": "draw",
    "draw_tracks": "draw",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
