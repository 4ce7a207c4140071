"""CSV: one row per person per frame, flushed after every frame (``pandas.read_csv`` reads it as is)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..errors import SinkError
from ..types import FrameResult, RunInfo
from .sink_files import FrameFile
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
        self._out = FrameFile(self.path)
        self._writer: Writer | None = None
        self._keypoints = False

    def claim(self, run: RunInfo) -> None:
        self._out.claim()

    def open(self, run: RunInfo) -> None:
        self._keypoints = run.schema is not None
        columns = csv_columns(run.schema.keypoints if run.schema is not None else None)

        def header(f: TextIO) -> None:
            self._writer = csv.writer(f, lineterminator="\n")
            self._writer.writerow(columns)

        self._out.open(header)

    def write(self, result: FrameResult) -> None:
        tracks = result.tracks
        if self._keypoints and tracks.keypoints is None and len(tracks):
            raise SinkError(f"{self.path}: frame {result.index} has no keypoints but the header lists them")
        writer = self._writer
        if writer is None:
            raise SinkError(f"{self.path}: write() before open()")
        rows = csv_rows(result.index, result.time, tracks)
        self._out.write(lambda _f: writer.writerows(rows))

    def close(self) -> None:
        self._out.close()
