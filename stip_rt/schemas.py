"""Keypoint schemas: COCO-17 and CrowdPose-14.

Names, flip pairs, skeleton links (0-based, for drawing), upper/lower body sets,
OKS sigmas (the evaluation ones and the ones the official CrowdPose OKS-NMS uses,
which differ for head and neck), and colours (BGR, for OpenCV drawing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError, did_you_mean

_GREEN, _ORANGE, _BLUE, _WHITE = (0, 255, 0), (0, 128, 255), (255, 128, 0), (255, 255, 255)


@dataclass(frozen=True)
class KeypointSchema:
    """A keypoint layout.

    Attributes:
        name: short id (``coco17``, ``crowdpose14``).
        keypoints: joint names in channel order.
        flip_pairs: (left, right) index pairs swapped by a horizontal flip.
        links: skeleton edges as 0-based (a, b) index pairs.
        upper_body / lower_body: joint ids used by the half-body augmentation.
        sigmas: per-joint OKS sigmas used by the evaluation.
        nms_sigmas: per-joint OKS sigmas used by the official OKS-NMS.
        keypoint_colors / link_colors: BGR colours, one per joint / link.
    """

    name: str
    keypoints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    links: tuple[tuple[int, int], ...]
    upper_body: tuple[int, ...]
    lower_body: tuple[int, ...]
    sigmas: tuple[float, ...]
    nms_sigmas: tuple[float, ...]
    keypoint_colors: tuple[tuple[int, int, int], ...] = field(repr=False)
    link_colors: tuple[tuple[int, int, int], ...] = field(repr=False)

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def flip_index(self) -> np.ndarray:
        """Permutation (K,) int64 that maps each joint to its mirror joint."""
        perm = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def sigmas_array(self, for_nms: bool = False) -> np.ndarray:
        """OKS sigmas as a (K,) float64 array."""
        return np.asarray(self.nms_sigmas if for_nms else self.sigmas, dtype=np.float64)


def _side_colors(names: tuple[str, ...]) -> tuple[tuple[int, int, int], ...]:
    return tuple(_GREEN if n.startswith("left") else _ORANGE if n.startswith("right") else _BLUE for n in names)


def _link_colors(names: tuple[str, ...], links: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int, int], ...]:
    out = []
    for a, b in links:
        sides = {names[a].split("_")[0], names[b].split("_")[0]}
        out.append(_GREEN if sides == {"left"} else _ORANGE if sides == {"right"} else _BLUE)
    return tuple(out)


_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
_COCO_LINKS = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8),
    (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
_COCO_SIGMAS = tuple(
    s / 10.0 for s in (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
                       1.07, 1.07, 0.87, 0.87, 0.89, 0.89)
)  # fmt: skip

COCO17 = KeypointSchema(
    name="coco17",
    keypoints=_COCO_NAMES,
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    links=_COCO_LINKS,
    upper_body=tuple(range(11)),
    lower_body=tuple(range(11, 17)),
    sigmas=_COCO_SIGMAS,
    nms_sigmas=_COCO_SIGMAS,
    keypoint_colors=_side_colors(_COCO_NAMES),
    link_colors=_link_colors(_COCO_NAMES, _COCO_LINKS),
)

_CP_NAMES = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
)  # fmt: skip
# The skeleton inside the CrowdPose annotation files is COCO's (wrong indices); this is the real one.
_CP_LINKS = (
    (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7),
    (6, 8), (8, 10), (7, 9), (9, 11),
)  # fmt: skip
_CP_BODY = (0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89)

CROWDPOSE14 = KeypointSchema(
    name="crowdpose14",
    keypoints=_CP_NAMES,
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    links=_CP_LINKS,
    upper_body=(0, 1, 2, 3, 4, 5, 12, 13),
    lower_body=(6, 7, 8, 9, 10, 11),
    # crowdposetools' evaluation sigmas (head, neck .79) ...
    sigmas=tuple(s / 10.0 for s in (*_CP_BODY, 0.79, 0.79)),
    # ... and the official STIP/HRNet OKS-NMS sigmas (head, neck .35), STIP_SPEC §7.14.
    nms_sigmas=tuple(s / 10.0 for s in (*_CP_BODY, 0.35, 0.35)),
    keypoint_colors=_side_colors(_CP_NAMES),
    link_colors=_link_colors(_CP_NAMES, _CP_LINKS),
)

SCHEMAS: dict[str, KeypointSchema] = {s.name: s for s in (COCO17, CROWDPOSE14)}
_ALIASES = {"coco": "coco17", "crowdpose": "crowdpose14"}


def get_schema(name: str) -> KeypointSchema:
    """Look a schema up by name (``coco17``/``coco``, ``crowdpose14``/``crowdpose``).

    Raises:
        ConfigError: unknown name.
    """
    key = _ALIASES.get(name, name)
    if key not in SCHEMAS:
        raise ConfigError(f"unknown keypoint schema '{name}'{did_you_mean(name, [*SCHEMAS, *_ALIASES])}")
    return SCHEMAS[key]


def schema_for_joints(num_joints: int) -> KeypointSchema:
    """The schema with this many joints (17 → COCO, 14 → CrowdPose)."""
    for s in SCHEMAS.values():
        if s.num_keypoints == num_joints:
            return s
    raise ConfigError(f"no keypoint schema has {num_joints} joints (known: 17 coco17, 14 crowdpose14)")
