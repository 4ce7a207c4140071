"""``stip-rt track --show``: an OpenCV window showing the annotated frames (q or Esc quits).

A picture and nothing else, like the mmpose/Ultralytics demos; the real application is the Qt
viewer (``stip-viewer``). OpenCV's headless build has no windows: that is one clear error.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import cv2

from ..errors import SinkError
from ..types import FrameResult, RunInfo

if TYPE_CHECKING:
    from ..schemas import KeypointSchema

log = logging.getLogger(__name__)

_QUIT_KEYS = {ord("q"), 27}  # q, Esc


class WindowSink:
    """Shows each result's frame with skeletons, boxes and ids (drawn by :mod:`stip_rt.io.draw`).

    Attributes:
        quit_requested: set when the user pressed q/Esc or closed the window; the caller stops.
    """

    needs_image = True

    def __init__(self, title: str = "stip-rt") -> None:
        self.title = title
        self.quit_requested = False
        self._schema: KeypointSchema | None = None
        self._open = False

    def claim(self, run: RunInfo) -> None:
        """Open the window: an OpenCV build without window support refuses the run before any
        output file is created."""
        if self._open:
            return
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise SinkError(
                f"--show: this OpenCV build ({cv2.__version__}) has no window support (headless); "
                "install opencv-python instead of opencv-python-headless, or use stip-viewer"
            ) from None
        self._open = True

    def open(self, run: RunInfo) -> None:
        self.claim(run)
        self._schema = run.schema

    def write(self, result: FrameResult) -> None:
        from ..io.draw import draw_tracks

        if self.quit_requested or result.image is None:
            return
        image = draw_tracks(result.image.copy(), result.tracks, self._schema)
        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in _QUIT_KEYS or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.quit_requested = True

    def close(self) -> None:
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
            except cv2.error:
                log.debug("window already gone")
