"""``open_sink``: pick the writer for an output path from its extension (or an explicit kind)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SinkError, did_you_mean
from .base import Sink
from .sink_files import check_writable
from .video_sink import VIDEO_EXTENSIONS

# kind → what it writes (for messages and docs)
SINK_KINDS: dict[str, str] = {
    "json": "stip-rt.tracks JSON document (.json)",
    "jsonl": "stip-rt.tracks JSON Lines (.jsonl)",
    "csv": "one row per person per frame (.csv)",
    "coco": "COCO keypoint results (.coco.json)",
    "openpose": "OpenPose per-frame JSON files (a folder)",
    "mot": "MOT challenge text (.txt)",
    "video": "annotated video (.mp4 .mkv .mov .avi)",
}


def sink_kind(path: str | os.PathLike[str]) -> str:
    """The sink kind for ``path``: by extension; an existing folder or a path ending in ``/`` is ``openpose``.

    Raises:
        SinkError: the extension is not one the sinks know.
    """
    text = os.fspath(path)
    p = Path(text)
    name = p.name.lower()
    if text.endswith(("/", os.sep)) or p.is_dir():
        return "openpose"
    if name.endswith(".coco.json"):
        return "coco"
    suffix = p.suffix.lower()
    by_suffix = {".json": "json", ".jsonl": "jsonl", ".csv": "csv", ".txt": "mot"}
    by_suffix.update(dict.fromkeys(VIDEO_EXTENSIONS, "video"))
    if suffix in by_suffix:
        return by_suffix[suffix]
    known = ".json .jsonl .csv .coco.json .txt " + " ".join(VIDEO_EXTENSIONS)
    raise SinkError(
        f"{text}: cannot tell the output format from the extension '{suffix or '(none)'}'; "
        f"use one of {known}, or a folder ending in '/' for OpenPose files"
    )


def open_sink(path_or_dir: str | os.PathLike[str], *, kind: str | None = None) -> Sink:
    """Create the writer for an output path (checked for writability now; files are created on ``open``).

    Args:
        path_or_dir: output file, or folder for ``openpose``.
        kind: one of :data:`SINK_KINDS` to override the choice by extension (e.g. ``coco`` for a
            plain ``.json``, ``openpose`` for a new folder without a trailing ``/``).

    Returns:
        A :class:`~stip_rt.io.base.Sink`; the pipeline calls ``open(run)``, ``write(result)`` per
        frame and ``close()``.

    Raises:
        SinkError: unknown kind or extension, or the output folder is not writable.
    """
    kind = kind or sink_kind(path_or_dir)
    if kind == "json":
        from .json_sink import JsonSink

        return JsonSink(path_or_dir)
    if kind == "jsonl":
        from .json_sink import JsonlSink

        return JsonlSink(path_or_dir)
    if kind == "csv":
        from .csv_sink import CsvSink

        return CsvSink(path_or_dir)
    if kind == "coco":
        from .coco_sink import CocoSink

        return CocoSink(path_or_dir)
    if kind == "openpose":
        from .openpose_sink import OpenPoseSink

        return OpenPoseSink(path_or_dir)
    if kind == "mot":
        from .mot import MotSink

        check_writable(Path(path_or_dir))  # MotSink itself finds out only at open()
        return MotSink(path_or_dir)
    if kind == "video":
        from .video_sink import VideoSink

        return VideoSink(path_or_dir)
    raise SinkError(f"{os.fspath(path_or_dir)}: unknown output kind '{kind}'{did_you_mean(kind, SINK_KINDS)}")
