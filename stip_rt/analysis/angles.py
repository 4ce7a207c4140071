"""Joint angles in the image plane, defined by joint names (so COCO-17 and CrowdPose-14 share one table).

All angles are 2-D: measured between the projected limbs in the image, in degrees. A 3-D angle
seen from the side reads true; seen at a slant, it does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# angle → (end joint, vertex, other end joint): the interior angle at the vertex, in [0°, 180°].
# 180° is a straight knee/elbow/hip; the shoulder reads 0° with the arm along the trunk, 90° raised sideways.
JOINT_ANGLES: dict[str, tuple[str, str, str]] = {
    f"{side}_{joint}": (f"{side}_{a}", f"{side}_{joint}", f"{side}_{c}")
    for joint, a, c in (
        ("knee", "hip", "ankle"),
        ("elbow", "shoulder", "wrist"),
        ("hip", "shoulder", "knee"),
        ("shoulder", "hip", "elbow"),
    )
    for side in ("left", "right")
}
TRUNK_LEAN = "trunk_lean"
"""Signed angle of the hip-midpoint → shoulder-midpoint line from the image vertical (+ = leaning image right)."""

ANGLE_NAMES: tuple[str, ...] = (*JOINT_ANGLES, TRUNK_LEAN)


def interior_angle(a: np.ndarray, vertex: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The angle a–vertex–c in degrees, in [0, 180]; NaN where any point is NaN or coincides with the vertex.

    Args:
        a, vertex, c: (..., 2) points in pixels.

    Returns:
        (...) float64 degrees.
    """
    u = np.asarray(a, np.float64) - vertex
    v = np.asarray(c, np.float64) - vertex
    cross = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    dot = np.sum(u * v, axis=-1)
    out = np.degrees(np.arctan2(np.abs(cross), dot))
    zero = (np.hypot(u[..., 0], u[..., 1]) == 0) | (np.hypot(v[..., 0], v[..., 1]) == 0)
    return np.where(zero, np.nan, out)


def lean_from_vertical(bottom: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Signed angle of bottom → top from the image's up direction, in degrees in (-180, 180].

    Image y points down, so "up" is (0, -1); a positive angle leans towards +x (image right).

    Args:
        bottom, top: (..., 2) points in pixels.

    Returns:
        (...) float64 degrees; NaN where a point is NaN or the two coincide.
    """
    d = np.asarray(top, np.float64) - bottom
    out = np.degrees(np.arctan2(d[..., 0], -d[..., 1]))
    return np.where((d[..., 0] == 0) & (d[..., 1] == 0), np.nan, out)


def joint_angles(xy: np.ndarray, keypoint_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Every angle of :data:`ANGLE_NAMES` whose joints the skeleton has.

    Args:
        xy: (..., K, 2) keypoint positions in pixels, NaN where a joint is missing (below threshold).
        keypoint_names: the K joint names (``stip_rt.schemas`` names: ``left_knee`` ...).

    Returns:
        name → (...) float64 degrees (NaN where a needed joint is NaN), in :data:`ANGLE_NAMES` order.
    """
    xy = np.asarray(xy, np.float64)
    index = {n: i for i, n in enumerate(keypoint_names)}
    out: dict[str, np.ndarray] = {}
    for name, joints in JOINT_ANGLES.items():
        if all(j in index for j in joints):
            a, v, c = (xy[..., index[j], :] for j in joints)
            out[name] = interior_angle(a, v, c)
    trunk = ("left_hip", "right_hip", "left_shoulder", "right_shoulder")
    if all(j in index for j in trunk):
        lh, rh, ls, rs = (xy[..., index[j], :] for j in trunk)
        out[TRUNK_LEAN] = lean_from_vertical((lh + rh) / 2, (ls + rs) / 2)
    return out
