"""``open_sink``: pick the writer for an output path from its extension (or an explicit kind).

The kinds, their suffixes and their writers are the table in :mod:`stip_rt.io.formats`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import SinkError, did_you_mean
from .base import Sink
from .formats import OUTPUT_FORMATS, format_for_name
from .sink_files import check_writable


def sink_kind(path: str | os.PathLike[str]) -> str:
    """The sink kind for ``path``: by extension; an existing folder or a path ending in ``/`` is ``openpose``.

    Raises:
        SinkError: the extension is not one the sinks know.
    """
    text = os.fspath(path)
    p = Path(text)
    if text.endswith(("/", os.sep)) or p.is_dir():
        return "openpose"
    fmt = format_for_name(p.name)
    if fmt is not None:
        return fmt.kind
    known = " ".join(s for f in OUTPUT_FORMATS.values() for s in f.suffixes)
    raise SinkError(
        f"{text}: cannot tell the output format from the extension '{p.suffix.lower() or '(none)'}'; "
        f"use one of {known}, or a folder ending in '/' for OpenPose files"
    )


def open_sink(path_or_dir: str | os.PathLike[str], *, kind: str | None = None) -> Sink:
    """Create the writer for an output path (checked for writability now; files are created on ``open``).

    Args:
        path_or_dir: output file, or folder for ``openpose``.
        kind: a key of :data:`~stip_rt.io.formats.OUTPUT_FORMATS` to override the choice by extension
            (e.g. ``coco`` for a plain ``.json``, ``openpose`` for a new folder without a trailing ``/``).

    Returns:
        A :class:`~stip_rt.io.base.Sink`; the pipeline calls ``open(run)``, ``write(result)`` per
        frame and ``close()``.

    Raises:
        SinkError: unknown kind or extension, or the output folder is not writable.
    """
    kind = kind or sink_kind(path_or_dir)
    fmt = OUTPUT_FORMATS.get(kind)
    if fmt is None:
        raise SinkError(f"{os.fspath(path_or_dir)}: unknown output kind '{kind}'{did_you_mean(kind, OUTPUT_FORMATS)}")
    if kind == "mot":
        check_writable(Path(path_or_dir))  # MotSink itself finds out only at open()
    module, cls = fmt.sink.split(":")
    return getattr(importlib.import_module(f".{module}", __package__), cls)(path_or_dir)
