"""From image pixels to metres: a uniform scale, or a homography onto the ground plane.

A homography file (JSON or YAML) lists four or more image points and the matching ground points::

    # pixels in the source frame (x right, y down) ...
    image_points:  [[102, 540], [655, 528], [590, 212], [180, 220]]
    # ... and where they lie on the ground, in metres (any planar frame you choose)
    ground_points: [[0, 0], [8, 0], [8, 20], [0, 20]]

The homography is fitted with ``cv2.findHomography`` (least squares over all points). Points on the
ground plane map exactly; anything above the ground (a hip, a head) does not, which is why the
default position of a person is the bottom centre of their box (their feet).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from ..errors import ConfigError

log = logging.getLogger(__name__)

_COLLINEAR = 1e-3  # triangle area / (point spread)² below this counts as collinear


@dataclass(frozen=True, slots=True)
class GroundMap:
    """Maps image pixels to metres.

    Attributes:
        matrix: (3, 3) float64 homography from (x_px, y_px, 1) to ground metres (homogeneous).
        source: where it came from (``scale 0.01 m/px`` or the homography file), for messages and plots.
        sign: +1 or -1, the sign of the homogeneous coordinate ``w`` on the calibration points; image
            points whose ``w`` has the other sign lie beyond the horizon and map to NaN.
        is_scale: True for a uniform scale (metres keep the image's axes: y points down).
    """

    matrix: np.ndarray
    source: str
    sign: float = 1.0
    is_scale: bool = False

    def __call__(self, xy: np.ndarray) -> np.ndarray:
        """Map (..., 2) pixels to (..., 2) metres; NaN stays NaN, points beyond the horizon become NaN."""
        xy = np.asarray(xy, np.float64)
        h = self.matrix
        w = xy[..., 0] * h[2, 0] + xy[..., 1] * h[2, 1] + h[2, 2]
        ok = w * self.sign > 1e-12
        safe_w = np.where(ok, w, np.nan)
        out = np.empty_like(xy)
        out[..., 0] = (xy[..., 0] * h[0, 0] + xy[..., 1] * h[0, 1] + h[0, 2]) / safe_w
        out[..., 1] = (xy[..., 0] * h[1, 0] + xy[..., 1] * h[1, 1] + h[1, 2]) / safe_w
        return out


def scale_map(metres_per_px: float) -> GroundMap:
    """A uniform scale: ``x_m = x_px * s``, ``y_m = y_px * s`` (for a camera looking straight at the plane of motion).

    Raises:
        ConfigError: the scale is not a positive finite number.
    """
    s = float(metres_per_px)
    if not math.isfinite(s) or s <= 0:
        raise ConfigError(f"scale {metres_per_px!r}: must be a positive number of metres per pixel")
    return GroundMap(np.diag([s, s, 1.0]), f"scale {s:g} m/px", 1.0, True)


def _points(value: object, key: str, where: str) -> np.ndarray:
    try:
        pts = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        pts = np.empty(0)
    if pts.ndim != 2 or pts.shape[1] != 2 or not np.isfinite(pts).all():
        raise ConfigError(f"homography {where}: '{key}' must be a list of [x, y] number pairs")
    return pts


def _check_spread(pts: np.ndarray, key: str, where: str) -> None:
    """Four points with three on one line (or all points on one line) fix no homography."""
    centred = pts - pts.mean(0)
    spread = float(np.sum(centred**2)) / len(pts)
    if spread <= 0:
        raise ConfigError(f"homography {where}: the {key} all coincide")
    sv = np.linalg.svd(centred, compute_uv=False)
    if sv[1] / sv[0] < _COLLINEAR:
        raise ConfigError(f"homography {where}: the {key} lie on one line (degenerate homography)")
    if len(pts) == 4:
        for i, j, k in itertools.combinations(range(4), 3):
            a, b = pts[j] - pts[i], pts[k] - pts[i]
            area = abs(a[0] * b[1] - a[1] * b[0]) / 2
            if area / spread < _COLLINEAR:
                raise ConfigError(
                    f"homography {where}: {key} {i + 1}, {j + 1} and {k + 1} lie on one line (degenerate homography)"
                )


def fit_homography(image_points: np.ndarray, ground_points: np.ndarray, where: str = "points") -> GroundMap:
    """Fit the image → ground homography to four or more point pairs.

    Args:
        image_points: (N, 2) pixels in the source frame, N >= 4.
        ground_points: (N, 2) the same points on the ground plane in metres.
        where: name for messages (the file).

    Returns:
        The :class:`GroundMap`.

    Raises:
        ConfigError: fewer than 4 pairs, different counts, points on one line, or no finite homography.
    """
    img = _points(image_points, "image_points", where)
    gnd = _points(ground_points, "ground_points", where)
    if len(img) != len(gnd):
        raise ConfigError(f"homography {where}: {len(img)} image_points but {len(gnd)} ground_points")
    if len(img) < 4:
        raise ConfigError(f"homography {where}: needs at least 4 point pairs, got {len(img)}")
    _check_spread(img, "image_points", where)
    _check_spread(gnd, "ground_points", where)
    h, _ = cv2.findHomography(img, gnd, 0)
    if h is None or not np.isfinite(h).all() or abs(np.linalg.det(h)) < 1e-12:
        raise ConfigError(f"homography {where}: the points give no invertible homography (degenerate)")
    w = img @ h[2, :2] + h[2, 2]
    if not (np.all(w > 0) or np.all(w < 0)):
        raise ConfigError(f"homography {where}: the image points straddle the horizon (degenerate homography)")
    gm = GroundMap(h, f"homography {where}", float(np.sign(w[0])))
    err = np.linalg.norm(gm(img) - gnd, axis=1)
    log.info("homography %s: %d points, reprojection error mean %.3f m, max %.3f m", where, len(img), err.mean(),
             err.max())  # fmt: skip
    return gm


def load_homography(path: str | os.PathLike[str]) -> GroundMap:
    """Read a homography file (JSON or YAML with ``image_points`` and ``ground_points``) and fit it.

    Raises:
        ConfigError: missing or unreadable file, missing keys, or a degenerate set of points (the
            message names the file).
    """
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"homography {p}: file not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"homography {p}: cannot read ({type(e).__name__}: {e})") from None
    if not isinstance(data, dict) or not {"image_points", "ground_points"} <= data.keys():
        raise ConfigError(f"homography {p}: expected a mapping with 'image_points' and 'ground_points'")
    unknown = set(data) - {"image_points", "ground_points"}
    if unknown:
        raise ConfigError(f"homography {p}: unknown key(s) {sorted(unknown)} (expected image_points, ground_points)")
    return fit_homography(data["image_points"], data["ground_points"], str(p))
