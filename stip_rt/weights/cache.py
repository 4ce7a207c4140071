"""The weights cache: where files live, SHA-256 stamps next to them, and :func:`verify`.

Next to every cached file a ``<file>.sha256`` stamp records the full digest with the file's size and
mtime, so loading re-hashes only a file that changed since it was checked.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..paths import cache_root
from .manifest import ZooEntry, get_entry, list_models

_CHUNK = 1 << 20


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found for one model.

    Attributes:
        name: zoo name.
        path: cache path of the file.
        status: ``ok``, ``missing`` or ``corrupt``.
        message: details (expected vs got for ``corrupt``; the digest for ``ok``).
    """

    name: str
    path: Path
    status: Literal["ok", "missing", "corrupt"]
    message: str = ""


def weights_dir() -> Path:
    """Folder of the cached weight files: ``weights/`` in stip-rt's cache root (``$STIP_RT_HOME/cache`` or
    the platformdirs user cache dir, see :func:`stip_rt.paths.cache_root`)."""
    return cache_root() / "weights"


def sha256_file(path: Path) -> str:
    """Full lowercase hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_stamp(path: Path, digest: str) -> None:
    """Record ``digest`` with the file's current size and mtime in ``<file>.sha256``."""
    st = path.stat()
    _stamp_path(path).write_text(f"{digest} {st.st_size} {st.st_mtime_ns}\n", encoding="ascii")


def _read_stamp(path: Path) -> tuple[str, int, int] | None:
    try:
        digest, size, mtime = _stamp_path(path).read_text(encoding="ascii").split()
        return digest, int(size), int(mtime)
    except (OSError, ValueError):
        return None


def check_cached(entry: ZooEntry, path: Path, full: bool) -> VerifyResult:
    """Check a cached file against the manifest and its stamp.

    Args:
        entry: the manifest entry.
        path: the cached file.
        full: always re-hash; False trusts a stamp whose size and mtime still match the file.
    """
    if not path.is_file():
        return VerifyResult(entry.name, path, "missing", "not in the cache")
    stamp = _read_stamp(path)
    st = path.stat()
    if not full and stamp is not None and (stamp[1], stamp[2]) == (st.st_size, st.st_mtime_ns):
        digest = stamp[0]
    else:
        digest = sha256_file(path)
        if stamp is not None and stamp[0] != digest:
            return VerifyResult(
                entry.name, path, "corrupt", f"sha256 {digest} differs from {stamp[0]} recorded when it was cached"
            )
    if not entry.matches(digest):
        return VerifyResult(entry.name, path, "corrupt", f"expected sha256 {entry.expected()}, got {digest}")
    if stamp is None or stamp[0] != digest or (stamp[1], stamp[2]) != (st.st_size, st.st_mtime_ns):
        write_stamp(path, digest)
    return VerifyResult(entry.name, path, "ok", digest)


def install(part: Path, dest: Path, digest: str) -> None:
    """Move a checked ``<file>.part`` into place and stamp it."""
    os.replace(part, dest)
    write_stamp(dest, digest)


def verify(name: str | None = None) -> list[VerifyResult]:
    """Re-hash cached weights and compare them with the manifest and the recorded digest.

    Args:
        name: one zoo name, or None for every model of the manifest.

    Returns:
        One result per model (``missing`` ones included when ``name`` is given).

    Raises:
        WeightsError: unknown name.
    """
    entries = [get_entry(name)] if name is not None else list_models()
    return [check_cached(e, weights_dir() / e.file, full=True) for e in entries]
