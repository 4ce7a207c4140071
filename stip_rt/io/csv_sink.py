"""CSV: one row per person per frame, written a whole frame at a time (``pandas.read_csv`` reads it as is)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TextIO

from ..errors import SinkError
from ..types import FrameResult, RunInfo
from .sink_files import FrameFile
from .tracks_format import csv_columns, csv_rows, is_finite


def _csv_text(out: TextIO, rows: list[list]) -> None:
    csv.writer(out, lineterminator="\n").writerows(rows)


class CsvSink:
    """Columns ``frame,time,track_id,box_x1,box_y1,box_x2,box_y2,box_score,score`` then
    ``<kp>_x,<kp>_y,<kp>_score`` for every keypoint of the schema (none for box-only tracking).

    The header is written at ``open`` (so a run whose first frames have nobody still has every
    column); each frame's rows go to disk in one write (:class:`~stip_rt.io.sink_files.FrameFile`).

    Args:
        path: output ``.csv`` file (its folder is created if missing).

    Raises:
        SinkError: the output folder is not writable.
    """

    needs_image = False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._out = FrameFile(self.path)
        self._keypoints = False

    def claim(self, run: RunInfo) -> None:
        self._out.claim()

    def open(self, run: RunInfo) -> None:
        self._keypoints = run.schema is not None
        columns = csv_columns(run.schema.keypoints if run.schema is not None else None)
        self._out.open(lambda f: _csv_text(f, [columns]))

    def write(self, result: FrameResult) -> None:
        """Append one frame's rows.

        Raises:
            SinkError: before ``open``; the frame lacks the keypoints the header lists; a value is
                NaN or infinite (written nowhere, as in every format); the write failed.
        """
        tracks = result.tracks
        if self._keypoints and tracks.keypoints is None and len(tracks):
            raise SinkError(f"{self.path}: frame {result.index} has no keypoints but the header lists them")
        if not is_finite(tracks, result.time):
            raise SinkError(f"{self.path}: frame {result.index}: cannot write a non-finite number (NaN or infinity)")
        rows = csv_rows(result.index, result.time, tracks)
        self._out.write(lambda f: _csv_text(f, rows))

    def close(self) -> None:
        self._out.close()
