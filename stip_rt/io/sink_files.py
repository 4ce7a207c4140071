"""File helpers shared by the sinks: early writability checks, atomic writes, output locks, clear errors."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TextIO

from ..errors import SinkError

try:
    import fcntl
except ImportError:  # Windows: outputs are not locked
    fcntl = None  # type: ignore[assignment]


class OutputBusyError(SinkError):
    """Another live process holds the :class:`OutputLock` of an output.

    Attributes:
        owner: that process's pid as written in the lock file ('' when unknown).
    """

    def __init__(self, message: str, owner: str = "") -> None:
        super().__init__(message)
        self.owner = owner


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


def open_unbuffered(path: Path) -> BinaryIO:
    """Create (truncate) ``path`` for unbuffered binary writing, creating its folder.

    Raises:
        SinkError: it cannot be created.
    """
    make_parent(path)
    try:
        return open(path, "wb", buffering=0)  # FileIO: the sink owns and closes it
    except OSError as e:
        raise SinkError(f"{path}: cannot write ({_reason(e)})") from e


def create_temp(path: Path) -> tuple[int, Path]:
    """Create a new hidden temporary file beside ``path``, with the mode any new file gets (0666 less the umask).

    (:func:`tempfile.mkstemp` would create it with mode 0600, which the final rename would keep.)

    Returns:
        The open file descriptor (write-only) and the temporary path.
    """
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write_text(path: Path, text: str, *, sync: bool = True) -> None:
    """Write ``text`` to a temporary file beside ``path``, sync it, then rename it over ``path``.

    Readers see either the old file or the complete new one, never a partial write (also when the
    write fails half-way: the temporary file is removed). The file gets the usual mode of a new
    file (0666 less the umask).

    Args:
        path: the file to write.
        text: its content (written as UTF-8).
        sync: ``fsync`` before the rename (so that a power loss, too, leaves the old or the new
            file); False for many small files written in a row (OpenPose frames), where a crash of
            the process is what matters.

    Raises:
        SinkError: the file cannot be written.
    """
    make_parent(path)
    tmp = None
    try:
        fd, tmp = create_temp(path)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise SinkError(f"{path}: cannot write ({_reason(e)})") from e
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


class OutputLock:
    """An advisory lock on an output, ``<name>.lock`` beside it, held by the run that writes it.

    Uses ``flock``: the kernel drops the lock when its process ends, so the lock file of a run
    that died does not block the next one (it is taken over). The file holds the owner's pid and
    is removed on :meth:`release`. Where ``fcntl`` is missing (Windows) nothing is locked.

    Args:
        path: the output file (or folder) to guard.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        """Take the lock (idempotent); returns self.

        Raises:
            OutputBusyError: another live run is writing ``path``.
            SinkError: the lock file cannot be created.
        """
        if fcntl is None or self._fd is not None:
            return self
        make_parent(self.lock_path)
        while True:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                raise SinkError(f"{self.lock_path}: cannot create the lock file ({_reason(e)})") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = _read_pid(fd)
                os.close(fd)
                who = f"process {owner}" if owner else "another process"
                raise OutputBusyError(
                    f"{self.path}: another run ({who}) is writing this output right now; wait for it to finish "
                    f"or choose another name (lock: {self.lock_path})",
                    owner,
                ) from None
            try:  # the file may have been removed by the run that held it just before: lock the current one
                same = os.path.samestat(os.fstat(fd), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self._fd = fd
                return self
            os.close(fd)

    def release(self) -> None:
        """Remove the lock file and drop the lock; idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.lock_path)  # while still holding it, so nobody locks a file about to vanish
        os.close(fd)


def lock_output(path: Path) -> OutputLock:
    """Take the :class:`OutputLock` of ``path`` (release it when the output is complete).

    Raises:
        SinkError: another live run is writing ``path``.
    """
    return OutputLock(path).acquire()


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(os.pread(fd, 32, 0).decode().strip()))
    return ""


def write_error(path: Path, e: OSError) -> SinkError:
    """A :class:`SinkError` for a failed write to ``path``."""
    return SinkError(f"{path}: cannot write ({_reason(e)})")


class FrameFile:
    """An output written as the run goes, one whole frame at a time, under its :class:`OutputLock`:
    the shared shape of the CSV, JSONL and MOT sinks.

    Each frame's text is composed in memory and written with one unbuffered write, so the file on
    disk ends with a whole frame after every :meth:`write` (nothing waits in a buffer), and a run
    killed between frames leaves whole frames only. A write the disk cuts short (disk full, file
    size limit) is undone: the file is truncated back to the end of the previous frame, so readers
    (pandas, :func:`~stip_rt.io.read.read_tracks`, MOT tools) never meet a partial row.

    ``claim`` takes the lock and touches nothing else; ``open`` (claiming first if needed) creates
    the file and writes its first lines; ``write`` appends one frame; ``close`` closes the file and
    releases the lock (also after a failure, after a claim alone, and when ``open`` failed
    half-way). Every ``OSError`` becomes one :class:`SinkError` naming the file.

    Args:
        path: the output file (its folder is created at ``open``).
        check: check now that the output folder is writable.

    Raises:
        SinkError: (``check``) the output folder is not writable.
    """

    def __init__(self, path: Path, *, check: bool = True) -> None:
        self.path = path
        if check:
            check_writable(path)
        self.file: BinaryIO | None = None
        self._size = 0  # bytes of whole frames on disk
        self._lock: OutputLock | None = None

    def claim(self) -> None:
        """Take the output's lock (idempotent); the file is not created or changed.

        Raises:
            SinkError: another run writes the file.
        """
        if self._lock is None:
            self._lock = lock_output(self.path)

    def open(self, start: Callable[[TextIO], object]) -> None:
        """Claim, create, and write what ``start(text)`` writes into ``text`` (the header).

        Raises:
            SinkError: another run writes the file, or it cannot be created or written.
        """
        self.claim()
        try:
            self.file = open_unbuffered(self.path)
            self._size = 0
            self.write(start)
        except BaseException:
            self.close()
            raise

    def write(self, fill: Callable[[TextIO], object]) -> None:
        """Append what ``fill(text)`` writes into ``text`` (a :class:`io.StringIO`) as one write (UTF-8).

        Raises:
            SinkError: before :meth:`open`, or the write failed (disk full, ...): the file then
                ends with the previous frame.
        """
        f = self.file
        if f is None:
            raise SinkError(f"{self.path}: write() before open()")
        try:
            text = io.StringIO()
            fill(text)
            data = memoryview(text.getvalue().encode("utf-8"))
            while data:
                n = f.write(data)
                if not n:
                    raise OSError(errno.EIO, "nothing written")
                data = data[n:]  # a short write (disk nearly full): the rest, whose write then fails
        except OSError as e:
            with contextlib.suppress(OSError):
                f.truncate(self._size)
                f.seek(self._size)
            raise write_error(self.path, e) from e
        self._size = f.tell()

    def close(self) -> None:
        """Close the file and release the lock; idempotent.

        Raises:
            SinkError: closing failed.
        """
        f, self.file = self.file, None
        try:
            if f is not None:
                f.close()
        except OSError as e:
            raise write_error(self.path, e) from e
        finally:
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.release()
