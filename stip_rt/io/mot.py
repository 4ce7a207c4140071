"""MOTChallenge text files: read ground truth / detections / results, write results.

One row per box: ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z`` with 1-based frames
(pixels, origin top-left). Results are written as ``frame,id,x,y,w,h,score,-1,-1,-1``.
:class:`MotSink` writes a pipeline's tracks this way (frame index + 1).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, SinkError
from ..types import FrameResult, RunInfo, Tracks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MotSequence:
    """Boxes of a MOTChallenge file, one row per box, sorted by frame then id.

    Attributes:
        frames: (N,) int64 1-based frame numbers.
        ids: (N,) int64 object ids (-1 for detections).
        boxes: (N, 4) float64 ``x, y, w, h`` pixels (top-left corner, width, height).
        scores: (N,) float64 the 7th column (confidence; in ground truth 0 = ignore, 1 = consider).
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def select(self, mask: np.ndarray) -> MotSequence:
        """The rows where ``mask`` (N,) is True."""
        return MotSequence(self.frames[mask], self.ids[mask], self.boxes[mask], self.scores[mask])

    def frame_rows(self) -> dict[int, np.ndarray]:
        """1-based frame → row indices of that frame."""
        if len(self) == 0:
            return {}
        order = np.argsort(self.frames, kind="stable")
        uniq, start = np.unique(self.frames[order], return_index=True)
        return {int(f): rows for f, rows in zip(uniq, np.split(order, start[1:]))}


def read_mot(path: str | Path, min_score: float | None = None) -> MotSequence:
    """Read a MOTChallenge ``gt.txt`` / ``det.txt`` / results file.

    Blank lines are skipped. MOTChallenge files have no comments, and neither py-motmetrics nor
    TrackEval reads ``#`` as one: a line starting with ``#`` is refused like any other text.
    Errors give the line of the file (1-based, every line counted).

    Args:
        path: the text file (comma separated; at least 6 columns).
        min_score: drop rows whose 7th column is below this (e.g. 1 for ground truth, which drops
            the rows marked 0 = ignore, as py-motmetrics and TrackEval do for MOT15).

    Raises:
        DataError: missing file, unparsable rows or comment lines, fewer than 6 columns, frames < 1
            or negative sizes.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"MOT file {p}: not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"MOT file {p}: cannot read ({e})") from None
    numbered = [(n, ln) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not numbered:
        return _empty()
    rows = [ln for _, ln in numbered]
    try:  # comments=None: numpy would otherwise drop '#' lines and text after a '#'
        data = np.loadtxt(io.StringIO("\n".join(rows)), delimiter=",", ndmin=2, dtype=np.float64, comments=None)
    except ValueError:
        raise DataError(f"MOT file {p}: {_first_bad_line(numbered)}") from None
    if data.shape[1] < 6:
        raise DataError(f"MOT file {p}: expected at least 6 columns (frame,id,x,y,w,h), got {data.shape[1]}")
    bad_frame = (data[:, 0] < 1) | (data[:, 0] != np.round(data[:, 0]))
    if np.any(bad_frame):
        line = numbered[int(np.flatnonzero(bad_frame)[0])][0]
        raise DataError(f"MOT file {p}: line {line}: frame numbers must be integers >= 1 (1-based)")
    bad_box = (data[:, 4:6] < 0).any(1) | ~np.isfinite(data[:, :6]).all(1)
    if np.any(bad_box):
        line = numbered[int(np.flatnonzero(bad_box)[0])][0]
        raise DataError(f"MOT file {p}: line {line}: box width/height must be finite and >= 0")
    scores = data[:, 6] if data.shape[1] > 6 else np.ones(len(data))
    seq = MotSequence(data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2:6].copy(), scores)
    if min_score is not None:
        seq = seq.select(seq.scores >= min_score)
    order = np.lexsort((seq.ids, seq.frames))
    return seq.select(order)


def _first_bad_line(numbered: list[tuple[int, str]]) -> str:
    """Where and why comma-separated numbers do not parse: ``line 7: ...`` (1-based file lines)."""
    width = None
    for n, line in numbered:
        if line.lstrip().startswith("#"):
            return f"line {n}: {line.strip()!r}: MOTChallenge files have no comment lines (remove it)"
        cells = line.split(",")
        for c, cell in enumerate(cells, 1):
            try:
                float(cell)
            except ValueError:
                return f"not comma-separated numbers: line {n}, column {c}: {cell.strip()!r} is not a number"
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            return f"line {n}: {len(cells)} columns, but the lines before it have {width}"
    return "not comma-separated numbers"


def _empty() -> MotSequence:
    return MotSequence(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0))


def format_rows(frames: np.ndarray, ids: np.ndarray, boxes_xywh: np.ndarray, scores: np.ndarray) -> str:
    """Result rows ``frame,id,x,y,w,h,score,-1,-1,-1`` (frames already 1-based), one per line."""
    return "".join(
        f"{int(f)},{int(i)},{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},{s:.4f},-1,-1,-1\n"
        for f, i, b, s in zip(frames, ids, boxes_xywh, scores)
    )


def write_mot(path: str | Path, seq: MotSequence) -> None:
    """Write a results file (rows ``frame,id,x,y,w,h,score,-1,-1,-1``).

    Raises:
        SinkError: the file cannot be written.
    """
    p = Path(path)
    try:
        p.write_text(format_rows(seq.frames, seq.ids, seq.boxes, seq.scores), encoding="utf-8")
    except OSError as e:
        raise SinkError(f"MOT file {p}: cannot write ({e.strerror})") from None


def tracks_to_rows(tracks: Tracks, frame_index: int) -> str:
    """One frame's tracks as result rows; ``frame_index`` is 0-based (written + 1)."""
    boxes = np.asarray(tracks.boxes, np.float64).reshape(-1, 4)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    frames = np.full(len(tracks), frame_index + 1)
    return format_rows(frames, tracks.ids, xywh, np.asarray(tracks.scores, np.float64))


