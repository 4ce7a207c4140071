"""Read stip-rt.tracks files (.json or .jsonl, also a JSONL cut short by a crash) back into dataclasses."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError
from ..schemas import SCHEMAS, KeypointSchema
from ..types import SourceInfo, Tracks
from .tracks_format import FORMAT, VERSION, csv_columns, csv_rows

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Skeleton:
    """The skeleton of a tracks file.

    Attributes:
        name: schema name (``coco17``, ``crowdpose14``, ...).
        keypoints: joint names in keypoint order.
        links: skeleton edges as 0-based (a, b) pairs.
    """

    name: str
    keypoints: tuple[str, ...]
    links: tuple[tuple[int, int], ...]

    @property
    def schema(self) -> KeypointSchema | None:
        """The matching built-in :class:`~stip_rt.schemas.KeypointSchema` (for drawing), or None if unknown."""
        s = SCHEMAS.get(self.name)
        return s if s is not None and s.keypoints == self.keypoints else None


@dataclass(frozen=True, slots=True)
class TrackFrame:
    """One frame of a tracks file.

    Attributes:
        frame: 0-based frame index in the source.
        time: seconds from the start of the source.
        tracks: the people (``det_index`` is their order in the file, −1 for a ``predicted`` person;
            ``keypoints`` None when box-only).
    """

    frame: int
    time: float
    tracks: Tracks


@dataclass(frozen=True, slots=True)
class TrackFile:
    """A whole tracks file.

    Attributes:
        path: the file read.
        source: the source's metadata.
        skeleton: the skeleton, or None for box-only tracking.
        model: ``{"pose", "detector", "backend"}`` names.
        frames: the frames in file order.
        truncated: True when a JSONL file ended in a partial line (a crashed run); that line was skipped.
    """

    path: Path
    source: SourceInfo
    skeleton: Skeleton | None
    model: dict[str, str]
    frames: tuple[TrackFrame, ...]
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.frames)


def _header(obj: Any, where: str) -> tuple[SourceInfo, Skeleton | None, dict[str, str]]:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise DataError(f'{where}: not a {FORMAT} file (no "format": "{FORMAT}" header)')
    if obj.get("version") != VERSION:
        raise DataError(f"{where}: {FORMAT} version {obj.get('version')!r} is not supported (expected {VERSION})")
    try:
        s = obj["source"]
        source = SourceInfo(uri=str(s["uri"]), width=int(s["width"]), height=int(s["height"]),
                            fps=float(s["fps"] or 0.0), frame_count=s["frame_count"])  # fmt: skip
        sk = obj["skeleton"]
        skeleton = None
        if sk is not None:
            skeleton = Skeleton(sk["name"], tuple(sk["keypoints"]), tuple((int(a), int(b)) for a, b in sk["links"]))
        model = {k: str(v) for k, v in obj["model"].items()}
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: malformed header ({type(e).__name__}: {e})") from None
    return source, skeleton, model


def _frame(obj: Any, num_kp: int | None, where: str) -> TrackFrame:
    try:
        people = obj["people"]
        n = len(people)
        ids = np.array([p["track_id"] for p in people], np.int64)
        boxes = np.array([p["box"] for p in people], np.float32).reshape(n, 4)
        box_scores = np.array([p["box_score"] for p in people], np.float32)
        scores = np.array([p["score"] for p in people], np.float32)
        kps = None
        if num_kp is not None:
            kps = np.array([p["keypoints"] for p in people], np.float32).reshape(n, num_kp, 3)
        order = np.arange(n, dtype=np.int64)
        det_index = np.where([bool(p.get("predicted", False)) for p in people], -1, order) if n else order
        tracks = Tracks(ids, boxes, box_scores, kps, scores, det_index.astype(np.int64))
        return TrackFrame(int(obj["frame"]), float(obj["time"]), tracks)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{where}: malformed frame ({type(e).__name__}: {e})") from None


def _csv_output(p: Path, first_line: str) -> bool:
    """True for the CSV output of ``stip-rt track`` (by its header row) or any ``.csv`` file."""
    columns = csv_columns(None)
    return p.suffix.lower() == ".csv" or first_line.rstrip("\r").split(",")[: len(columns)] == columns


def read_tracks(path: str | os.PathLike[str]) -> TrackFile:
    """Read a ``.json`` or ``.jsonl`` file written by stip-rt.

    The layout is taken from the content (a JSONL header has no ``frames``), not the extension.
    A JSONL file whose last line is incomplete (the run crashed mid-write) is read up to the last
    complete frame, with ``truncated=True`` and a logged warning.

    Args:
        path: the file.

    Returns:
        The file as a :class:`TrackFile`.

    Raises:
        DataError: missing or unreadable file, not a stip-rt.tracks file (a CSV output is named as
            such: it cannot be read back), unsupported version, or a malformed record (the message
            names the file and the line).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: cannot read ({e})") from None
    if not text.strip():
        raise DataError(f"{p}: empty file")
    first, _, rest = text.partition("\n")
    try:
        head = json.loads(first)
        whole = None if isinstance(head, dict) and "frames" not in head else json.loads(text)
    except json.JSONDecodeError:
        try:
            whole = json.loads(text)
        except json.JSONDecodeError as e:
            if _csv_output(p, first):
                raise DataError(
                    f"{p}: CSV tracks files are not read (they have no header with the frame rate, frame size "
                    "and skeleton); use the .jsonl or .json output of the run, or rerun stip-rt track with "
                    "--out tracks.jsonl"
                ) from None
            raise DataError(f"{p}: invalid JSON at line {e.lineno} column {e.colno} ({e.msg})") from None
    if whole is not None:
        source, skeleton, model = _header(whole, str(p))
        num_kp = None if skeleton is None else len(skeleton.keypoints)
        frames = whole.get("frames")
        if not isinstance(frames, list):
            raise DataError(f"{p}: 'frames' must be a list")
        parsed = tuple(_frame(f, num_kp, f"{p}: frames[{i}]") for i, f in enumerate(frames))
        return TrackFile(p, source, skeleton, model, parsed)
    source, skeleton, model = _header(head, f"{p}: line 1")
    num_kp = None if skeleton is None else len(skeleton.keypoints)
    lines = rest.split("\n")
    out: list[TrackFrame] = []
    truncated = False
    for i, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            if all(not rest_line.strip() for rest_line in lines[i - 1 :]):  # only the last line may be cut
                truncated = True
                log.warning("%s: last line (%d) is incomplete (crashed run?); read %d frames", p, i, len(out))
                break
            raise DataError(f"{p}: line {i}: invalid JSON ({e.msg})") from None
        out.append(_frame(obj, num_kp, f"{p}: line {i}"))
    return TrackFile(p, source, skeleton, model, tuple(out), truncated)


def tracks_to_dataframe(tracks: TrackFile | str | os.PathLike[str]) -> pd.DataFrame:
    """One row per person per frame, with the CSV sink's columns (``frame, time, track_id, box_x1 ...``).

    Args:
        tracks: a :class:`TrackFile` or a path to read with :func:`read_tracks`.

    Returns:
        A pandas DataFrame (needs pandas: ``pip install 'stip-rt[analysis]'``).

    Raises:
        ImportError: pandas is not installed (the message says how to install it).
        DataError: as :func:`read_tracks`.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "tracks_to_dataframe needs pandas, which is not installed: pip install 'stip-rt[analysis]' "
            "(or: pip install pandas)"
        ) from None
    tf = tracks if isinstance(tracks, TrackFile) else read_tracks(tracks)
    cols = csv_columns(tf.skeleton.keypoints if tf.skeleton is not None else None)
    rows = [row for fr in tf.frames for row in csv_rows(fr.frame, fr.time, fr.tracks)]
    df = pd.DataFrame(rows, columns=cols)
    return df.astype({"frame": "int64", "track_id": "int64"})
