"""CSV: one row per person per frame, flushed after every frame (``pandas.read_csv`` reads it as is)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..errors import SinkError
from ..types import FrameResult, RunInfo
from .sink_files import OutputLock, check_writable, lock_output, open_text, write_error
from .tracks_format import csv_columns, csv_rows

if TYPE_CHECKING:
    from _csv import Writer


class CsvSink:
    """Columns ``frame,time,track_id,box_x1,box_y1,box_x2,box_y2,box_score,score`` then
    ``<kp>_x,<kp>_y,<kp>_score`` for every keypoint of the schema (none for box-only tracking).

    Args:
        path: output ``.csv`` file (its folder is created if missing).

    Raises:
        SinkError: the output folder is not writable.
    """

    needs_image = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        check_writable(self.path)
        self._file: TextIO | None = None
        self._writer: Writer | None = None
        self._lock: OutputLock | None = None

    def open(self, run: RunInfo) -> None:
        self._lock = lock_output(self.path)
        try:
            self._file = open_text(self.path)
            self._writer = csv.writer(self._file, lineterminator="\n")
            self._keypoints = run.schema is not None
            self._rows([csv_columns(run.schema.keypoints if run.schema is not None else None)])
        except BaseException:
            self.close()
            raise

    def write(self, result: FrameResult) -> None:
        if self._writer is None:
            raise SinkError(f"{self.path}: write() before open()")
        tracks = result.tracks
        if self._keypoints and tracks.keypoints is None and len(tracks):
            raise SinkError(f"{self.path}: frame {result.index} has no keypoints but the header lists them")
        self._rows(csv_rows(result.index, result.time, tracks))

    def _rows(self, rows: list[list]) -> None:
        writer, f = self._writer, self._file
        if writer is None or f is None:
            raise SinkError(f"{self.path}: write() before open()")
        try:
            writer.writerows(rows)
            f.flush()
        except OSError as e:
            raise write_error(self.path, e) from e

    def close(self) -> None:
        f, self._file, self._writer = self._file, None, None
        try:
            if f is not None:
                f.close()
        except OSError as e:
            raise write_error(self.path, e) from e
        finally:
            if self._lock is not None:
                self._lock.release()
