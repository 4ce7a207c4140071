"""``done.json``, the completion marker of one video of a batch: written last, compared on resume."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import to_dict
from .run_config import RunConfig

DONE = "done.json"
#: Keys of the configuration that do not change the outputs (not compared on resume).
_NOT_COMPARED: dict[str, tuple[str, ...] | None] = {
    "runtime": ("device",),
    "queues": None,
    "source": ("uri",),
    "outputs": None,
}
#: Keys that may hold a file path: recorded and compared as absolute paths, so that a relative and an
#: absolute spelling of one file (or a run from another folder) are the same option.
_PATH_KEYS = (("detect", "detections"), ("detect", "weights"), ("pose", "weights"), ("pose", "model"))


def marker_config(config: RunConfig) -> dict[str, Any]:
    """``config`` as ``done.json`` records it: its tree, with the given files as absolute paths."""
    tree = to_dict(config)
    for section, key in _PATH_KEYS:
        value = tree.get(section, {}).get(key)
        if isinstance(value, str) and os.path.exists(value):
            tree[section][key] = os.path.abspath(value)
    return tree


def input_stamp(source: str | None) -> dict[str, int] | None:
    """Size and modification time (ns) of a video file, or None (not a file): a replaced or edited
    input is done again."""
    if source is None:
        return None
    try:
        st = os.stat(source)
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_done(video_dir: Path, marker: dict[str, Any]) -> None:
    """Write ``done.json`` atomically (temp file, then rename): it exists only once complete."""
    tmp = video_dir / (DONE + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1), encoding="utf-8")
    os.replace(tmp, video_dir / DONE)


def is_done(video_dir: Path) -> bool:
    """True when the video's outputs are complete (its ``done.json`` exists), whatever their options."""
    return (video_dir / DONE).is_file()


def done_differs(video_dir: Path, config: RunConfig, formats: Sequence[str], annotate: bool) -> str | None:
    """Why the finished outputs in ``video_dir`` are not what this run asks for; None when they are.

    Compares the formats, the annotated video and the configuration recorded in ``done.json``
    (except keys that do not change the outputs: device, queues, ``source.uri``; given files as
    absolute paths), that every output it lists is still there, and that the input video is the
    same file (size and modification time).
    """
    try:
        marker = json.loads((video_dir / DONE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "its done.json cannot be read"
    stamp = marker.get("input")
    if stamp is not None and stamp != input_stamp(config.source.uri):
        return "the video changed since (size or modification time)"
    missing = [name for name in marker.get("outputs", []) if not (video_dir / name).exists()]
    if missing:
        return f"an output is missing: {missing[0]}"
    if sorted(marker.get("formats", [])) != sorted(formats):
        return f"formats were {','.join(marker.get('formats', [])) or 'none'}, now {','.join(formats)}"
    had_video = marker.get("video", (video_dir / f"{video_dir.name}.mp4").is_file())
    if bool(had_video) != annotate:
        return "the annotated video was " + ("written, now it is not asked for" if had_video else "not written")
    old, new = _comparable(marker.get("config", {})), _comparable(marker_config(config))
    changed = sorted(_diff(old, new))
    if changed:
        return f"options changed: {', '.join(changed[:5])}{' ...' if len(changed) > 5 else ''}"
    return None


def _comparable(tree: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(tree))  # tuples → lists, as stored
    if not isinstance(data, dict):
        return {}
    for section, keys in _NOT_COMPARED.items():
        if keys is None:
            data.pop(section, None)
        elif isinstance(data.get(section), dict):
            for k in keys:
                data[section].pop(k, None)
    return data


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def done_outputs(video_dir: Path) -> list[str] | None:
    """The output names the ``done.json`` in ``video_dir`` lists (plain names inside the folder), or
    None when it cannot be read or lists none (a marker of an older version)."""
    try:
        names = json.loads((video_dir / DONE).read_text(encoding="utf-8")).get("outputs")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(names, list) or not names:
        return None
    return [n for n in names if isinstance(n, str) and n and Path(n).name == n and n not in (".", "..", DONE)]


def done_figures(out: Path) -> dict[str, int]:
    try:
        data = json.loads((out / DONE).read_text(encoding="utf-8"))
        return {k: int(data.get(k, 0)) for k in ("frames", "people", "tracks")}
    except (OSError, ValueError):
        return {}
