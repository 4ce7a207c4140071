"""HTTP download into the cache with ``Range`` resume, checksum check, and progress through a callback.

A download goes to ``<file>.part`` in the cache folder (resumed with an HTTP ``Range`` request when a
partial file is there), is checked against the manifest's SHA-256 and only then renamed into place.
One process at a time downloads a file: the others wait on ``<file>.lock`` (``flock``) and then
find it cached. The library draws nothing: it reports ``progress(done_bytes, total_bytes_or_None)``
to a callback, either the one passed to :func:`fetch` / :func:`weights_path` or, for downloads
started deeper in the library (building a pipeline), the factory installed with
:func:`progress_reporter` — the CLI installs one that draws a bar on a terminal.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import math
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from ..errors import WeightsError
from .cache import cannot_write, check_cached, install, not_writable, sha256_file, weights_dir, writable_weights_dir
from .manifest import ZooEntry, get_entry, import_command

try:
    import fcntl
except ImportError:  # Windows: concurrent downloads are not coordinated
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 20.0
_CHUNK = 1 << 20

Progress = Callable[[int, int | None], None]
"""``progress(done, total)``: bytes in the ``.part`` file so far, and the expected size (None: unknown).
Called once when a request starts (``done`` > 0 when resuming) and after every chunk."""

ProgressFactory = Callable[[str], AbstractContextManager[Progress]]
"""``factory(name)``: a context manager around one model's download that yields its :data:`Progress`."""

_default_factory: ProgressFactory | None = None


@contextlib.contextmanager
def progress_reporter(factory: ProgressFactory | None) -> Iterator[None]:
    """Report every download started inside the block without its own ``progress`` through ``factory``.

    Example:
        >>> with progress_reporter(bars):  # bars(name) -> context manager yielding progress(done, total)
        ...     build_pipeline(config)  # any zoo download it triggers reports to a bar
    """
    global _default_factory
    previous, _default_factory = _default_factory, factory
    try:
        yield
    finally:
        _default_factory = previous


def _offline_message(entry: ZooEntry, url: str, why: str) -> str:
    return (
        f"cannot download model '{entry.name}' from {url} ({why}). Download it by hand and run "
        f"`{import_command(entry.name)}`"
    )


def _download_once(url: str, part: Path, timeout: float, report: Progress | None, total_hint: float | None) -> None:
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
            return _download_once(url, part, timeout, report, total_hint)
        raise
    with resp:
        resumed = have and resp.status == 206
        if not resumed:
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        if total is None and total_hint:
            total = int(total_hint * 1e6)
        done = have
        if report is not None:
            report(done, total)
        with _open_part(part, append=bool(resumed)) as f:
            while chunk := resp.read(_CHUNK):  # network errors go up to the caller
                _write(f, chunk, part)
                done += len(chunk)
                if report is not None:
                    report(done, total)
        if length and length.isdigit() and part.stat().st_size != have + int(length):
            raise http.client.IncompleteRead(b"", have + int(length) - part.stat().st_size)


def _open_part(part: Path, append: bool) -> BinaryIO:
    """Open the partial file; a local failure is a WeightsError (not a download failure)."""
    try:
        return open(part, "ab" if append else "wb")
    except OSError as e:
        raise cannot_write(part, e) from e


def _write(f: BinaryIO, chunk: bytes, part: Path) -> None:
    """Append a chunk to the partial file; a local failure (disk full) is a WeightsError."""
    try:
        f.write(chunk)
    except OSError as e:
        raise cannot_write(part, e) from e


