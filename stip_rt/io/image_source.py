"""A folder, glob or list of images read as a video (sorted in natural order)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import SourceError
from ..types import Frame, SourceInfo
from .source_config import SourceConfig
from .source_paths import image_candidates, is_image
from .threaded_source import ThreadedSource


def _natural_key(path: Path) -> list[object]:
    """Sort ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def find_images(spec: str | Path) -> list[Path]:
    """The images of a folder, a glob pattern or a single image file, in natural order.

    Raises:
        SourceError: the path does not exist, nothing matches, or the folder holds no images.
    """
    paths, where = image_candidates(str(spec))
    images = sorted(filter(is_image, paths), key=_natural_key)
    if not images:
        raise SourceError(where)
    return images


def _read(path: Path) -> np.ndarray:
    """Decode one image (BGR); a damaged, truncated or unreadable file raises a SourceError naming it."""
    try:
        data = path.read_bytes()
    except PermissionError:
        raise SourceError(f"{path}: cannot read this image (permission denied)") from None
    except FileNotFoundError:
        raise SourceError(f"{path}: image file not found (removed while running?)") from None
    except OSError as e:
        raise SourceError(f"{path}: cannot read this image ({(e.strerror or str(e)).lower()})") from None
    if path.suffix.lower() in (".jpg", ".jpeg") and _jpeg_truncated(data):
        raise SourceError(f"{path}: the JPEG file is truncated (its last scan has no end-of-image marker); damaged")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise SourceError(f"{path}: cannot read this image (damaged or not an image)")
    return image


def _jpeg_truncated(data: bytes) -> bool:
    """True when a JPEG file lacks the end-of-image marker (FFD9) after its last start-of-scan (FFDA).

    libjpeg decodes such a file with a warning only ("Premature end of JPEG file") and fills the
    missing rows with grey. Inside scan data a 0xFF byte is always followed by 0x00 or a restart
    marker, so FFD9 after the last FFDA is the true end; data appended after it (camera trailers,
    MPF second images with their own scan and end) is fine.
    """
    return data[:2] == b"\xff\xd8" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")


class ImageFolderSource(ThreadedSource):
    """Images as frames, read on a background thread.

    Frame ``i`` is the ``i``-th image in natural order and its time is ``i / fps``. Images may differ
    in size; ``info.width``/``info.height`` are those of the first one.

    Args:
        spec: a folder, a glob pattern (``frames/*.jpg``), an image file, or a list of image paths.
        start: index of the first image to yield.
        max_frames: stop after this many images (None: all).
        fps: frame rate to report and to derive times from (None: ``config.image_fps``, 30).
        config: buffering.

    Raises:
        SourceError: no images found, or the first image cannot be read.
    """

    def __init__(
        self,
        spec: str | Path | Sequence[str | Path],
        *,
        start: int = 0,
        max_frames: int | None = None,
        fps: float | None = None,
        config: SourceConfig | None = None,
    ) -> None:
        self.config = config or SourceConfig()
        if isinstance(spec, str | Path):
            self.paths = find_images(spec)
            uri = str(spec)
        else:
            self.paths = [Path(p) for p in spec]
            uri = str(self.paths[0].parent) if self.paths else "<empty list>"
            if not self.paths:
                raise SourceError("image list: empty")
        self.start = start
        if start >= len(self.paths):
            raise SourceError(
                f"{uri}: the start frame {start} is past the last image ({len(self.paths)} images, the last is "
                f"{len(self.paths) - 1})"
            )
        first = _read(self.paths[start])
        info = SourceInfo(
            uri=uri,
            width=int(first.shape[1]),
            height=int(first.shape[0]),
            fps=float(fps or self.config.image_fps),
            frame_count=len(self.paths),
            live=False,
        )
        super().__init__(info, max_frames=max_frames, buffer_size=self.config.buffer_size)

    def _produce(self) -> Iterator[Frame]:
        for index in range(self.start, len(self.paths)):
            yield Frame(index, index / self.info.fps, _read(self.paths[index]))
