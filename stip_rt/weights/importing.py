"""``import_file``: a hand-downloaded weights file, checked (checksum, strict load) and copied into the cache."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import WeightsError
from ..io.sink_files import create_temp
from .cache import install, not_writable, sha256_file, writable_weights_dir
from .manifest import ZooEntry, get_entry

log = logging.getLogger(__name__)


def _default_check(entry: ZooEntry, path: Path) -> None:
    """Prove that ``path`` loads strictly into the architecture of ``entry``."""
    if entry.kind == "detector":
        from ..nn.rtmdet import build_rtmdet

        build_rtmdet(entry.arch, weights=path)
    else:
        from ..models import build_model

        build_model(entry.arch, weights=path)


def import_file(path: str | Path, name: str, *, check: Callable[[ZooEntry, Path], Any] | None = None) -> Path:
    """Copy a hand-downloaded weights file into the cache after checking it.

    The file must match the manifest's SHA-256 when one is published, and must load strictly
    into the model's architecture (``check``) in every case.

    Args:
        path: the downloaded file.
        name: zoo name it is imported as.
        check: ``check(entry, path)`` raising :class:`WeightsError` when the file does not fit;
            default builds the architecture and loads the file with ``strict=True``.

    Returns:
        The cache path.

    Raises:
        WeightsError: unknown name, missing file, checksum mismatch, a file that does not load, or a
            cache folder that is not writable.
    """
    entry = get_entry(name)
    src = Path(path).expanduser()
    if not src.is_file():
        raise WeightsError(f"weights import {src}: file not found")
    dest = writable_weights_dir() / entry.file
    try:  # before the (slow) checks, so a read-only cache fails at once; a temp file of this process only,
        fd, tmp = create_temp(dest)  # so concurrent imports of one model do not collide
    except OSError as e:
        raise not_writable(dest.parent, e) from e
    try:
        with os.fdopen(fd, "wb") as out:
            digest = sha256_file(src)
            if not entry.matches(digest):
                raise WeightsError(
                    f"weights import {src}: this is not '{name}': expected sha256 {entry.expected()}, got {digest}"
                )
            (check or _default_check)(entry, src)
            try:
                with open(src, "rb") as f:
                    shutil.copyfileobj(f, out)
            except OSError as e:
                why = e.strerror or e
                raise WeightsError(f"weights import {src}: cannot copy it into {dest.parent} ({why})") from e
        if sha256_file(tmp) != digest:
            raise WeightsError(f"weights import {src}: the copy in {dest.parent} differs from the source (disk full?)")
        install(tmp, dest, digest)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("imported %s as '%s' into %s", src, name, dest)
    return dest
