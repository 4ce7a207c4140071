"""Where the packaged data lives."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def models_dir() -> Path:
    """The model configs and zoo manifest: ``<repo>/models`` in a checkout or editable install,
    ``stip_rt/zoo_files`` in an installed wheel."""
    for candidate in (_HERE / "zoo_files", _HERE.parent / "models"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"stip-rt model configs not found next to {_HERE}")
