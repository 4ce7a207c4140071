"""JSON (one document, written atomically at the end) and JSONL (header line, then one line per frame)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SinkError
from ..types import FrameResult, RunInfo
from .sink_files import FrameFile, OutputLock, atomic_write_text, check_writable, lock_output
from .tracks_format import dumps, frame_record, header_record


def _dump(path: Path, record: dict, frame: int | None) -> str:
    try:
        return dumps(record)
    except ValueError as e:  # NaN or infinity: not representable in JSON
        where = "header" if frame is None else f"frame {frame}"
        raise SinkError(f"{path}: {where}: cannot write a non-finite number (NaN or infinity) as JSON") from e


class JsonSink:
    """The stip-rt.tracks format as one JSON document, written atomically when the sink closes.

    Frames are kept in memory (as JSON text) until ``close()``, which also runs after a failure:
    whatever was accumulated is written, so nothing computed is lost, and a reader never sees a
    half-written file. The document has one frame per line.

    Args:
        path: output ``.json`` file (its folder is created if missing).

    Raises:
        SinkError: the output folder is not writable.
    """

    needs_image = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        check_writable(self.path)
        self._header: str | None = None
        self._frames: list[str] = []
        self._closed = False
        self._lock: OutputLock | None = None

    def claim(self, run: RunInfo) -> None:
        _dump(self.path, header_record(run), None)
        if self._lock is None:
            self._lock = lock_output(self.path)

    def open(self, run: RunInfo) -> None:
        self.claim(run)
        self._header = _dump(self.path, header_record(run), None)

    def write(self, result: FrameResult) -> None:
        self._frames.append(_dump(self.path, frame_record(result), result.index))

    def close(self) -> None:
        """Write the document (when the sink was opened) and drop the lock; idempotent."""
        try:
            if not self._closed and self._header is not None:
                self._closed = True
                body = ",\n".join(self._frames)
                atomic_write_text(self.path, f'{self._header[:-1]},"frames":[\n{body}\n]}}\n')
                self._frames = []
        finally:
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.release()


class JsonlSink:
    """The stip-rt.tracks format as JSON Lines: the header on line 1, then one frame per line.

    Each line is written with one call and flushed, so the file is valid after every frame; a
    crash can at worst leave a partial last line, which :func:`stip_rt.io.read.read_tracks` skips.

    Args:
        path: output ``.jsonl`` file (its folder is created if missing).

    Raises:
        SinkError: the output folder is not writable.
    """

    needs_image = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._out = FrameFile(self.path)

    def claim(self, run: RunInfo) -> None:
        _dump(self.path, header_record(run), None)
        self._out.claim()

    def open(self, run: RunInfo) -> None:
        header = _dump(self.path, header_record(run), None)
        self._out.open(lambda f: f.write(header + "\n"))

    def write(self, result: FrameResult) -> None:
        line = _dump(self.path, frame_record(result), result.index)
        self._out.write(lambda f: f.write(line + "\n"))  # one call per line: a crash leaves at most a partial last line

    def close(self) -> None:
        self._out.close()
