"""Drawing people on frames with OpenCV: boxes, skeletons and track ids in stable per-id colours.

Used by the annotated-video sink, ``stip-rt predict --draw`` and the Qt viewer. All drawing is
antialiased and done at sub-pixel precision (OpenCV's ``shift``); sizes scale with the image.
"""

from __future__ import annotations

import colorsys
from collections import deque
from typing import Any

import cv2
import numpy as np

from ..schemas import KeypointSchema
from ..types import Tracks

_GOLDEN = 0.618033988749895
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_SCALE = 1 << _SHIFT
_NEUTRAL = (200, 200, 200)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def id_color(track_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for a track id (golden-ratio steps around the hue circle)."""
    hue = (int(track_id) * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(b * 255), int(g * 255), int(r * 255)


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return round(float(xy[0]) * _SCALE), round(float(xy[1]) * _SCALE)


def _text_color(bg: tuple[int, int, int]) -> tuple[int, int, int]:
    b, g, r = bg
    return (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 140 else (255, 255, 255)


def _label(image: np.ndarray, text: str, x: float, y: float, color: tuple[int, int, int], scale: float) -> None:
    """A filled tag above (x, y), kept inside the image."""
    thick = max(1, round(scale * 2))
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thick)
    h, w = image.shape[:2]
    pad = max(2, round(3 * scale))
    x0 = int(np.clip(x, 0, max(0, w - tw - 2 * pad)))
    y1 = int(np.clip(y, th + base + 2 * pad, h))
    y0 = y1 - th - base - 2 * pad
    cv2.rectangle(image, (x0, y0), (x0 + tw + 2 * pad, y1), color, -1, cv2.LINE_AA)
    cv2.putText(image, text, (x0 + pad, y1 - base - pad), _FONT, scale, _text_color(color), thick, cv2.LINE_AA)


def draw_people(
    image: np.ndarray,
    boxes: np.ndarray,
    keypoints: np.ndarray | None,
    ids: np.ndarray | None = None,
    schema: KeypointSchema | None = None,
    *,
    kpt_threshold: float = 0.3,
    show_boxes: bool = True,
    show_skeleton: bool = True,
    show_ids: bool = True,
    scores: np.ndarray | None = None,
    thickness: int | None = None,
) -> np.ndarray:
    """Draw people onto ``image`` in place and return it.

    With ``ids``, each person's box, links and label take the id's colour (:func:`id_color`); joints
    keep the schema's left/right colours. Without ids, links use the schema's colours and boxes a
    neutral grey. Joints and links whose keypoint score is below ``kpt_threshold`` are not drawn.

    Args:
        image: (H, W, 3) uint8 BGR, modified in place (pass ``image.copy()`` to keep the original).
        boxes: (N, 4) xyxy pixels.
        keypoints: (N, K, 3) (x, y, score) pixels, or None (boxes only).
        ids: (N,) int track ids, or None.
        schema: keypoint schema for links and joint colours; needed to draw skeletons.
        kpt_threshold: minimum keypoint score to draw a joint (and a link between two joints).
        show_boxes, show_skeleton, show_ids: what to draw. Labels read ``#id`` (and the score when
            ``scores`` is given); with ``ids=None`` and ``scores`` only the score is shown.
        scores: (N,) person scores to print in the labels, or None.
        thickness: line width in pixels; None scales with the image (2 px at 720p).

    Returns:
        ``image``, with the drawing.
    """
    h, w = image.shape[:2]
    lw = thickness or max(1, round(min(h, w) / 360))
    radius = max(2, round(lw * 1.6))
    font_scale = max(0.4, min(h, w) / 1400)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    n = boxes.shape[0]
    colors = [id_color(int(i)) for i in ids] if ids is not None else [_NEUTRAL] * n
    draw_skeleton = show_skeleton and keypoints is not None and schema is not None
    kps = np.asarray(keypoints, dtype=np.float32) if draw_skeleton else None
    for i in range(n):
        color = colors[i]
        if kps is not None and schema is not None:
            _draw_skeleton(image, kps[i], schema, color if ids is not None else None, kpt_threshold, lw, radius)
        if show_boxes:
            cv2.rectangle(image, _pt(boxes[i, :2]), _pt(boxes[i, 2:]), color, lw, cv2.LINE_AA, _SHIFT)
        if show_ids and (ids is not None or scores is not None):
            parts = [] if ids is None else [f"#{int(ids[i])}"]
            if scores is not None:
                parts.append(f"{float(scores[i]):.2f}")
            _label(image, " ".join(parts), boxes[i, 0], boxes[i, 1], color, font_scale)
    return image


def _draw_skeleton(
    image: np.ndarray,
    kps: np.ndarray,
    schema: KeypointSchema,
    color: tuple[int, int, int] | None,
    threshold: float,
    lw: int,
    radius: int,
) -> None:
    """Links (in ``color`` or the schema's link colours), then joints on top."""
    ok = (kps[:, 2] >= threshold) & np.isfinite(kps[:, :2]).all(1)
    for (a, b), link_color in zip(schema.links, schema.link_colors):
        if ok[a] and ok[b]:
            cv2.line(image, _pt(kps[a]), _pt(kps[b]), color or link_color, lw + 1, cv2.LINE_AA, _SHIFT)
    for k in np.flatnonzero(ok):
        c = _pt(kps[k])
        cv2.circle(image, c, radius * _SCALE, schema.keypoint_colors[k], -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(image, c, radius * _SCALE, (30, 30, 30), 1, cv2.LINE_AA, _SHIFT)


def draw_tracks(image: np.ndarray, tracks: Tracks, schema: KeypointSchema | None, **options: Any) -> np.ndarray:
    """Draw a frame's :class:`~stip_rt.types.Tracks` onto ``image`` in place (see :func:`draw_people`).

    Args:
        image: (H, W, 3) uint8 BGR, modified in place.
        tracks: the tracked people of this frame.
        schema: keypoint schema, or None for box-only tracking.
        **options: keyword options of :func:`draw_people` (``kpt_threshold``, ``show_boxes`` ...).

    Returns:
        ``image``, with the drawing.
    """
    return draw_people(image, tracks.boxes, tracks.keypoints, ids=tracks.ids, schema=schema, **options)


class Trails:
    """The recent positions of each track, for :func:`draw_trails`: box bottom centres (the feet) in pixels.

    Call :meth:`update` once per frame with that frame's tracks; a track's points older than
    ``length`` frames are dropped (so a lost track's trail shrinks away and is then forgotten).

    Args:
        length: how many frames of history a trail spans (> 0).

    Example:
        >>> trails = Trails(30)
        >>> for result in results:
        ...     trails.update(result.index, result.tracks)
        ...     draw_trails(image, trails)
    """

    def __init__(self, length: int = 30) -> None:
        if length < 1:
            raise ValueError(f"trail length must be at least 1 frame, got {length}")
        self.length = int(length)
        self.frame = -1
        self._points: dict[int, deque[tuple[int, float, float]]] = {}

    def update(self, frame: int, tracks: Tracks) -> None:
        """Add this frame's positions (``frame`` increases between calls) and drop those older than ``length``."""
        self.frame = int(frame)
        boxes = np.asarray(tracks.boxes, np.float64).reshape(-1, 4)
        for tid, (x1, _, x2, y2) in zip(tracks.ids.tolist(), boxes):
            self._points.setdefault(int(tid), deque()).append((self.frame, (x1 + x2) / 2, y2))
        oldest = self.frame - self.length + 1
        for tid in list(self._points):
            pts = self._points[tid]
            while pts and pts[0][0] < oldest:
                pts.popleft()
            if not pts:
                del self._points[tid]

    def points(self) -> dict[int, np.ndarray]:
        """Track id → (n, 2) float64 positions in pixels, oldest first."""
        return {tid: np.array([(x, y) for _, x, y in pts]) for tid, pts in self._points.items()}


def draw_trails(image: np.ndarray, trails: Trails, *, thickness: int | None = None) -> np.ndarray:
    """Draw each track's trail (its last positions) in the track's colour, thinning towards the oldest.

    Draw trails before :func:`draw_tracks` so that boxes and skeletons stay on top.

    Args:
        image: (H, W, 3) uint8 BGR, modified in place.
        trails: the positions, updated up to this frame.
        thickness: line width of the newest segment in pixels; None scales with the image (3 px at 720p).

    Returns:
        ``image``, with the trails.
    """
    h, w = image.shape[:2]
    lw = thickness or max(2, round(min(h, w) / 240))
    for tid, pts in trails.points().items():
        color = id_color(tid)
        n = len(pts)
        for i in range(1, n):
            width = max(1, round(lw * (0.3 + 0.7 * i / max(1, n - 1))))
            cv2.line(image, _pt(pts[i - 1]), _pt(pts[i]), color, width, cv2.LINE_AA, _SHIFT)
    return image
