"""Where the packaged data lives."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "STIP_RT_HOME"

_HERE = Path(__file__).resolve().parent


def models_dir() -> Path:
    """The model configs and zoo manifest: ``<repo>/models`` in a checkout or editable install,
    ``stip_rt/zoo_files`` in an installed wheel."""
    for candidate in (_HERE / "zoo_files", _HERE.parent / "models"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"stip-rt model configs not found next to {_HERE}")


def cache_root() -> Path:
    """The stip-rt cache folder: ``$STIP_RT_HOME/cache``, else the platformdirs user cache dir.
    Weights, exported ONNX files and TensorRT engines live in sub-folders of it."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / "cache"
    return platformdirs.user_cache_path("stip-rt")


def zoo_names() -> list[str]:
    """Names of the pose model configs in :func:`models_dir` (sorted; torch-free, for validation and
    the viewer's model list)."""
    try:
        folder = models_dir()
    except FileNotFoundError:
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if p.stem != "zoo")  # zoo.yaml: the weights manifest
