"""Detections read from a file, behind the :class:`~stip_rt.detect.base.Detector` interface.

``--detections FILE`` replaces the network with boxes from:

* a **COCO results JSON** (``[{"image_id", "category_id": 1, "bbox": [x, y, w, h], "score"}]``,
  read by :func:`stip_rt.io.coco.read_coco_detections`). Image ids are mapped to frames, in order:
  with ``images`` (the source's image files in frame order) and ``annotations`` (a COCO file whose
  ``images`` list gives ``id`` → ``file_name``), by file name; with ``images`` only, by the number
  in the file name when every name is one (COCO's ``000000000785.jpg`` is image 785); otherwise
  image ids are 0-based frame indices (the convention of stip-rt's own COCO output);
* a **MOTChallenge** ``det.txt`` / ``gt.txt`` (read by :func:`stip_rt.io.mot.read_mot`): frame
  f (1-based) is frame index f − 1. Rows of a ``gt.txt`` whose 7th column is 0 (ignore) are
  dropped and the others get score 1; ``det.txt`` scores outside [0, 1] are clipped, with a warning.

Frames the file does not mention get no detections.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io.coco import read_coco_detections
from ..io.mot import read_mot
from ..types import Detections
from .base import check_frames

log = logging.getLogger(__name__)


class FileDetector:
    """Looks detections up by frame index.

    Args:
        by_frame: 0-based frame index → detections.
        name: detector id (``file:<name>``).

    Attributes:
        frames: the frame indices that have an entry.
    """

    def __init__(self, by_frame: Mapping[int, Detections], name: str) -> None:
        self._by_frame = dict(by_frame)
        self.name = name
        self.frames = sorted(self._by_frame)
        self._calls = 0

    def detect(self, frames: Sequence[np.ndarray], indices: Sequence[int] | None = None) -> list[Detections]:
        """Detections of the given frames (``indices``: their 0-based numbers; default a running count).

        Raises:
            DataError: one image instead of a sequence, a frame that is not (H, W, 3), or as many
                indices as frames; nothing changes (the running count included).
        """
        check_frames(frames, self.name)
        if indices is None:
            indices = range(self._calls, self._calls + len(frames))
        if len(indices) != len(frames):
            raise DataError(f"{self.name}: {len(frames)} frames but {len(indices)} indices")
        self._calls += len(frames)
        return [self._by_frame.get(int(i), Detections.empty()) for i in indices]


def _ids_by_file_name(annotations: str | Path) -> dict[str, int]:
    p = Path(annotations)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"annotations {p}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"annotations {p}: cannot read as JSON ({e})") from None
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise DataError(f"annotations {p}: expected a COCO file with an 'images' list")
    out = {}
    for i, img in enumerate(images):
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise DataError(f"annotations {p}: images[{i}] needs 'id' and 'file_name'")
        out[Path(str(img["file_name"])).name] = img["id"]
    return out


def read_coco_file(
    path: str | Path,
    images: Sequence[str | Path] | None = None,
    annotations: str | Path | None = None,
    score_threshold: float = 0.0,
) -> FileDetector:
    """Detections from a COCO results JSON.

    Args:
        path: the detections file.
        images: the source's image files in frame order: frame i gets the boxes of the image id
            whose ``file_name`` (in ``annotations``) equals ``images[i]``'s name, or, without
            annotations, the image id written in the file name (all names numeric).
        annotations: COCO annotation file holding the ``images`` list (``id``, ``file_name``).
        score_threshold: keep boxes scoring at least this.

    Raises:
        DataError: unreadable file, bad entries, or an image of ``images`` missing from ``annotations``.
    """
    p = Path(path)
    by_id = read_coco_detections(p, score_threshold=score_threshold)
    if not any(len(d) for d in by_id.values()):
        above = f" scoring {score_threshold:g} or more" if score_threshold > 0 else ""
        log.warning("detections %s: no person boxes%s; no frame will have people", p, above)
    if annotations is not None and images is None:
        raise DataError(f"detections {p}: mapping image ids through {annotations} needs the source's image list")
    stems = [Path(img).stem for img in images or []]
    if annotations is None and stems and all(s.isdigit() for s in stems):
        numbered = {int(s): i for i, s in enumerate(stems)}
        if set(by_id) <= set(numbered):
            log.info("detections %s: image ids matched to the numbers in the image file names", p)
            return FileDetector({i: by_id.get(n, Detections.empty()) for n, i in numbered.items()}, f"file:{p.name}")
    if annotations is None:
        bad = [i for i in by_id if not isinstance(i, int) or i < 0]
        if bad:
            raise DataError(f"detections {p}: image_id {bad[0]!r} is not a frame index (give the annotations file)")
        return FileDetector(by_id, f"file:{p.name}")
    ids = _ids_by_file_name(annotations)
    by_frame = {}
    for i, img in enumerate(images or []):
        name = Path(img).name
        if name not in ids:
            raise DataError(f"annotations {annotations}: no image with file_name '{name}' (frame {i})")
        by_frame[i] = by_id.get(ids[name], Detections.empty())
    return FileDetector(by_frame, f"file:{p.name}")


def read_mot_file(path: str | Path, score_threshold: float = 0.0) -> FileDetector:
    """Detections from a MOTChallenge ``det.txt`` or ``gt.txt`` (1-based frames).

    Args:
        path: the text file; a file named ``gt.txt`` is read as ground truth (see module docstring).
        score_threshold: keep boxes scoring at least this.

    Raises:
        DataError: unreadable or malformed file.
    """
    p = Path(path)
    gt = p.name == "gt.txt"
    seq = read_mot(p, min_score=1.0 if gt else None)
    if not len(seq):
        n_rows = len(read_mot(p)) if gt else 0
        why = f"all {n_rows} rows are marked 0 = ignore" if n_rows else "it holds no rows"
        log.warning("detections %s: no boxes (%s); no frame will have people", p, why)
    scores = np.ones(len(seq)) if gt else seq.scores
    if not gt and len(seq) and (scores.min() < 0 or scores.max() > 1):
        log.warning("detections %s: scores span [%g, %g]; clipped to [0, 1]", p, scores.min(), scores.max())
        scores = scores.clip(0, 1)
    by_frame = {}
    for frame, rows in seq.frame_rows().items():
        xywh = seq.boxes[rows]
        keep = scores[rows] >= score_threshold
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)[keep]
        by_frame[frame - 1] = Detections(boxes.astype(np.float32), scores[rows][keep].astype(np.float32))
    return FileDetector(by_frame, f"file:{p.name}")


def read_detections_file(
    path: str | Path,
    images: Sequence[str | Path] | None = None,
    annotations: str | Path | None = None,
    score_threshold: float = 0.0,
) -> FileDetector:
    """Detections from a file, by its format: ``.json`` → COCO, ``.txt`` → MOTChallenge.

    Raises:
        DataError: missing file, unknown extension, or a malformed file (names the file and entry).
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"detections {p}: file not found")
    suffix = p.suffix.lower()
    if suffix == ".json":
        return read_coco_file(p, images, annotations, score_threshold)
    if suffix == ".txt":
        return read_mot_file(p, score_threshold)
    raise DataError(f"detections {p}: unknown format '{suffix}' (use a COCO .json or a MOTChallenge .txt)")
