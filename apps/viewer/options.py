"""What the viewer remembers between runs (QSettings) and passes to the pipeline."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stip_rt.run_config import RunConfig

if TYPE_CHECKING:  # Qt is imported where settings are read or written: the mapping below runs without it
    from PyQt6.QtCore import QSettings

_D = RunConfig()  # the viewer's defaults are the library's

ORGANIZATION = "stip-rt"
APPLICATION = "stip-viewer"


@dataclass(frozen=True)
class ViewerOptions:
    """Model, detector, backend and tracker choices, plus the overlay state.

    Attributes:
        model: pose model zoo name, YAML path, or ``none`` for box-only tracking; empty = the default (auto).
        weights: checkpoint path, ``random`` for random weights, or empty for the cached/downloaded ones.
        detector: detector name (``rtmdet-tiny``...) ; empty = pipeline default.
        detections: a detections file (COCO results JSON or MOT det.txt) used instead of the detector.
        backend, device, precision: inference choices (``auto`` picks the fastest that works).
        tracker: a tracker YAML, or empty for the default.
        det_every: run the detector every N frames.
        smoothing: keypoint smoothing on/off.
        kpt_threshold: keypoints below this score are not drawn.
        show_boxes, show_skeleton, show_ids: overlay toggles.
    """

    model: str = ""
    weights: str = ""
    detector: str = ""
    detections: str = ""
    backend: str = _D.runtime.backend
    device: str = _D.runtime.device
    precision: str = _D.runtime.precision
    tracker: str = ""
    det_every: int = _D.detect.interval.every
    smoothing: bool = _D.track.smoothing.enabled
    kpt_threshold: float = 0.3
    show_boxes: bool = True
    show_skeleton: bool = True
    show_ids: bool = True


def load_options(settings: QSettings | None = None) -> ViewerOptions:
    """Read the remembered options; missing or unreadable values keep their defaults."""
    from PyQt6.QtCore import QSettings

    s = settings or QSettings(ORGANIZATION, APPLICATION)
    values = {}
    for f in dataclasses.fields(ViewerOptions):
        if not s.contains(f"options/{f.name}"):
            continue
        raw = s.value(f"options/{f.name}")
        try:
            if f.type in ("bool", bool):
                values[f.name] = raw in (True, "true", "1", 1)
            elif f.type in ("int", int):
                values[f.name] = int(raw)
            elif f.type in ("float", float):
                values[f.name] = float(raw)
            else:
                values[f.name] = str(raw)
        except (TypeError, ValueError):
            continue
    return ViewerOptions(**values)


def save_options(options: ViewerOptions, settings: QSettings | None = None) -> None:
    from PyQt6.QtCore import QSettings

    s = settings or QSettings(ORGANIZATION, APPLICATION)
    for key, value in dataclasses.asdict(options).items():
        s.setValue(f"options/{key}", value)
    s.sync()


def run_config(source: str, options: ViewerOptions, start: int = 0, max_frames: int | None = None) -> RunConfig:
    """The run configuration of one viewer session, through the library's one mapping of options
    (:func:`stip_rt.run_load.load_run_config`); empty fields keep the library's defaults.

    Raises:
        ConfigError: a bad value, naming the setting.
    """
    from stip_rt.run_load import load_run_config

    o = options
    fields = {
        "source": source, "start": start, "max_frames": max_frames, "model": o.model, "weights": o.weights,
        "detector": o.detector, "detections": o.detections, "backend": o.backend, "device": o.device,
        "precision": o.precision, "tracker": o.tracker, "det_every": o.det_every, "smooth": o.smoothing,
    }
    return load_run_config(origin="viewer settings", **{k: v for k, v in fields.items() if v not in ("", None)})
