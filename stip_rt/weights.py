"""The weights manager: the model zoo manifest, the download cache and checksums.

Every model stip-rt can use is listed in ``models/zoo.yaml`` (one :class:`ZooEntry` each).
Weights are downloaded into ``<cache>/weights/`` where ``<cache>`` is ``$STIP_RT_HOME/cache`` or the
platformdirs user cache dir for ``stip-rt``; the base URL can be replaced by a mirror with
``$STIP_RT_WEIGHTS_URL`` (the file name is appended).

A download goes to ``<file>.part`` in the cache folder (resumed with an HTTP ``Range`` request
when a partial file is there), is checked against the manifest's SHA-256 and only then renamed
into place. The manifest holds a full SHA-256 where one is known, else the 8-hex prefix the
publisher put in the file name (OpenMMLab's ``<name>-<sha256[:8]>.pth``), which is then checked
as a prefix. Next to every cached file a ``<file>.sha256`` stamp records the full digest with the
file's size and mtime, so loading re-hashes only a file that changed since it was checked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import logging
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .config import from_dict, read_yaml
from .errors import ConfigError, WeightsError, did_you_mean
from .paths import HOME_ENV as HOME_ENV  # re-exported: the variable that moves the cache
from .paths import cache_root, models_dir

log = logging.getLogger(__name__)

MIRROR_ENV = "STIP_RT_WEIGHTS_URL"
DEFAULT_TIMEOUT_S = 20.0
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo manifest (``models/zoo.yaml``).

    Attributes:
        name: zoo name (the manifest key), e.g. ``rtmdet-tiny``.
        kind: ``detector`` or ``pose``.
        arch: architecture built for an import check: ``rtmdet-<size>`` or a pose config name
            (``models/<arch>.yaml``).
        file: file name in the cache.
        url: download URL (manual entries: the page to get the file from by hand).
        sha256: full lowercase hex SHA-256 (64 digits) or a published prefix (8+ digits); None when
            unknown (manual entries: the import check proves the file loads instead).
        size_mb: approximate size in MB (progress bar and listing only).
        license: licence of the weights.
        source: the page that publishes them.
        manual: not directly downloadable; use ``stip-rt weights import FILE --name NAME``.
        note: one line for listings and error messages.
    """

    name: str = ""
    kind: Literal["detector", "pose"] = "pose"
    arch: str = ""
    file: str = ""
    url: str = ""
    sha256: str | None = None
    size_mb: float | None = None
    license: str = "unknown"
    source: str = ""
    manual: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if not self.file or "/" in self.file or "\\" in self.file:
            raise ValueError(f"'file' must be a plain file name, got {self.file!r}")
        if self.sha256 is not None:
            h = self.sha256.lower()
            if len(h) < 8 or len(h) > 64 or any(c not in "0123456789abcdef" for c in h):
                raise ValueError(f"'sha256' must be 8 to 64 hex digits, got {self.sha256!r}")
            object.__setattr__(self, "sha256", h)
        if not self.manual and not self.url:
            raise ValueError("'url' is required unless 'manual' is true")

    @property
    def sha256_is_prefix(self) -> bool:
        """True when only a prefix of the SHA-256 is known."""
        return self.sha256 is not None and len(self.sha256) < 64

    def download_url(self) -> str:
        """The URL to fetch: the manifest URL, or ``$STIP_RT_WEIGHTS_URL/<file>`` when set."""
        mirror = os.environ.get(MIRROR_ENV, "").strip()
        return f"{mirror.rstrip('/')}/{self.file}" if mirror else self.url


@dataclass(frozen=True)
class VerifyResult:
    """What :func:`verify` found for one model.

    Attributes:
        name: zoo name.
        path: cache path of the file.
        status: ``ok``, ``missing`` or ``corrupt``.
        message: details (expected vs got for ``corrupt``).
    """

    name: str
    path: Path
    status: Literal["ok", "missing", "corrupt"]
    message: str = ""


# ----------------------------------------------------------------------------------------------
# manifest and cache paths


def zoo_file() -> Path:
    """Path of the zoo manifest."""
    return models_dir() / "zoo.yaml"


def load_zoo(path: str | Path | None = None) -> dict[str, ZooEntry]:
    """Read the zoo manifest.

    Args:
        path: manifest file; default :func:`zoo_file`.

    Returns:
        zoo name → entry, in manifest order.

    Raises:
        ConfigError: unreadable manifest, unknown field or bad value (names the entry).
    """
    p = Path(path) if path is not None else zoo_file()
    data = read_yaml(p)
    models = data.get("models")
    if not isinstance(models, dict):
        raise ConfigError(f"zoo {p}: expected a 'models' mapping")
    out: dict[str, ZooEntry] = {}
    for name, fields in models.items():
        if not isinstance(fields, dict):
            raise ConfigError(f"zoo {p}: '{name}' must be a mapping")
        out[str(name)] = from_dict(ZooEntry, {**fields, "name": str(name)}, f"zoo {p}: '{name}'")
    return out


