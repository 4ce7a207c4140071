"""stip-rt: real-time multi-person pose tracking with STIP.

Heavy modules (torch) are imported on first use of a name, so ``import stip_rt`` and
``stip-rt --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import StipError

__all__ = ["ModelSpec", "Pipeline", "PipelineConfig", "StipError", "build_model", "track_frames"]

# name -> module that holds it (imported lazily, PEP 562)
_LAZY = {
    "build_model": "stip_rt.models",
    "ModelSpec": "stip_rt.models",
    "Pipeline": "stip_rt.pipeline",
    "PipelineConfig": "stip_rt.pipeline",
    "track_frames": "stip_rt.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stip_rt' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
