"""What the viewer remembers between runs (QSettings) and passes to the pipeline."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        show_boxes, show_skeleton, show_ids, show_trails: overlay toggles (trails: trajectory of each track).
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
    show_trails: bool = True


#: Fields that hold a file path (stored absolute, so that a later launch from another folder finds them).
PATH_FIELDS = ("weights", "detections", "tracker")
#: Values that are for trying the app only and never remembered (field → value).
DEMO_ONLY = {"weights": "random"}


def _is_path_like(field: str, value: str) -> bool:
    if not value or DEMO_ONLY.get(field) == value:
        return False
    if field in PATH_FIELDS:
        return True
    # the pose model is a zoo name, "none", or a model YAML
    return field == "model" and (value.endswith((".yaml", ".yml")) or "/" in value or os.sep in value)


def absolute_paths(options: ViewerOptions) -> ViewerOptions:
    """``options`` with every file path made absolute (against the current folder); names stay names."""
    changes: dict[str, Any] = {}  # field name → new value, for dataclasses.replace
    for name in (*PATH_FIELDS, "model"):
        value = getattr(options, name)
        if _is_path_like(name, value):
            changes[name] = str(Path(value).expanduser().absolute())
    return dataclasses.replace(options, **changes)


def load_options(settings: QSettings | None = None) -> ViewerOptions:
    """Read the remembered options; missing or unreadable values keep their defaults."""
    return remembered_options(settings)[0]


def remembered_options(settings: QSettings | None = None) -> tuple[ViewerOptions, set[str]]:
    """The remembered options and the names of the fields that were remembered (not defaults).

    Demo-only values (``weights=random``) stored by older versions are ignored.
    """
    from PyQt6.QtCore import QSettings

    s = settings or QSettings(ORGANIZATION, APPLICATION)
    values: dict[str, Any] = {}  # field name → value of the field's type
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
        if DEMO_ONLY.get(f.name) == values[f.name]:
            del values[f.name]
    default = ViewerOptions()
    remembered = {k for k, v in values.items() if v != getattr(default, k)}
    return ViewerOptions(**values), remembered


def save_options(options: ViewerOptions, settings: QSettings | None = None, skip: Iterable[str] = ()) -> None:
    """Remember ``options``: paths absolute, demo-only values (``weights=random``) not at all.

    Args:
        options: what to remember.
        settings: where (default: the user's stip-viewer settings).
        skip: fields not to write (e.g. those given on the command line for this launch only).
    """
    from PyQt6.QtCore import QSettings

    s = settings or QSettings(ORGANIZATION, APPLICATION)
    skip = set(skip)
    for key, value in dataclasses.asdict(absolute_paths(options)).items():
        if key in skip:
            continue
        if DEMO_ONLY.get(key) == value:
            s.remove(f"options/{key}")
        else:
            s.setValue(f"options/{key}", value)
    s.sync()


def reset_options(settings: QSettings | None = None) -> None:
    """Forget every remembered option."""
    from PyQt6.QtCore import QSettings

    s = settings or QSettings(ORGANIZATION, APPLICATION)
    s.remove("options")
    s.sync()


def missing_files(options: ViewerOptions, fields: Iterable[str]) -> list[str]:
    """``name=value`` of each of ``fields`` that names a file that does not exist."""
    out = []
    for name in fields:
        value = getattr(options, name)
        if _is_path_like(name, value) and not Path(value).expanduser().exists():
            out.append(f"{name}={value}")
    return out


def blame_remembered(message: str, options: ViewerOptions, remembered: Iterable[str]) -> str:
    """Prefix an error with the remembered settings it mentions, so that the user knows where it came from.

    Example: ``remembered setting tracker=/home/me/trk.yaml: tracker config ...: file not found
    (File ▸ Reset settings forgets it)``.
    """
    named = []
    for name in sorted(remembered):
        value = getattr(options, name)
        if not isinstance(value, str) or len(value) < 3:  # numbers and flags: too short to find in a message
            continue
        if (value in message or (_is_path_like(name, value) and Path(value).name in message)):
            named.append(f"{name}={value}")
    if not named:
        return message
    what = "remembered setting" + ("s " if len(named) > 1 else " ") + ", ".join(named)
    return f"{what}: {message} (File ▸ Reset settings forgets it)"


class OptionsState:
    """The window's options and where each came from: remembered, given on the command line, or changed.

    Args:
        options: the options of this launch.
        settings: where they are remembered (None: the user's stip-viewer settings).
        remembered: fields whose value came from the remembered settings (errors they cause say so).
        cli: fields given on the command line: used for this launch, not remembered unless changed.
    """

    def __init__(self, options: ViewerOptions, settings: QSettings | None, remembered: Iterable[str] = (),
                 cli: Iterable[str] = ()) -> None:  # fmt: skip
        self.options = options
        self.settings = settings
        self.remembered = set(remembered)
        self.cli = set(cli)
        self._cli_values = {k: getattr(options, k) for k in self.cli}

    def change(self, new: ViewerOptions) -> None:
        """Take ``new`` options from the user: remembered from now on (command-line ones too, once changed)."""
        default = ViewerOptions()
        for f in dataclasses.fields(ViewerOptions):
            value = getattr(new, f.name)
            if value != getattr(self.options, f.name):
                self.cli.discard(f.name)
                if value != getattr(default, f.name) and DEMO_ONLY.get(f.name) != value:
                    self.remembered.add(f.name)
                else:
                    self.remembered.discard(f.name)
        self.options = new
        self.save()

    def reset(self) -> None:
        """Forget every remembered option; those given on the command line stay for this launch."""
        reset_options(self.settings)
        self.options = dataclasses.replace(ViewerOptions(), **self._cli_values)
        self.remembered.clear()

    def save(self) -> None:
        """Remember the options, except those given on the command line."""
        save_options(self.options, self.settings, skip=self.cli)

    def blame(self, message: str) -> str:
        """:func:`blame_remembered` on these options."""
        return blame_remembered(message, self.options, self.remembered)

    def missing_files(self) -> list[str]:
        """``name=value`` of each remembered file that does not exist."""
        return missing_files(self.options, self.remembered)


def run_config(source: str, options: ViewerOptions, start: int = 0, max_frames: int | None = None) -> RunConfig:
    """The run configuration of one viewer session, through the library's one mapping of options
    (:func:`stip_rt.run_load.load_run_config`); empty fields keep the library's defaults.

    Raises:
        ConfigError: a bad value, naming the setting.
    """
    from stip_rt.run_load import load_run_config

    o = options
    fields: dict[str, Any] = {
        "source": source, "start": start, "max_frames": max_frames, "model": o.model, "weights": o.weights,
        "detector": o.detector, "detections": o.detections, "backend": o.backend, "device": o.device,
        "precision": o.precision, "tracker": o.tracker, "det_every": o.det_every, "smooth": o.smoothing,
    }
    return load_run_config(origin="viewer settings", **{k: v for k, v in fields.items() if v not in ("", None)})
