"""Keypoint schemas: COCO-17, CrowdPose-14 and custom keypoint sets from one YAML file.

Names, flip pairs, skeleton links (0-based, for drawing), upper/lower body sets,
OKS sigmas (the evaluation ones and the ones the official CrowdPose OKS-NMS uses,
which differ for head and neck), and colours (BGR, for OpenCV drawing).

A custom keypoint set is one YAML file (pairs by name or 0-based index)::

    name: body7                       # optional, default: the file name
    keypoints: [nose, left_shoulder, right_shoulder, left_hip, right_hip, left_ankle, right_ankle]
    flip_pairs: [[left_shoulder, right_shoulder], [left_hip, right_hip], [left_ankle, right_ankle]]
    links: [[nose, left_shoulder], [nose, right_shoulder], [left_shoulder, left_hip], ...]
    sigmas: [0.026, 0.079, 0.079, 0.107, 0.107, 0.089, 0.089]   # OKS sigmas, one per keypoint
    nms_sigmas: [...]                 # optional, default: sigmas
    upper_body: [nose, left_shoulder, right_shoulder]           # optional (half-body augmentation),
    lower_body: [left_hip, right_hip, left_ankle, right_ankle]  # default: every joint upper

:func:`get_schema` takes such a path wherever it takes a schema name; a loaded schema is registered
under its name (:data:`SCHEMAS`), so that everything that looks schemas up by name or joint count
(models, evaluation, the tracker's OKS term, drawing, writers) then uses it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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

BUILTIN_SCHEMAS: dict[str, KeypointSchema] = {s.name: s for s in (COCO17, CROWDPOSE14)}
#: Every known schema by name: the built-in ones and the custom ones loaded so far (:func:`register_schema`).
SCHEMAS: dict[str, KeypointSchema] = dict(BUILTIN_SCHEMAS)
_ALIASES = {"coco": "coco17", "crowdpose": "crowdpose14"}
_KEYS = ("name", "keypoints", "flip_pairs", "links", "sigmas", "nms_sigmas", "upper_body", "lower_body")


def _is_path(name: str) -> bool:
    return Path(name).suffix.lower() in (".yaml", ".yml")


def get_schema(name: str | Path) -> KeypointSchema:
    """Look a schema up by name (``coco17``/``coco``, ``crowdpose14``/``crowdpose``, a registered custom
    name) or load a custom keypoint set from its YAML file (see the module docstring).

    Raises:
        ConfigError: unknown name, or an unreadable / invalid YAML file (the message names the file and key).
    """
    text = str(name)
    key = _ALIASES.get(text, text)
    if key in SCHEMAS:
        return SCHEMAS[key]
    if _is_path(text):
        return register_schema(load_schema_file(text), text)
    raise ConfigError(f"unknown keypoint schema '{text}'{did_you_mean(text, [*SCHEMAS, *_ALIASES])} "
                      "(or give a keypoint-set YAML file)")


def schema_for_joints(num_joints: int) -> KeypointSchema:
    """The schema with this many joints (17 → COCO, 14 → CrowdPose, else a registered custom schema)."""
    found = [s for s in SCHEMAS.values() if s.num_keypoints == num_joints]
    if len(found) == 1 or (found and found[0].name in BUILTIN_SCHEMAS):
        return found[0]
    known = ", ".join(f"{s.num_keypoints} {s.name}" for s in SCHEMAS.values())
    if found:
        raise ConfigError(f"several keypoint schemas have {num_joints} joints ({', '.join(s.name for s in found)})")
    raise ConfigError(f"no keypoint schema has {num_joints} joints (known: {known})")


def register_schema(schema: KeypointSchema, source: str = "schema") -> KeypointSchema:
    """Make a custom schema known by name (idempotent for an equal schema).

    Raises:
        ConfigError: the name is a built-in one, or another schema of that name is registered.
    """
    key = _ALIASES.get(schema.name, schema.name)
    if key in BUILTIN_SCHEMAS and BUILTIN_SCHEMAS[key] != schema:
        raise ConfigError(f"keypoint set {source}: name '{schema.name}' is a built-in schema; choose another name")
    old = SCHEMAS.get(key)
    if old == schema:
        return old
    if old is not None:
        raise ConfigError(f"keypoint set {source}: another schema named '{schema.name}' is already loaded "
                          "(give each keypoint set its own name)")
    SCHEMAS[key] = schema
    return schema


def load_schema_file(path: str | Path) -> KeypointSchema:
    """Read and validate a custom keypoint-set YAML file (not registered; :func:`get_schema` registers).

    Raises:
        ConfigError: missing file, invalid YAML, unknown key, or inconsistent content.
    """
    from .config import read_yaml

    data = read_yaml(path)
    data.setdefault("name", Path(path).stem)
    return schema_from_dict(data, f"keypoint set {path}")


def _joint(value: Any, names: tuple[str, ...], where: str) -> int:
    if isinstance(value, str):
        if value not in names:
            raise ConfigError(f"{where}: unknown keypoint '{value}'{did_you_mean(value, names)}")
        return names.index(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < len(names):
            raise ConfigError(f"{where}: index {value} is out of range (0..{len(names) - 1})")
        return value
    raise ConfigError(f"{where}: expected a keypoint name or a 0-based index, got {value!r}")


def _pairs(data: Mapping[str, Any], key: str, names: tuple[str, ...], source: str) -> tuple[tuple[int, int], ...]:
    items = data.get(key) or []
    if not isinstance(items, list | tuple):
        raise ConfigError(f"{source}: '{key}' must be a list of [a, b] pairs, got {items!r}")
    out = []
    for i, pair in enumerate(items):
        where = f"{source}: '{key}'[{i}]"
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ConfigError(f"{where}: expected a pair [a, b], got {pair!r}")
        a, b = (_joint(v, names, where) for v in pair)
        if a == b:
            raise ConfigError(f"{where}: a pair needs two different keypoints, got {pair!r}")
        out.append((a, b))
    return tuple(out)


def _floats(data: Mapping[str, Any], key: str, k: int, source: str) -> tuple[float, ...]:
    values = data.get(key)
    if not isinstance(values, list | tuple) or len(values) != k:
        raise ConfigError(f"{source}: '{key}' must be a list of {k} numbers (one per keypoint), got {values!r}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in values):
        raise ConfigError(f"{source}: '{key}' must hold positive numbers, got {list(values)}")
    return tuple(float(v) for v in values)


def schema_from_dict(data: Mapping[str, Any], source: str = "keypoint set") -> KeypointSchema:
    """Build and validate a :class:`KeypointSchema` from its YAML fields (module docstring).

    Raises:
        ConfigError: unknown key (with a suggestion), missing or inconsistent field; the message names ``source``.
    """
    for key in data:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), _KEYS, n=1)
            raise ConfigError(f"{source}: unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{source}: 'name' must be a non-empty string, got {name!r}")
    raw = data.get("keypoints")
    if not isinstance(raw, list | tuple) or not raw or not all(isinstance(n, str) and n for n in raw):
        raise ConfigError(f"{source}: 'keypoints' must be a non-empty list of names, got {raw!r}")
    names = tuple(raw)
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{source}: 'keypoints' names must be unique, repeated: {dup}")
    k = len(names)
    flips = _pairs(data, "flip_pairs", names, source)
    flat = [j for pair in flips for j in pair]
    if len(flat) != len(set(flat)):
        raise ConfigError(f"{source}: 'flip_pairs': a keypoint appears in more than one pair")
    links = _pairs(data, "links", names, source)
    sigmas = _floats(data, "sigmas", k, source)
    nms = _floats(data, "nms_sigmas", k, source) if data.get("nms_sigmas") is not None else sigmas
    upper = tuple(_joint(v, names, f"{source}: 'upper_body'") for v in data.get("upper_body") or range(k))
    lower = tuple(_joint(v, names, f"{source}: 'lower_body'") for v in data.get("lower_body") or ())
    if data.get("upper_body") is None and lower:
        upper = tuple(j for j in range(k) if j not in lower)
    return KeypointSchema(name=name.strip(), keypoints=names, flip_pairs=flips, links=links, upper_body=upper,
                          lower_body=lower, sigmas=sigmas, nms_sigmas=nms, keypoint_colors=_side_colors(names),
                          link_colors=_link_colors(names, links))


def schema_to_dict(schema: KeypointSchema) -> dict[str, Any]:
    """The YAML fields of a schema (pairs by index): :func:`schema_from_dict` rebuilds an equal schema."""
    return {
        "name": schema.name,
        "keypoints": list(schema.keypoints),
        "flip_pairs": [list(p) for p in schema.flip_pairs],
        "links": [list(p) for p in schema.links],
        "sigmas": list(schema.sigmas),
        "nms_sigmas": list(schema.nms_sigmas),
        "upper_body": list(schema.upper_body),
        "lower_body": list(schema.lower_body),
    }
