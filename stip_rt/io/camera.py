"""Local cameras (an index or a /dev/videoN path) captured with OpenCV on a background thread."""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Iterator

import cv2
import numpy as np

from ..errors import SourceError
from ..types import Frame, SourceInfo
from .live_stream import PREROLL_AFTER_S, ReconnectBudget
from .source_config import SourceConfig
from .threaded_source import ThreadedSource

log = logging.getLogger(__name__)

_NOMINAL_FPS = 30.0


def _describe(device: int | str) -> str:
    return f"camera {device}"


def _available_devices() -> str:
    found = sorted(glob.glob("/dev/video*"))
    return ", ".join(found) if found else "none found under /dev/video*"


class CameraSource(ThreadedSource):
    """Frames from a local camera, newest first.

    The capture buffer is set to 1 frame and the source is live: when the consumer is slower,
    older frames are dropped (counted in ``dropped``) so results stay close to real time. Frame 0
    is captured at the first read: when that comes later than :data:`PREROLL_AFTER_S` after the
    open (a pipeline building and warming up its models), a reader thread keeps the camera drained
    until then, discarding its images, so the run does not start on a picture seconds old.
    ``Frame.time`` is seconds since the source started reading (capture time, monotonic clock);
    ``Frame.index`` counts captured frames, so gaps show drops; after the camera was reopened it
    also skips the frames it was away (at its fps), so the tracker sees the outage. A camera that stops delivering
    frames is reopened with back-off, ``source.reconnect_retries`` times until it has run for a
    minute without stopping (:class:`~stip_rt.io.live_stream.ReconnectBudget`), then fails with
    :class:`SourceError`.

    Args:
        device: camera index (``0``) or device path (``/dev/video0``).
        start: frames to capture and discard first (e.g. while exposure settles).
        max_frames: stop after this many frames (None: until closed).
        config: capture mode, retries and back-off.

    Raises:
        SourceError: the camera cannot be opened or gives no first frame.
    """

    def __init__(
        self,
        device: int | str,
        *,
        start: int = 0,
        max_frames: int | None = None,
        config: SourceConfig | None = None,
    ) -> None:
        self.device = device
        self.config = config or SourceConfig()
        self.start = start
        cap = self._open()
        self._cap: cv2.VideoCapture | None = cap
        image = self._read()
        if image is None:
            self._release()
            raise SourceError(f"{_describe(device)}: opened but gives no frames (in use by another program?)")
        self._first: np.ndarray | None = image
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        info = SourceInfo(
            uri=str(device),
            width=int(image.shape[1]),
            height=int(image.shape[0]),
            fps=fps if fps > 0 else _NOMINAL_FPS,
            frame_count=None,
            live=True,
        )
        super().__init__(info, max_frames=max_frames, buffer_size=1)
        self._budget = ReconnectBudget(self.config)
        self.start_reader()  # keep the camera drained until the first read (see _produce)

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"{_describe(self.device)}: cannot open (no such camera, or busy); devices: {_available_devices()}"
            )
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # latency first: don't let the driver queue stale frames
        cfg = self.config
        if cfg.camera_width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.camera_width)
        if cfg.camera_height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.camera_height)
        if cfg.camera_fps:
            cap.set(cv2.CAP_PROP_FPS, cfg.camera_fps)
        return cap

    def _read(self) -> np.ndarray | None:
        """The camera's next image; None when it gives none (or is not open)."""
        if self._cap is None:
            return None
        ok, image = self._cap.read()
        return image if ok else None

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _produce(self) -> Iterator[Frame]:
        image = self._first
        self._first = None
        try:
            if not self._reading.wait(PREROLL_AFTER_S):
                # nobody reads yet (a pipeline building its models): the image of the open and what
                # the driver queues meanwhile would be seconds old at the first read; discard them
                image = None
                while not self._reading.is_set() and not self._stop.is_set() and self._read() is not None:
                    pass
            t0 = time.monotonic()
            index = 0
            last_t = 0.0  # time of the last frame captured
            while not self._stop.is_set():
                if image is None:
                    image = self._read()
                    if image is None:
                        if not self._reopen(index):
                            return
                        image, self._first = self._first, None
                        # the frames the camera was away count as missing, as dropped frames do
                        index += max(0, round((time.monotonic() - t0 - last_t) * self.info.fps) - 1)
                        continue
                last_t = time.monotonic() - t0
                if index >= self.start:
                    yield Frame(index, last_t, image)
                image = None
                index += 1
        finally:
            self._release()

    def _reopen(self, index: int) -> bool:
        """Reopen a camera that stopped giving frames (:class:`~stip_rt.io.live_stream.ReconnectBudget`);
        False if the source was closed meanwhile."""
        budget = self._budget
        budget.broke()
        while (attempt := budget.next_attempt()) is not None:
            wait = budget.wait(attempt)
            log.warning(
                "%s: no frame after frame %d; reopening in %.1f s (attempt %d of %d)",
                _describe(self.device), index - 1, wait, attempt, budget.retries,
            )  # fmt: skip
            if self._stop.wait(wait):
                return False
            self._release()
            try:
                self._cap = self._open()
            except SourceError:
                continue
            image = self._read()
            if image is not None:
                self._first = image
                log.info("%s: reopened", _describe(self.device))
                budget.reopened_now()
                return True
        if budget.reopened:  # it came back, but never for long
            raise SourceError(
                f"{_describe(self.device)}: keeps stopping: {budget.summary()}; the last stop came after frame "
                f"{index - 1}; {budget.rule()} (source.reconnect_retries={budget.retries})"
            )
        raise SourceError(
            f"{_describe(self.device)}: stopped giving frames after frame {index - 1} and {budget.attempts} attempts "
            f"to reopen it failed (unplugged?)"
        )
