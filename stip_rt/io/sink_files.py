"""File helpers shared by the sinks: early writability checks, atomic writes, clear errors."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import TextIO

from ..errors import SinkError


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def check_writable(path: Path, *, is_dir: bool = False) -> None:
    """Fail early, before any work, when ``path`` (a file, or a folder with ``is_dir``) cannot be written.

    Walks up to the nearest existing folder (missing folders are created later by :func:`make_parent`).

    Raises:
        SinkError: names ``path`` and what is wrong.
    """
    if is_dir and path.exists() and not path.is_dir():
        raise SinkError(f"{path}: exists and is not a folder")
    if not is_dir and path.is_dir():
        raise SinkError(f"{path}: is a folder, expected a file name")
    probe = path if is_dir else path.parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise SinkError(f"{path}: cannot create it, {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SinkError(f"{path}: output folder {probe} is not writable")


def make_dir(path: Path) -> None:
    """Create folder ``path`` (and its parents).

    Raises:
        SinkError: it cannot be created.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SinkError(f"{path}: cannot create the output folder ({_reason(e)})") from e


def make_parent(path: Path) -> None:
    """Create the folder that will hold file ``path``."""
    make_dir(path.parent)


def open_text(path: Path) -> TextIO:
    """Open ``path`` for writing text (UTF-8, ``\\n`` line ends), creating its folder.

    Raises:
        SinkError: it cannot be created.
    """
    make_parent(path)
    try:
        return open(path, "w", encoding="utf-8", newline="")  # the sink owns and closes it
    except OSError as e:
        raise SinkError(f"{path}: cannot write ({_reason(e)})") from e


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, sync it, then rename it over ``path``.

    Readers see either the old file or the complete new one, never a partial write.

    Raises:
        SinkError: the file cannot be written.
    """
    make_parent(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise SinkError(f"{path}: cannot write ({_reason(e)})") from e
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_error(path: Path, e: OSError) -> SinkError:
    """A :class:`SinkError` for a failed write to ``path``."""
    return SinkError(f"{path}: cannot write ({_reason(e)})")
