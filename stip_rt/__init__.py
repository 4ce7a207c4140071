"""stip-rt: real-time multi-person pose tracking with STIP.

Heavy modules (torch) are imported on first use of a name, so ``import stip_rt`` and
``stip-rt --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import StipError

if TYPE_CHECKING:  # what the lazy names are, for type checkers (mypy, IDEs); nothing is imported at run time
    from .api import TrackRun, track_config, track_frames
    from .detect.factory import create_detector
    from .models import ModelSpec, build_model
    from .pipeline import Pipeline
    from .pose.estimator import PoseEstimator
    from .run_config import RunConfig
    from .run_load import load_run_config
    from .runtime.factory import create_backend
    from .track.tracker import Tracker
    from .types import Detections, FrameResult, Poses, Tracks

__all__ = [
    "Detections", "FrameResult", "ModelSpec", "Pipeline", "PoseEstimator", "Poses", "RunConfig",
    "StipError", "TrackRun", "Tracker", "Tracks", "build_model", "create_backend", "create_detector",
    "load_run_config", "track_config", "track_frames",
]

# name -> module that holds it (imported lazily, PEP 562)
_LAZY = {
    "build_model": "stip_rt.models",
    "ModelSpec": "stip_rt.models",
    "Pipeline": "stip_rt.pipeline",
    "RunConfig": "stip_rt.run_config",
    "load_run_config": "stip_rt.run_load",
    "track_config": "stip_rt.api",
    "track_frames": "stip_rt.api",
    "TrackRun": "stip_rt.api",
    "PoseEstimator": "stip_rt.pose.estimator",
    "Tracker": "stip_rt.track.tracker",
    "create_backend": "stip_rt.runtime.factory",
    "create_detector": "stip_rt.detect.factory",
    "Detections": "stip_rt.types",
    "Poses": "stip_rt.types",
    "Tracks": "stip_rt.types",
    "FrameResult": "stip_rt.types",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'stip_rt' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