@contextlib.contextmanager
def _download_lock(dest: Path) -> Iterator[None]:
    """Hold ``<file>.lock`` beside ``dest`` so that one process at a time downloads it; the others wait.

    The lock file stays (removing it would race with a process about to lock it); the kernel drops
    the lock when its process ends. Where ``fcntl`` is missing (Windows) nothing is locked.

    Raises:
        WeightsError: the lock file cannot be created (the cache is not writable).
    """
    lock = dest.with_name(dest.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise not_writable(dest.parent, e) from e
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.warning("another stip-rt process is downloading %s; waiting for it", dest)
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _reporter(name: str, progress: Progress | None) -> AbstractContextManager[Progress | None]:
    if progress is not None:
        return contextlib.nullcontext(progress)
    if _default_factory is not None:
        return _default_factory(name)
    return contextlib.nullcontext(None)


def fetch(
    name: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = 2,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    """Download the weights of ``name`` into the cache (no-op when a good copy is there).

    Args:
        name: zoo name.
        timeout: seconds to wait for the connection and for each read; a stalled server fails
            within this time.
        retries: further attempts after a connection cut midway (each resumes the partial file).
        progress: ``progress(done_bytes, total_bytes | None)`` during the download; None: the factory
            installed with :func:`progress_reporter`, if any.
        force: download again even when a good copy is cached.

    Returns:
        Path of the verified file in the cache.

    Raises:
        WeightsError: unknown or manual model; a timeout that is not a positive number; a malformed
            mirror URL; a cache folder that is not writable; network failure, HTTP error or timeout
            (one message naming the model, the URL and the import command); checksum mismatch
            (expected vs got; the partial file is deleted).
    """
    if not (math.isfinite(timeout) and timeout > 0):
        raise WeightsError(f"download timeout {timeout:g}: expected a positive, finite number of seconds")
    return _fetch(get_entry(name), timeout=timeout, retries=retries, progress=progress, force=force)


def _fetch(
    entry: ZooEntry,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    retries: int = 2,
    progress: Progress | None = None,
    force: bool = False,
) -> Path:
    name = entry.name
    dest = weights_dir() / entry.file
    if not force and check_cached(entry, dest, full=False).status == "ok":
        return dest
    if entry.manual:
        raise WeightsError(
            f"model '{name}' cannot be downloaded automatically: {entry.note or entry.url}. "
            f"Get the file from {entry.url} and run `{import_command(name)}`"
        )
    url = entry.download_url()
    writable_weights_dir()
    with _download_lock(dest):
        if not force and check_cached(entry, dest, full=False).status == "ok":
            return dest  # another process downloaded it while this one waited
        part = dest.with_name(dest.name + ".part")
        log.info("downloading %s from %s", name, url)
        with _reporter(name, progress) as report:
            _download_with_retries(entry, url, part, timeout, retries, report)
        digest = sha256_file(part)
        if not entry.matches(digest):
            part.unlink(missing_ok=True)
            raise WeightsError(
                f"checksum mismatch for model '{name}' downloaded from {url}: expected sha256 "
                f"{entry.expected()}, got {digest}; the download was deleted"
            )
        install(part, dest, digest)
    log.info("saved %s to %s", name, dest)
    return dest


def _download_with_retries(
    entry: ZooEntry, url: str, part: Path, timeout: float, retries: int, report: Progress | None
) -> None:
    """Download ``url`` into ``part``, resuming after a cut connection; every failure is a WeightsError."""
    attempt = 0
    while True:
        try:
            _download_once(url, part, timeout, report, entry.size_mb)
            return
        except urllib.error.HTTPError as e:
            raise WeightsError(_offline_message(entry, url, f"HTTP {e.code} {e.reason}")) from None
        except (http.client.IncompleteRead, ConnectionError) as e:
            attempt += 1
            if attempt > retries:
                why = (
                    f"connection lost after {attempt} attempts: {type(e).__name__}; "
                    "the partial file is kept and resumed on the next try"
                )
                raise WeightsError(_offline_message(entry, url, why)) from None
            log.warning("download of %s interrupted (%s); resuming", entry.name, type(e).__name__)
        except TimeoutError:
            raise WeightsError(_offline_message(entry, url, f"no answer within {timeout:g} s")) from None
        except urllib.error.URLError as e:
            why = e.reason if isinstance(e.reason, str) else getattr(e.reason, "strerror", None) or str(e.reason)
            if isinstance(e.reason, TimeoutError):
                why = f"no answer within {timeout:g} s"
            elif not url.startswith("file:"):
                why = f"network unreachable: {why}"
            raise WeightsError(_offline_message(entry, url, why)) from None
        except OSError as e:
            raise WeightsError(_offline_message(entry, url, f"{type(e).__name__}: {e}")) from None


def weights_path(name: str, fetch: bool = True, *, progress: Progress | None = None) -> Path:
    """Path of a verified cached weights file, downloading it on first use.

    Args:
        name: zoo name.
        fetch: download when missing; False: raise instead.
        progress: passed to the download (see :func:`fetch`).

    Raises:
        WeightsError: unknown name; not cached (with ``fetch=False``, or a manual model); corrupt
            cached file (expected vs got, and how to repair it); any download failure.
    """
    entry = get_entry(name)
    path = weights_dir() / entry.file
    res = check_cached(entry, path, full=False)
    if res.status == "corrupt":
        repair = (
            f"get the file again from {entry.url} and run `{import_command(name)}`"
            if entry.manual
            else f"run `stip-rt weights fetch {name} --force` to download them again"
        )
        raise WeightsError(f"cached weights of '{name}' at {path} are corrupt ({res.message}); {repair}")
    if res.status == "ok":
        return path
    if not fetch:
        get = f"`{import_command(name)}` (from {entry.url})" if entry.manual else f"`stip-rt weights fetch {name}`"
        raise WeightsError(f"weights of '{name}' are not in the cache ({path}); run {get}")
    return _fetch(entry, progress=progress)