class MotSink:
    """Writes tracks as a MOTChallenge results file, one line per person per frame, as they come.

    Each frame's rows go to disk in one write (:class:`~stip_rt.io.sink_files.FrameFile`): the file
    ends with a whole frame after every frame, also when the disk fills up.

    Attributes:
        path: the output file.
        needs_image: False (no pictures needed).
    """

    needs_image = False

    def __init__(self, path: str | Path) -> None:
        from .sink_files import FrameFile

        self.path = Path(path)
        self._out = FrameFile(self.path, check=False)  # open_sink checks; a MotSink made directly finds out at open()

    def claim(self, run: RunInfo) -> None:
        """Take the file's lock; nothing is created or changed. Raises SinkError if another run writes it."""
        self._out.claim()

    def open(self, run: RunInfo) -> None:
        """Create (truncate) the file. Raises SinkError if it cannot be opened or another run writes it."""
        self.claim(run)
        try:
            self._out.open(lambda _f: None)
        except SinkError as e:
            why = e.__cause__.strerror if isinstance(e.__cause__, OSError) else str(e)
            raise SinkError(f"MOT file {self.path}: cannot open for writing ({why})") from None
        log.debug("writing MOT results of %s to %s", run.source.uri, self.path)

    def write(self, result: FrameResult) -> None:
        """Append the rows of one frame.

        Raises:
            SinkError: before ``open``; a box or score is NaN or infinite; the write failed.
        """
        from .tracks_format import is_finite

        if self._out.file is None:
            raise SinkError(f"MOT file {self.path}: write() before open()")
        if not is_finite(result.tracks):
            raise SinkError(f"{self.path}: frame {result.index}: cannot write a non-finite number (NaN or infinity)")
        rows = tracks_to_rows(result.tracks, result.index)
        try:
            self._out.write(lambda f: f.write(rows))
        except SinkError as e:
            why = e.__cause__.strerror if isinstance(e.__cause__, OSError) else str(e)
            raise SinkError(f"MOT file {self.path}: cannot write frame {result.index} ({why})") from e.__cause__

    def close(self) -> None:
        """Close the file; safe to call more than once and after a failure."""
        self._out.close()
