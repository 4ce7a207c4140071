"""What a source's text names, told without opening it (no decoder is imported): a camera, a
stream URL, an image glob, folder or file, a video file; and the cheap checks that the named file,
folder or glob is there (:func:`check_source`)."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import SourceError
from .source_config import IMAGE_EXTENSIONS

#: A camera device path (Linux).
CAMERA_PATH = re.compile(r"^/dev/video\d+$")


def is_url(spec: str) -> bool:
    """True for ``scheme://...`` (network streams and anything else FFmpeg opens by URL)."""
    return "://" in spec and spec.split("://", 1)[0].isalpha()


def image_candidates(text: str) -> tuple[Iterator[Path], str]:
    """(the paths ``text`` names, lazily: a glob's matches, a folder's entries, the file itself;
    the message when none of them is an image)."""
    if any(c in text for c in "*?["):
        return (Path(p) for p in glob.iglob(text, recursive=True)), f"{text}: no image files match this pattern"
    if Path(text).is_dir():
        return Path(text).iterdir(), f"{text}: folder has no image files ({', '.join(IMAGE_EXTENSIONS)})"
    if not Path(text).exists():
        return iter(()), f"{text}: not found (expected an image, a folder of images or a glob)"
    return iter([Path(text)]), f"{text}: not an image file ({', '.join(IMAGE_EXTENSIONS)})"


def is_image(path: Path) -> bool:
    """An existing file with an image suffix."""
    return path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def check_source(spec: str | int | os.PathLike[str]) -> None:
    """The checks of :func:`~stip_rt.io.sources.open_source` that open nothing: a local video or
    image file exists, a folder holds an image, a glob matches one (a ``stat`` or a listing that
    stops at the first image). Cameras and stream URLs are not checked: only opening them tells.

    A run checks its source with this before it locates or downloads model weights, so a wrong
    path is reported at once (``stip-rt track`` reports it with any missing model file).

    Raises:
        SourceError: the message ``open_source`` would give, naming the input.
    """
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()):
        return
    text = os.fspath(spec)
    if CAMERA_PATH.match(text) or is_url(text):
        return
    path = Path(text)
    if (any(c in text for c in "*?[") and not path.exists()) or path.is_dir():
        paths, where = image_candidates(text)
        if not any(is_image(p) for p in paths):
            raise SourceError(where)
    elif not path.exists():
        raise SourceError(f"{text}: file not found")
