"""What every pipeline stage shares: the :class:`FrameItem` it fills and the :class:`Recorder` it reports to.

The steps are in :mod:`stip_rt.stages` (read, detect, pose, track) and :mod:`stip_rt.sink_step` (sinks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .types import Detections, Frame, Poses, Tracks


@dataclass(slots=True)
class FrameItem:
    """One frame on its way through the stages (mutable: each step fills its part).

    Attributes:
        seq: position in this run (the frame indices of live sources may have gaps).
        frame: the decoded frame.
        t_capture: ``time.perf_counter()`` when it was decoded (start of its latency).
        timings: seconds per stage (``FrameResult.timings``).
        dets: person boxes; None until the detect step ran the detector or the pose step derived them.
        guided: True when the pose step derived ``dets`` from the previous frame's tracks (no detector ran).
        poses: the pose step's output.
        tracks: the track step's output.
    """

    seq: int
    frame: Frame
    t_capture: float
    timings: dict[str, float] = field(default_factory=dict)
    dets: Detections | None = None
    guided: bool = False
    poses: Poses | None = None
    tracks: Tracks | None = None

    @property
    def needs_tracks(self) -> bool:
        """True when the boxes must come from the previous frame's tracks (not a detection frame)."""
        return self.dets is None


class Recorder(Protocol):
    """Where the steps report their figures (:class:`stip_rt.pipeline_stats.StatsRecorder`)."""

    def stage(self, name: str, seconds: float) -> None: ...

    def detector_ran(self) -> None: ...

    def set_dropped(self, dropped: int) -> None: ...

    def result(self, ids: np.ndarray, latency_s: float) -> None: ...


class NullRecorder:
    """A :class:`Recorder` that forgets everything."""

    def stage(self, name: str, seconds: float) -> None:
        pass

    def detector_ran(self) -> None:
        pass

    def set_dropped(self, dropped: int) -> None:
        pass

    def result(self, ids: np.ndarray, latency_s: float) -> None:
        pass


def record_time(recorder: Recorder, item: FrameItem, stage: str, seconds: float) -> None:
    """Add ``seconds`` to ``item``'s time for ``stage`` and report them to ``recorder``."""
    item.timings[stage] = item.timings.get(stage, 0.0) + seconds
    recorder.stage(stage, seconds)
