"""The weights cache: where files live, SHA-256 stamps next to them, and :func:`verify`.

Next to every cached file a ``<file>.sha256`` stamp records the full digest with the file's size and
mtime, so loading re-hashes only a file that changed since it was checked.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import WeightsError
from ..io.sink_files import create_temp
from ..paths import HOME_ENV, cache_root
from .manifest import ZooEntry, get_entry, list_models

log = logging.getLogger(__name__)

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


def _reason(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def not_writable(folder: Path, e: OSError) -> WeightsError:
    """The error for a cache folder that cannot be created or written."""
    return WeightsError(
        f"weights cache {folder}: not writable ({_reason(e)}); make it writable, or set ${HOME_ENV} to a folder that is"
    )


def cannot_write(path: Path, e: OSError) -> WeightsError:
    """The error for a file of the cache folder that cannot be written."""
    if isinstance(e, PermissionError):
        return not_writable(path.parent, e)
    return WeightsError(f"weights cache {path.parent}: cannot write {path.name} ({_reason(e)})")


def writable_weights_dir() -> Path:
    """:func:`weights_dir`, created when missing.

    Raises:
        WeightsError: it cannot be created.
    """
    folder = weights_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise not_writable(folder, e) from e
    return folder


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
    """Record ``digest`` with the file's current size and mtime in ``<file>.sha256`` (atomically: a
    unique temp file renamed into place, so concurrent writers never leave a torn stamp).

    Raises:
        OSError: the stamp cannot be written (a read-only cache).
    """
    st = path.stat()
    stamp = _stamp_path(path)
    fd, tmp = create_temp(stamp)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"{digest} {st.st_size} {st.st_mtime_ns}\n")
        os.replace(tmp, stamp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _save_stamp(path: Path, digest: str) -> None:
    """:func:`write_stamp`, or a warning when the cache is read-only (the file is then re-hashed on every load)."""
    try:
        write_stamp(path, digest)
    except OSError as e:
        log.warning(
            "cannot record the checksum of %s in %s (%s); the file is verified, but re-hashed on every load "
            "until its folder is writable",
            path,
            _stamp_path(path),
            e.strerror or e,
        )


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
        _save_stamp(path, digest)
    return VerifyResult(entry.name, path, "ok", digest)


def install(part: Path, dest: Path, digest: str) -> None:
    """Move a checked temp file into place and stamp it.

    Raises:
        WeightsError: it cannot be moved (the temp file is left for the caller).
    """
    try:
        os.replace(part, dest)
    except OSError as e:
        raise cannot_write(dest, e) from e
    _save_stamp(dest, digest)


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