def list_models() -> list[ZooEntry]:
    """Every model of the zoo manifest, in manifest order."""
    return list(load_zoo().values())


def get_entry(name: str) -> ZooEntry:
    """The manifest entry of ``name``.

    Raises:
        WeightsError: unknown name (with the closest known name).
    """
    zoo = load_zoo()
    if name not in zoo:
        raise WeightsError(f"unknown model '{name}'{did_you_mean(name, zoo)}; `stip-rt weights list` shows them all")
    return zoo[name]


def weights_dir() -> Path:
    """Folder of the cached weight files: ``weights/`` in stip-rt's cache root (``$STIP_RT_HOME/cache`` or
    the platformdirs user cache dir, see :func:`stip_rt.paths.cache_root`)."""
    return cache_root() / "weights"


def cached_path(name: str) -> Path:
    """Where the weights of ``name`` live in the cache (whether or not they are there)."""
    return weights_dir() / get_entry(name).file


def import_command(name: str) -> str:
    """The command that imports a hand-downloaded file for ``name``."""
    return f"stip-rt weights import FILE --name {name}"


# ----------------------------------------------------------------------------------------------
# hashing and stamps


def sha256_file(path: Path) -> str:
    """Full lowercase hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_stamp(path: Path, digest: str) -> None:
    st = path.stat()
    _stamp_path(path).write_text(f"{digest} {st.st_size} {st.st_mtime_ns}\n", encoding="ascii")


def _read_stamp(path: Path) -> tuple[str, int, int] | None:
    try:
        digest, size, mtime = _stamp_path(path).read_text(encoding="ascii").split()
        return digest, int(size), int(mtime)
    except (OSError, ValueError):
        return None


def _matches(entry: ZooEntry, digest: str) -> bool:
    return entry.sha256 is None or digest.startswith(entry.sha256)


def _expected(entry: ZooEntry) -> str:
    if entry.sha256 is None:
        return "(no published checksum)"
    return f"{entry.sha256}… (published prefix)" if entry.sha256_is_prefix else entry.sha256


def _check_cached(entry: ZooEntry, path: Path, full: bool) -> VerifyResult:
    """Check a cached file against the manifest and its stamp (``full``: always re-hash)."""
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
    if not _matches(entry, digest):
        return VerifyResult(entry.name, path, "corrupt", f"expected sha256 {_expected(entry)}, got {digest}")
    if stamp is None or stamp[0] != digest or (stamp[1], stamp[2]) != (st.st_size, st.st_mtime_ns):
        _write_stamp(path, digest)
    return VerifyResult(entry.name, path, "ok", digest)


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
    return [_check_cached(e, weights_dir() / e.file, full=True) for e in entries]


# ----------------------------------------------------------------------------------------------
# download


def _offline_message(entry: ZooEntry, url: str, why: str) -> str:
    return (
        f"cannot download model '{entry.name}' from {url} ({why}). Download it by hand and run "
        f"`{import_command(entry.name)}`"
    )


def _download_once(url: str, part: Path, timeout: float, progress: bool, total_hint: float | None) -> None:
    """One HTTP request appending to ``part`` from its current size (Range resume)."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "stip-rt"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the partial file is stale or already whole: start over
            part.unlink()
            return _download_once(url, part, timeout, progress, total_hint)
        raise
    with resp:
        resumed = have and resp.status == 206
        if not resumed:
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if total is None and total_hint:
            total = int(total_hint * 1e6)
        from tqdm import tqdm

        with (
            open(part, "ab" if resumed else "wb") as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while chunk := resp.read(_CHUNK):
                f.write(chunk)
                bar.update(len(chunk))
        if length and length.isdigit() and part.stat().st_size != have + int(length):
            raise http.client.IncompleteRead(b"", have + int(length) - part.stat().st_size)


def fetch(
    name: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = 2,
    progress: bool | None = None,
    force: bool = False,
) -> Path:
    """Download the weights of ``name`` into the cache (no-op when a good copy is there).

    Args:
        name: zoo name.
        timeout: seconds to wait for the connection and for each read; a stalled server fails
            within this time.
        retries: further attempts after a connection cut midway (each resumes the partial file).
        progress: show a tqdm bar on stderr; None: only when stderr is a terminal.
        force: download again even when a good copy is cached.

    Returns:
        Path of the verified file in the cache.

    Raises:
        WeightsError: unknown or manual model; network failure, HTTP error or timeout (one message
            naming the model, the URL and the import command); checksum mismatch (expected vs got;
            the partial file is deleted).
    """
    return _fetch(get_entry(name), timeout=timeout, retries=retries, progress=progress, force=force)


def _fetch(
    entry: ZooEntry,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = 2,
    progress: bool | None = None,
    force: bool = False,
) -> Path:
    name = entry.name
    dest = weights_dir() / entry.file
    if not force and _check_cached(entry, dest, full=False).status == "ok":
        return dest
    if entry.manual:
        raise WeightsError(
            f"model '{name}' cannot be downloaded automatically: {entry.note or entry.url}. "
            f"Get the file from {entry.url} and run `{import_command(name)}`"
        )
    url = entry.download_url()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    show = sys.stderr.isatty() if progress is None else progress
    log.info("downloading %s from %s", name, url)
    attempt = 0
    while True:
        try:
            _download_once(url, part, timeout, show, entry.size_mb)
            break
        except urllib.error.HTTPError as e:
            raise WeightsError(_offline_message(entry, url, f"HTTP {e.code} {e.reason}")) from None
        except (http.client.IncompleteRead, ConnectionError) as e:
            attempt += 1
            if attempt > retries:
                raise WeightsError(
                    _offline_message(
                        entry,
                        url,
                        f"connection lost after {attempt} attempts: "
                        f"{type(e).__name__}; the partial file is kept and resumed "
                        "on the next try",
                    )
                ) from None
            log.warning("download of %s interrupted (%s); resuming", name, type(e).__name__)
        except TimeoutError:
            raise WeightsError(_offline_message(entry, url, f"no answer within {timeout:g} s")) from None
        except urllib.error.URLError as e:
            why = e.reason if isinstance(e.reason, str) else getattr(e.reason, "strerror", None) or str(e.reason)
            if isinstance(e.reason, TimeoutError):
                why = f"no answer within {timeout:g} s"
            raise WeightsError(_offline_message(entry, url, f"network unreachable: {why}")) from None
        except OSError as e:
            raise WeightsError(_offline_message(entry, url, f"{type(e).__name__}: {e}")) from None
    digest = sha256_file(part)
    if not _matches(entry, digest):
        part.unlink(missing_ok=True)
        raise WeightsError(
            f"checksum mismatch for model '{name}' downloaded from {url}: expected sha256 "
            f"{_expected(entry)}, got {digest}; the download was deleted"
        )
    os.replace(part, dest)
    _write_stamp(dest, digest)
    log.info("saved %s to %s", name, dest)
    return dest


def weights_path(name: str, fetch: bool = True) -> Path:
    """Path of a verified cached weights file, downloading it on first use.

    Args:
        name: zoo name.
        fetch: download when missing; False: raise instead.

    Raises:
        WeightsError: unknown name; not cached (with ``fetch=False``, or a manual model); corrupt
            cached file (expected vs got, and how to repair it); any download failure.
    """
    entry = get_entry(name)
    path = weights_dir() / entry.file
    res = _check_cached(entry, path, full=False)
    if res.status == "corrupt":
        raise WeightsError(
            f"cached weights of '{name}' at {path} are corrupt ({res.message}); "
            f"run `stip-rt weights fetch {name} --force` to download them again"
        )
    if res.status == "ok":
        return path
    if not fetch:
        raise WeightsError(
            f"weights of '{name}' are not in the cache ({path}); run `stip-rt weights fetch {name}`"
            + ("" if not entry.manual else f" or `{import_command(name)}`")
        )
    return _fetch(entry)


# ----------------------------------------------------------------------------------------------
# import


def _default_check(entry: ZooEntry, path: Path) -> None:
    """Prove that ``path`` loads strictly into the architecture of ``entry``."""
    if entry.kind == "detector":
        from .nn.rtmdet import build_rtmdet

        build_rtmdet(entry.arch, weights=path)
    else:
        from .models import build_model

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
        WeightsError: unknown name, missing file, checksum mismatch, or a file that does not load.
    """
    entry = get_entry(name)
    src = Path(path).expanduser()
    if not src.is_file():
        raise WeightsError(f"weights import {src}: file not found")
    digest = sha256_file(src)
    if not _matches(entry, digest):
        raise WeightsError(
            f"weights import {src}: this is not '{name}': expected sha256 {_expected(entry)}, got {digest}"
        )
    (check or _default_check)(entry, src)
    dest = weights_dir() / entry.file
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, part)
    if sha256_file(part) != digest:
        part.unlink(missing_ok=True)
        raise WeightsError(f"weights import {src}: the copy in {dest.parent} differs from the source (disk full?)")
    os.replace(part, dest)
    _write_stamp(dest, digest)
    log.info("imported %s as '%s' into %s", src, name, dest)
    return dest


def entry_as_dict(entry: ZooEntry) -> dict[str, Any]:
    """A manifest entry as a plain dict (for ``weights list --json``)."""
    return dataclasses.asdict(entry)


#: ``weights`` value that builds a network with random weights (demos, tests).
RANDOM = "random"


def checkpoint_arg(value: str | Path | None) -> tuple[bool, str | None]:
    """The one reading of a ``--weights`` / ``pose.weights`` / ``detect.weights`` value.

    Args:
        value: a checkpoint path, ``random``, or None (the weights cache).

    Returns:
        (random weights?, checkpoint path or None).

    Raises:
        WeightsError: a path that is not a file.
    """
    if value is None:
        return False, None
    if str(value) == RANDOM:
        return True, None
    if not Path(value).is_file():
        raise WeightsError(f"weights {value}: file not found (give a checkpoint path, or '{RANDOM}')")
    return False, str(value)
